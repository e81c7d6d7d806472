"""Cluster operations: what the API, the CLI, the demo and the daemons ask for.

Each operation validates its input, checks the state tables, computes what it
needs (placement, plans) from the store, and writes the result with
compare-and-set or in one transaction. The node daemons then converge to
what was written. Nothing here talks to a hypervisor.
"""
