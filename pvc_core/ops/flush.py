"""Drain (flush) and undrain (ready) a node: the plan, and the requests.

:func:`plan_flush` is deterministic: the same cluster state gives the same
plan, so a dry run shows exactly what the real flush will do when nothing
changed in between. VMs are placed one after another, each placement seeing
the memory the earlier ones took.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pvc_core.errors import Conflict, NotFound
from pvc_core.ops.selector import default_selector as cluster_selector
from pvc_core.ops.view import ClusterView, read_view, vm_view
from pvc_core.placement import NodeView, place
from pvc_core.states import VM_RUNNING_STATES, DomainState, check_transition
from pvc_core.store import Store


@dataclass(frozen=True)
class PlanItem:
    """What a flush does with one VM (migrate it, live or shutdown, or stop it),
    or a ready (bring it back, or start it here)."""

    vm: str
    name: str
    target: str | None
    method: str  # flush: "live" | "shutdown" | "stop"; ready: "unmigrate" | "autostart"
    live_only: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _method(view: ClusterView, source: str, target: str, meta_method: str) -> tuple[str, str]:
    live_ok = view.live_migration(source) and view.live_migration(target)
    if meta_method == "shutdown":
        return "shutdown", "migration method is shutdown"
    if live_ok:
        return "live", "live migration"
    if meta_method == "live":
        return "live", "live only, but a hypervisor cannot live-migrate: will fail"
    return "shutdown", "hypervisor cannot live-migrate: shutdown migration"


def plan_from_view(view: ClusterView, node: str, default_selector: str) -> list[PlanItem]:
    """The flush plan of ``node`` for a given cluster snapshot (pure)."""
    views = {n.name: n for n in view.node_views()}
    plan = []
    vms = sorted((v for v in view.vms if v.placement.node == node
                  and v.state.state in VM_RUNNING_STATES), key=lambda v: (v.name, v.uuid))
    for vm in vms:
        result = place(vm_view(vm), list(views.values()), default_selector=default_selector,
                       exclude=(node,))
        if result.node is None:
            plan.append(PlanItem(vm.uuid, vm.name, None, "stop", False,
                                 f"no target: will stop and autostart later "
                                 f"({result.explain()})"))
            continue
        method, why = _method(view, node, result.node, vm.meta.migration_method)
        plan.append(PlanItem(vm.uuid, vm.name, result.node, method,
                             vm.meta.migration_method == "live", f"{result.reason}; {why}"))
        t = views[result.node]
        groups = t.anti_affinity_groups | (
            {vm.meta.anti_affinity} if vm.meta.anti_affinity else set())
        views[t.name] = NodeView(
            t.name, t.daemon_state, t.domain_state, t.memory_total_mib,
            t.memory_allocated_mib + vm.memory_mib, t.memory_provisioned_mib + vm.memory_mib,
            t.load, t.vcpus_allocated + vm.vcpus, t.vms_running + 1, frozenset(groups))
    return plan


def plan_flush(store: Store, node: str) -> list[PlanItem]:
    """The plan a flush of ``node`` would follow now.

    The dry run and the flush job both call this, with the cluster's default
    selector (:func:`pvc_core.ops.selector.default_selector`), so the job
    follows the dry run's plan when nothing changed in between.
    """
    store.nodes.get(node)  # NotFound for an unknown node
    return plan_from_view(read_view(store), node, cluster_selector(store))


def plan_summary(plan: list[PlanItem]) -> str:
    """One line for a job's log: how many VMs move where, how many stop."""
    moves: dict[str, int] = {}
    for item in plan:
        if item.target is not None:
            moves[item.target] = moves.get(item.target, 0) + 1
    stops = sum(1 for item in plan if item.target is None)
    parts = [f"{n} to {target}" for target, n in sorted(moves.items())]
    if stops:
        parts.append(f"{stops} to stop (no target: they start again when the node is ready)")
    vms = "VM" if len(plan) == 1 else "VMs"
    return f"plan: {len(plan)} {vms}" + (f": {', '.join(parts)}" if parts else "")


def _request(store: Store, node: str, new: DomainState, kind: str,
             by: str) -> dict[str, Any]:
    current = store.nodes.get(node)
    check_transition(current.value.domain_state, new, f"node {node}")
    job = store.jobs.build(kind, {"node": node}, by=by)
    record = dataclasses.replace(current.value, domain_state=new, job=job["id"])
    store.zk.transaction([store.jobs.create_op(job),
                          store.nodes.write_op(record, current.version)])
    return job


def request_flush(store: Store, node: str, *, by: str = "") -> dict[str, Any]:
    """Ask ``node`` to drain: sets domain state ``flush`` and creates the job, atomically.

    The node's daemon runs the job: it queues behind any other flush (the
    cluster flush lock), computes the plan, and migrates the VMs.
    """
    try:
        return _request(store, node, DomainState.FLUSH, "flush", by)
    except NotFound:
        raise NotFound(f"node {node!r} does not exist") from None


def request_ready(store: Store, node: str, *, by: str = "") -> dict[str, Any]:
    """Ask ``node`` to come back (unflush); cancels a flush still running."""
    if store.nodes.get(node).value.domain_state is DomainState.READY:
        raise Conflict(f"node {node} is already ready")
    return _request(store, node, DomainState.UNFLUSH, "ready", by)
