"""Records as the API shows them (the shapes in pvc_api.schemas)."""

from __future__ import annotations

from typing import Any

from pvc_api.schemas.node import STAT_FIELDS
from pvc_core.store.cache import CachedNode
from pvc_core.store.records import VmRecord


def running_uuids(nodes: list[CachedNode]) -> dict[str, set[str]]:
    """node name -> UUIDs its last keepalive reported running."""
    return {n.record.name: set(n.stats.get("vm_stats") or {}) for n in nodes}


def vm(record: VmRecord, running: dict[str, set[str]]) -> dict[str, Any]:
    node = record.placement.node
    return {
        "uuid": record.uuid, "name": record.name, "state": record.state.state.value,
        "state_reason": record.state.reason, "state_by": record.state.by,
        "node": node, "last_node": record.placement.last_node,
        "wait_for": record.placement.wait_for, "memory_mib": record.memory_mib,
        "vcpus": record.vcpus,
        "running": node is not None and record.uuid in running.get(node, ()),
        "meta": record.meta.to_dict(),
    }


def node(cached: CachedNode) -> dict[str, Any]:
    r = cached.record
    out: dict[str, Any] = {
        "name": r.name, "daemon_state": r.daemon_state.value,
        "coordinator_state": r.coordinator_state.value, "domain_state": r.domain_state.value,
        "alive": cached.alive, "job": r.job, "info": dict(r.info),
    }
    for name in STAT_FIELDS:
        value = cached.stats.get(name)
        out[name] = value if isinstance(value, int | float) and not isinstance(value, bool) \
            else None
    return out
