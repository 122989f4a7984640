"""VM strategies: overload and underload detection, VM selection, placement, consolidation and balancing.

`strategies.plan(view, settings, state, now)` is the entry point: the live controller calls it with a
`ClusterView`, the simulator calls `strategies.plan_cluster` (the same code) with the array snapshot. Every
strategy takes a snapshot of the cluster (`VmCluster`), its settings and, where it draws at random, a generator
it is given, and returns migrations with their reasons.
"""
