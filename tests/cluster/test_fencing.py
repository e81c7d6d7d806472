"""Failure detection, fencing and recovery with daemon objects and fake BMCs.

Three real daemons (election, fence monitor, reconcilers); node1 is made
primary by a planned move, so its FenceMonitor judges the others. "Power
off" through a fake BMC cuts a node's power (NodeDaemon.power_loss: its VMs
gone, its session closed without a word).
"""

from __future__ import annotations

import pytest

from pvc_core.coordination.lease import RunLease
from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.fence import PowerState
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.ops.nodes import request_primary
from pvc_core.ops.vms import define_vm
from pvc_core.states import DaemonState, VMState
from pvc_core.states import DomainState as NodeDomain
from pvc_core.store import Store
from pvc_plugins.fake.storage import FakeStorageDriver
from tests.cluster.conftest import DaemonFactory, domain_xml, wait_for

pytestmark = pytest.mark.zookeeper
T = 30
FAST = {"keepalive_interval": 0.3}


def fencing(**overrides: object) -> dict[str, object]:
    chain = {f"node{i}": [{"driver": "fake"}] for i in (1, 2, 3)}
    base: dict[str, object] = {"enabled": True, "fence_intervals": 2, "saving_throws": 2,
                               "storm_guard_share": 0.5, "self_fence_after": 60,
                               "power_off_timeout": 5, "chain": chain}
    base.update(overrides)
    return base


def cluster(daemons: DaemonFactory, **fence: object) -> tuple[list[NodeDaemon], Store]:
    nodes, store = daemons(3, fencing=fencing(**fence), **FAST)
    for d in nodes:  # pulling a node's power stops that daemon like a real power loss
        daemons.bmcs.get(d.me).register_power_off_callback(lambda _n, d=d: d.power_loss())
    n1 = nodes[0]
    wait_for(lambda: any(d.coordinator.is_primary() for d in nodes), T, "a primary")
    if not n1.coordinator.is_primary():
        request_primary(store, "node1")
    wait_for(n1.coordinator.is_primary, T, "node1 primary")
    return nodes, store


def kinds(store: Store, node: str) -> list[str]:
    return [d.kind for d in store.decisions.query(node=node)]


def let_rounds_pass(primary: NodeDaemon, rounds: int) -> None:
    """Wait until the primary's keepalive beat ``rounds`` more times (its fence
    monitor runs on the same interval)."""
    start = primary.keepalive.beats
    wait_for(lambda: primary.keepalive.beats >= start + rounds, T, f"{rounds} rounds")


def vms_on(store: Store, daemons_: list[NodeDaemon], node: str, count: int) -> list[str]:
    uuids = [define_vm(store, domain_xml(f"{node}-vm{i}"), node=node, start=True).uuid
             for i in range(count)]
    for u in uuids:
        wait_for(lambda u=u: running_somewhere(daemons_, u) == [node], T, "running")
    return uuids


def running_somewhere(nodes: list[NodeDaemon], uuid: str) -> list[str]:
    out = []
    for d in nodes:
        if d.ctx is None or d.ctx.stopping.is_set():
            continue
        try:
            if d.ctx.hv.domain_info(uuid).state is DomainState.RUNNING:
                out.append(d.me)
        except Exception:  # noqa: BLE001, S112 - not defined there
            continue
    return out


def test_a_node_that_comes_back_within_its_saving_throws_is_not_fenced(
        daemons: DaemonFactory) -> None:
    (n1, n2, n3), store = cluster(daemons)
    n2.keepalive.hold()  # hung: session alive, keepalive not advancing
    wait_for(lambda: "suspect" in kinds(store, "node2"), T, "node2 suspect")
    n2.keepalive.release()
    wait_for(lambda: "saving-throw" in kinds(store, "node2"), T,
             "node2 saved")
    let_rounds_pass(n1, 10)
    assert "fenced" not in kinds(store, "node2") and "fence-attempt" not in kinds(store, "node2")
    assert daemons.bmcs.get("node2").state is PowerState.ON
    assert store.nodes.get("node2").value.daemon_state is DaemonState.RUN


