"""Cluster status and maintenance."""

from __future__ import annotations

from pvc_api.schemas.common import NULLABLE_STR, Schema, obj

COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer"}}
STATUS: Schema = obj({
    "name": {"type": "string"}, "health": {"type": "string",
                                           "enum": ["ok", "degraded", "maintenance"]},
    "problems": {"type": "array", "items": {"type": "string"}},
    "primary": NULLABLE_STR, "maintenance": {"type": "boolean"},
    "nodes": obj({"total": {"type": "integer"}, "alive": {"type": "integer"},
                  "by_daemon_state": COUNTS, "by_domain_state": COUNTS}),
    "vms": obj({"total": {"type": "integer"}, "running": {"type": "integer"},
                "by_state": COUNTS}),
    "resources": {"type": "object", "additionalProperties": {"type": "number"}},
    "faults": {"type": "integer"}, "jobs": {"type": "integer"},
}, required=["name", "health", "primary", "maintenance", "nodes", "vms", "resources"])
MAINTENANCE_BODY: Schema = obj({"enabled": {"type": "boolean"}}, required=["enabled"])
MAINTENANCE: Schema = obj({"maintenance": {"type": "boolean"}}, required=["maintenance"])
ROOT: Schema = obj({"api": {"type": "string"}, "version": {"type": "string"},
                    "cluster": {"type": "string"}}, required=["api", "version", "cluster"])
