"""The PVC REST API (pvcapid): a Pecan application under /api/v1. Built by the API issue."""
