"""Node requests and responses."""

from __future__ import annotations

from pvc_api.schemas.common import (
    NULLABLE_NUM,
    NULLABLE_STR,
    WAIT_PARAMS,
    Schema,
    array,
    boolean,
    obj,
    with_done,
)
from pvc_core.states import CoordinatorState, DaemonState, DomainState

LIST_QUERY: Schema = obj({
    "daemon_state": {"type": "string", "enum": [s.value for s in DaemonState]},
    "coordinator_state": {"type": "string", "enum": [s.value for s in CoordinatorState]},
    "domain_state": {"type": "string", "enum": [s.value for s in DomainState]},
})

#: Keepalive figures shown on a node (null until its first keepalive).
STAT_FIELDS = ("memory_total_mib", "memory_used_mib", "memory_free_mib",
               "memory_allocated_mib", "memory_provisioned_mib", "vcpus_allocated", "cpus",
               "load", "vms_running", "vms_assigned")

#: One health check of a node, as its last keepalive reported it.
HEALTH_CHECK: Schema = obj({
    "plugin": {"type": "string"}, "name": {"type": "string"}, "ok": {"type": "boolean"},
    "message": {"type": "string"},
}, required=["plugin", "name", "ok", "message"])

NODE: Schema = obj({
    "name": {"type": "string"}, "daemon_state": {"type": "string"},
    "coordinator_state": {"type": "string"}, "domain_state": {"type": "string"},
    "alive": {"type": "boolean"}, "job": NULLABLE_STR,
    **{f: NULLABLE_NUM for f in STAT_FIELDS},
    "health": {"type": ["string", "null"], "enum": ["ok", "degraded", None]},
    "health_checks": array(HEALTH_CHECK),
    "info": {"type": "object"},
}, required=["name", "daemon_state", "coordinator_state", "domain_state", "alive"])
NODE_LIST: Schema = array(NODE)

FLUSH_QUERY: Schema = obj({**WAIT_PARAMS, "dry_run": boolean(False)})
WAIT_QUERY: Schema = obj(dict(WAIT_PARAMS))

PLAN_ITEM: Schema = obj({
    "vm": {"type": "string"}, "name": {"type": "string"}, "target": NULLABLE_STR,
    "method": {"type": "string", "enum": ["live", "shutdown", "stop"]},
    "live_only": {"type": "boolean"}, "reason": {"type": "string"},
}, required=["vm", "name", "target", "method", "reason"])
PLAN: Schema = obj({"node": {"type": "string"}, "dry_run": {"type": "boolean"},
                    "plan": array(PLAN_ITEM)}, required=["node", "dry_run", "plan"])

PRIMARY: Schema = with_done(obj({
    "node": {"type": "string"}, "changed": {"type": "boolean"},
    "request": {"type": ["object", "null"]}, "message": {"type": "string"},
    "primary": NULLABLE_STR,
}, required=["node", "changed", "message", "primary"]))