def test_dead_node_is_fenced_and_its_vms_recovered(daemons: DaemonFactory) -> None:
    (n1, n2, n3), store = cluster(daemons)
    assert n1.ctx is not None
    storage = FakeStorageDriver({}, DriverContext(node="node1"))
    n1.ctx.hooks.register(storage, "storage.fake")
    vms = vms_on(store, [n1, n2, n3], "node2", 3)
    epochs = {u: RunLease(store.zk, store.ks.vm_lease(u), "x").read().epoch for u in vms}

    n2.power_loss()  # dies: session gone, VMs gone
    wait_for(lambda: "fenced" in kinds(store, "node2"), T, "node2 fenced")
    wait_for(lambda: store.nodes.get("node2").value.domain_state is NodeDomain.FLUSHED, T,
             "node2's VMs recovered")  # recovery ends by marking the node flushed
    assert daemons.bmcs.get("node2").state is PowerState.OFF
    assert store.nodes.get("node2").value.daemon_state is DaemonState.FENCED
    assert ("fence_node", ("node2",)) in storage.calls  # storage fencing by hook
    for u in vms:
        rec = store.vms.get(u)
        assert rec.state.state is VMState.START and rec.placement.node in ("node1", "node3")
        assert rec.placement.last_node == "node2"
        assert RunLease(store.zk, store.ks.vm_lease(u), "x").read().epoch > epochs[u]
        wait_for(lambda u=u, t=rec.placement.node: running_somewhere([n1, n3], u) == [t], T,
                 "recovered VM running on its target")
    let_rounds_pass(n1, 3)
    assert store.nodes.get("node2").value.domain_state is NodeDomain.FLUSHED  # not readied
    order = kinds(store, "node2")
    assert order.index("suspect") < order.index("fence-attempt") < order.index("fenced")
    assert order.count("vm-recovery") == 3


def test_failed_fence_with_failed_fence_none_leaves_vms_alone(daemons: DaemonFactory) -> None:
    chain = {f"node{i}": [{"driver": "fake", "fail": i == 2}] for i in (1, 2, 3)}
    (n1, n2, n3), store = cluster(daemons, chain=chain)
    vms = vms_on(store, [n1, n2, n3], "node2", 2)
    n2.power_loss()
    wait_for(lambda: "fence-failed" in kinds(store, "node2"), T,
             "fence failed")
    let_rounds_pass(n1, 5)
    for u in vms:
        rec = store.vms.get(u)
        assert (rec.placement.node, rec.state.state) == ("node2", VMState.START)
        assert running_somewhere([n1, n3], u) == []
    assert any(f["kind"] == "failed-fence" for f in store.faults.all())
    assert "vm-recovery" not in kinds(store, "node2")


@pytest.mark.parametrize("guard", ["storm", "maintenance"])
def test_storm_guard_and_maintenance_stop_a_fence(daemons: DaemonFactory, guard: str) -> None:
    (n1, n2, n3), store = cluster(daemons)
    if guard == "maintenance":
        store.cluster.set_maintenance(True)
        n2.power_loss()
    else:
        n2.power_loss()
        n3.power_loss()  # two of three look dead: more than the 0.5 share
    wait_for(lambda: guard in [d.kind for d in store.decisions.query()], T,
             f"{guard} reported")
    let_rounds_pass(n1, 20)  # well past the point where node2 would have been fenced
    assert daemons.bmcs.get("node2").state is PowerState.ON
    assert "fenced" not in kinds(store, "node2")
    if guard == "storm":
        assert any(f["kind"] == "storm-guard" for f in store.faults.all())
    else:
        store.cluster.set_maintenance(False)  # and without it, the fence happens
        wait_for(lambda: "fenced" in kinds(store, "node2"), T, "fenced")


def test_failed_fence_recovers_only_after_the_self_fence_deadline(
        daemons: DaemonFactory) -> None:
    chain = {f"node{i}": [{"driver": "fake", "fail": i == 2}] for i in (1, 2, 3)}
    (n1, n2, n3), store = cluster(daemons, chain=chain, self_fence_after=4,
                                  failed_fence="migrate-after-self-fence")
    vms = vms_on(store, [n1, n2, n3], "node2", 2)
    n2.power_loss()
    wait_for(lambda: "fence-failed" in kinds(store, "node2"), T, "fence failed")
    failed_at = next(d.time for d in store.decisions.query(node="node2")
                     if d.kind == "fence-failed")
    suspect_at = next(d.time for d in store.decisions.query(node="node2") if d.kind == "suspect")
    wait_for(lambda: kinds(store, "node2").count("vm-recovery") == 2, T, "recovered later")
    recovered_at = min(d.time for d in store.decisions.query(node="node2")
                       if d.kind == "vm-recovery")
    assert recovered_at - suspect_at >= 4 - 0.5  # not before the node must have self-fenced
    assert recovered_at > failed_at
    for u in vms:
        rec = store.vms.get(u)
        assert rec.placement.node in ("node1", "node3") and rec.state.state is VMState.START
