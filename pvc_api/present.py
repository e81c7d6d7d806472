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
    checks = health_checks(cached)
    out["health"] = node_health(checks)
    out["health_checks"] = checks or []
    return out


def health_checks(cached: CachedNode) -> list[dict[str, Any]] | None:
    """The health checks of ``cached``'s last keepalive (None if it reported none).

    Entries that are not ``{plugin, name, ok, message}`` with those types are
    left out (the keepalive record is written by another process).
    """
    raw = cached.stats.get("health")
    if not isinstance(raw, list):
        return None
    types = (("plugin", str), ("name", str), ("ok", bool), ("message", str))
    return [{key: item[key] for key, _ in types} for item in raw
            if isinstance(item, dict) and all(isinstance(item.get(k), t) for k, t in types)]


def node_health(checks: list[dict[str, Any]] | None) -> str | None:
    """``ok``, ``degraded`` (a check fails) or None (no keepalive with checks yet)."""
    if checks is None:
        return None
    return "degraded" if any(not c["ok"] for c in checks) else "ok"


def health_problems(nodes: list[CachedNode], limit: int = 3) -> list[str]:
    """One line per live node with failing health checks, for the cluster status."""
    problems = []
    for n in nodes:
        failing = [c for c in health_checks(n) or [] if not c["ok"]]
        if n.alive and failing:
            shown = "; ".join(f"{c['plugin']}/{c['name']}: {c['message']}"
                              for c in failing[:limit])
            more = f" (and {len(failing) - limit} more)" if len(failing) > limit else ""
            problems.append(f"node {n.record.name} is degraded: {shown}{more}")
    return problems
