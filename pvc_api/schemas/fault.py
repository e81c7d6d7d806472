"""Fault responses."""

from __future__ import annotations

from pvc_api.schemas.common import Schema, array, obj

FAULT: Schema = obj({
    "id": {"type": "string"}, "kind": {"type": "string"}, "subject": {"type": "string"},
    "message": {"type": "string"}, "severity": {"type": "string"},
    "first_seen": {"type": "number"}, "last_seen": {"type": "number"},
    "count": {"type": "integer"}, "acknowledged": {"type": "boolean"},
}, required=["id", "kind", "message", "severity", "acknowledged"], additional=True)
FAULT_LIST: Schema = array(FAULT)
