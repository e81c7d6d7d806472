"""``/api/v1/cluster``: status, and maintenance mode."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pecan import rest

from pvc_api import present
from pvc_api.context import ApiContext, current
from pvc_api.operation import operation
from pvc_api.schemas import cluster as s
from pvc_api.schemas.common import ERROR
from pvc_core.states import DaemonState, VMState
from pvc_core.store.jobs import FINISHED

TAG = "cluster"
_RESOURCES = ("memory_total_mib", "memory_used_mib", "memory_free_mib",
              "memory_allocated_mib", "memory_provisioned_mib", "vcpus_allocated")


def status(ctx: ApiContext) -> dict[str, Any]:
    """The cluster's status from the cache (also read by the metrics)."""
    ctx.cache.check_fresh()
    nodes = ctx.cache.nodes()
    vms = ctx.cache.vms()
    running = present.running_uuids(nodes)
    maintenance = bool(ctx.cache.cluster_config().get("maintenance"))
    faults = [f for f in ctx.cache.faults() if not f.get("acknowledged")]
    problems = [f"node {n.record.name} is {n.record.daemon_state.value}"
                + ("" if n.alive else " (no session)")
                for n in nodes if n.record.daemon_state is not DaemonState.RUN or not n.alive]
    problems += present.health_problems(nodes)
    failed = [v.name for v in vms if v.state.state is VMState.FAIL]
    if failed:
        problems.append(f"{len(failed)} VM(s) failed: {', '.join(sorted(failed)[:10])}")
    if faults:
        problems.append(f"{len(faults)} unacknowledged fault(s)")
    primary = ctx.cache.primary()
    if primary is None:
        problems.append("no primary coordinator")
    resources: dict[str, float] = dict.fromkeys(_RESOURCES, 0)
    for n in nodes:
        for key in _RESOURCES:
            value = n.stats.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                resources[key] += value
    health = "maintenance" if maintenance else ("degraded" if problems else "ok")
    return {
        "name": ctx.cluster_name, "health": health, "problems": problems,
        "primary": primary, "maintenance": maintenance,
        "nodes": {"total": len(nodes), "alive": sum(1 for n in nodes if n.alive),
                  "by_daemon_state": dict(Counter(n.record.daemon_state.value for n in nodes)),
                  "by_domain_state": dict(Counter(n.record.domain_state.value for n in nodes))},
        "vms": {"total": len(vms),
                "running": sum(1 for v in vms if v.uuid in running.get(v.placement.node or "",
                                                                       ())),
                "by_state": dict(Counter(v.state.state.value for v in vms))},
        "resources": resources, "faults": len(faults),
        "jobs": sum(1 for j in ctx.cache.jobs() if j.get("state") not in FINISHED),
    }


class MaintenanceController(rest.RestController):
    """``/cluster/maintenance``."""

    @operation("POST", "/cluster/maintenance", summary="Maintenance mode on (fencing "
               "disabled) or off", tag=TAG, body=s.MAINTENANCE_BODY,
               responses={200: s.MAINTENANCE, 400: ERROR, 503: ERROR})
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        ctx = current()
        ctx.store.cluster.set_maintenance(bool(body["enabled"]))
        return {"maintenance": ctx.store.cluster.maintenance()}


class ClusterController(rest.RestController):
    """``/cluster``."""

    maintenance = MaintenanceController()

    @operation("GET", "/cluster", summary="Cluster status: health, nodes and VMs by state, "
               "resources, primary, maintenance", tag=TAG,
               responses={200: s.STATUS, 503: ERROR})
    def get_all(self) -> dict[str, Any]:
        return status(current())
