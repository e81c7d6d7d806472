"""Decision-log queries and records."""

from __future__ import annotations

from pvc_api.schemas.common import NODE_NAME, NULLABLE_STR, Schema, array, obj

TIME: Schema = {"type": "number", "minimum": 0, "maximum": 1e11}
LIST_QUERY: Schema = obj({
    "node": NODE_NAME,
    "vm": {"type": "string", "minLength": 1, "maxLength": 64},
    "kind": {"type": "string", "minLength": 1, "maxLength": 64},
    "since": TIME, "until": TIME,
    "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
})
DECISION: Schema = obj({
    "seq": {"type": "integer"}, "time": {"type": "number"}, "kind": {"type": "string"},
    "outcome": {"type": "string"}, "node": NULLABLE_STR, "vm": NULLABLE_STR,
    "inputs": {"type": "object"}, "by": {"type": "string"},
}, required=["seq", "time", "kind", "outcome"])
DECISION_LIST: Schema = array(DECISION)
