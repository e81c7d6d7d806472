"""Job requests and responses."""

from __future__ import annotations

from pvc_api.schemas.common import NULLABLE_STR, Schema, array, obj, with_done
from pvc_core.store.jobs import JOB_STATES

LIST_QUERY: Schema = obj({
    "kind": {"type": "string", "minLength": 1, "maxLength": 64},
    "state": {"type": "string", "enum": list(JOB_STATES)},
})

JOB: Schema = obj({
    "id": {"type": "string"}, "kind": {"type": "string"}, "params": {"type": "object"},
    "state": {"type": "string"}, "by": {"type": "string"}, "created": {"type": "number"},
    "updated": {"type": "number"}, "plan": {"type": ["array", "object", "null"]},
    "progress": {"type": "object"}, "result": {}, "log": {"type": "array"},
}, required=["id", "kind", "state"], additional=True)
JOB_WAITED: Schema = with_done(JOB)
JOB_LIST: Schema = array(JOB)
CANCELLED: Schema = JOB
NULLABLE_JOB_ID: Schema = NULLABLE_STR
