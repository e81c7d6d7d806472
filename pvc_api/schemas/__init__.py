"""Request and response schemas (JSON Schema), one module per resource.

Controllers validate with them (:func:`pvc_api.operation.operation`) and the
OpenAPI document is built from them (:mod:`pvc_api.openapi`).
"""
