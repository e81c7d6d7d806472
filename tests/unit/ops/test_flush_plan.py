"""The flush plan (pure): order, targets, the no-target case, and its one-line summary."""

from __future__ import annotations

from pvc_core.ops.flush import PlanItem, plan_from_view, plan_summary
from pvc_core.ops.view import ClusterView
from pvc_core.states import DaemonState, DomainState, VMState
from pvc_core.store.records import NodeRecord, Placement, VmMeta, VmRecord, VmStateRecord


def vm(name: str, memory: int, node: str = "n1", state: VMState = VMState.START,
       limit: tuple[str, ...] = ()) -> VmRecord:
    return VmRecord(f"uuid-{name}", name, VmMeta(node_limit=limit), VmStateRecord(state),
                    Placement(node), memory_mib=memory, vcpus=1)


def view(*vms: VmRecord) -> ClusterView:
    nodes = {n: NodeRecord(n, daemon_state=DaemonState.RUN, domain_state=DomainState.READY)
             for n in ("n1", "n2", "n3")}
    stats = {"n1": {"memory_total_mib": 4096}, "n2": {"memory_total_mib": 4096},
             "n3": {"memory_total_mib": 2048}}
    return ClusterView(nodes, stats, list(vms))


def test_vms_are_placed_in_name_order_each_seeing_the_memory_taken_before() -> None:
    plan = plan_from_view(view(vm("b", 3000), vm("a", 3000), vm("c", 1000)), "n1", "mem")
    assert [(i.name, i.target) for i in plan] == [("a", "n2"), ("b", None), ("c", "n3")]
    assert plan[1].method == "stop"
    assert plan[1].reason.startswith("no target: will stop and autostart later")


def test_only_running_vms_of_the_node_are_in_the_plan() -> None:
    plan = plan_from_view(view(vm("a", 100), vm("off", 100, state=VMState.STOP),
                               vm("away", 100, node="n2")), "n1", "mem")
    assert [i.name for i in plan] == ["a"]


def test_a_vm_limited_to_the_flushed_node_has_no_target() -> None:
    (item,) = plan_from_view(view(vm("pinned", 100, limit=("n1",))), "n1", "mem")
    assert (item.target, item.method) == (None, "stop")
    assert "n2: not in the VM's node limit" in item.reason


def item(name: str, target: str | None) -> PlanItem:
    return PlanItem(f"uuid-{name}", name, target, "stop" if target is None else "live",
                    False, "")


def test_plan_summary() -> None:
    assert plan_summary([]) == "plan: 0 VMs"
    assert plan_summary([item("a", "n2")]) == "plan: 1 VM: 1 to n2"
    assert plan_summary([item("a", "n3"), item("b", None), item("c", "n2"),
                         item("d", "n3")]) == (
        "plan: 4 VMs: 1 to n2, 2 to n3, 1 to stop (no target: they start again when the "
        "node is ready)")
