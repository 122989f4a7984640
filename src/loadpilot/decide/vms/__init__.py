"""VM strategies: overload and underload detection, VM selection, placement, consolidation and balancing.

Every strategy takes a snapshot of the cluster (`VmCluster`), its settings and, where it draws at random, a
generator it is given, and returns migrations with their reasons. The simulator and the controller run the
same code.
"""
