"""VM requests and responses."""

from __future__ import annotations

from pvc_api.schemas.common import (
    NODE_NAME,
    NULLABLE_STR,
    VM_NAME,
    WAIT_PARAMS,
    Schema,
    array,
    boolean,
    obj,
    with_done,
)
from pvc_core.states import VMState
from pvc_core.store.records import MIGRATION_METHODS, SELECTORS

TAG: Schema = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^\S+$",
               "x-reason": "must be 1-64 characters without spaces"}

#: Metadata fields, settable at define time and later.
META_FIELDS: dict[str, Schema] = {
    "node_limit": array(NODE_NAME),
    "selector": {"type": ["string", "null"], "enum": [*SELECTORS, None]},
    "autostart": {"type": "boolean"},
    "migration_method": {"type": "string", "enum": list(MIGRATION_METHODS)},
    "max_downtime_ms": {"type": ["integer", "null"], "minimum": 1, "maximum": 3_600_000},
    "tags": array(TAG),
    "anti_affinity": {"type": ["string", "null"], "pattern": VM_NAME["pattern"],
                      "x-reason": VM_NAME["x-reason"]},
}
META: Schema = obj({k: dict(v) for k, v in META_FIELDS.items()})
META_RESPONSE: Schema = obj(dict(META_FIELDS), required=list(META_FIELDS))

XML: Schema = {"type": "string", "minLength": 1, "maxLength": 1_000_000}

DEFINE_BODY: Schema = obj({
    "xml": XML, **META_FIELDS, "target": NODE_NAME, "start": boolean(False),
}, required=["xml"])
XML_BODY: Schema = obj({"xml": XML}, required=["xml"])
XML_RESPONSE: Schema = obj({"xml": {"type": "string"}}, required=["xml"])

LIST_QUERY: Schema = obj({
    "node": NODE_NAME,
    "state": {"type": "string", "enum": [s.value for s in VMState]},
    "tag": TAG,
})

STATE_QUERY: Schema = obj({**WAIT_PARAMS, "force": boolean(False)})
STATE_BODY: Schema = obj({"force": {"type": "boolean"}})
MIGRATE_BODY: Schema = obj({"target": NODE_NAME, "force_live": boolean(False)})
MOVE_BODY: Schema = obj({"target": NODE_NAME})
DELETE_QUERY: Schema = obj({"disks": boolean(False)})
LOG_QUERY: Schema = obj({"lines": {"type": "integer", "minimum": 1, "maximum": 10000,
                                   "default": 100}})
LOG_RESPONSE: Schema = obj({"lines": array({"type": "string"})}, required=["lines"])

VM: Schema = obj({
    "uuid": {"type": "string"}, "name": {"type": "string"},
    "state": {"type": "string"}, "state_reason": {"type": "string"},
    "state_by": {"type": "string"}, "node": NULLABLE_STR, "last_node": NULLABLE_STR,
    "wait_for": NULLABLE_STR, "memory_mib": {"type": "integer"}, "vcpus": {"type": "integer"},
    "running": {"type": "boolean"}, "meta": META_RESPONSE,
}, required=["uuid", "name", "state", "node", "meta", "running"])
VM_WAITED: Schema = with_done(VM)
VM_LIST: Schema = array(VM)
