"""Sense: collectors turn hosts, processes and VMs into samples, and the agent ships them."""
