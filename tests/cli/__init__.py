"""The ``pvc`` executable end to end against a real local cluster and API server."""
