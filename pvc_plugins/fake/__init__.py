"""In-memory ``fake`` drivers, one per category, registered as real entry points.

They serve unit tests and the local cluster. Every instance keeps its own
state (several fake hypervisors can live in one process) and records the
calls made to it in ``calls``, a list of ``(method, args)`` tuples.
"""
