"""Actuators: the process pool, load-balancer drivers, and (later) hypervisors."""
