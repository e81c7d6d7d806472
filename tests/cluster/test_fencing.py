"""Failure detection, fencing and recovery with daemon objects and fake BMCs.

Three real daemons (election, fence monitor, reconcilers); node1 is made
primary by a planned move, so its FenceMonitor judges the others. "Power
off" through a fake BMC cuts a node's power (NodeDaemon.power_loss: its VMs
gone, its session closed without a word). Helpers: tests/cluster/fence_helpers.py.
"""

from __future__ import annotations

import pytest

from pvc_core.coordination.lease import RunLease
from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.fence import PowerState
from pvc_core.states import DaemonState, VMState
from pvc_core.states import DomainState as NodeDomain
from pvc_plugins.fake.storage import FakeStorageDriver
from tests.cluster.conftest import DaemonFactory, wait_for
from tests.cluster.fence_helpers import (
    T,
    cluster,
    decisions,
    failing_chain,
    kinds,
    let_rounds_pass,
    running_somewhere,
    vms_on,
)

pytestmark = pytest.mark.zookeeper


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
    (n1, n2, n3), store = cluster(daemons, chain=failing_chain())
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
    (n1, n2, n3), store = cluster(daemons, chain=failing_chain(), self_fence_after=4,
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
    # Its session was gone when it was first suspected: the deadline counts from then.
    suspect = decisions(store, "node2", "suspect")[0]
    assert suspect.inputs["session_alive"] is False
    assert recovered_at - suspect_at >= 4 - 0.5  # not before the node must have self-fenced
    assert recovered_at > failed_at
    for u in vms:
        rec = store.vms.get(u)
        assert rec.placement.node in ("node1", "node3") and rec.state.state is VMState.START
        wait_for(lambda u=u, t=rec.placement.node: running_somewhere([n1, n3], u) == [t], T,
                 "recovered VM running on its target")


def test_failed_fence_never_recovers_while_the_session_is_alive(
        daemons: DaemonFactory) -> None:
    """A hung node (keepalive stale, session alive) never self-fences: with
    ``migrate-after-self-fence`` its VMs must stay put however long its fence
    keeps failing; once its session is gone they move, ``self_fence_after`` later."""
    after = 1.5
    (n1, n2, n3), store = cluster(daemons, chain=failing_chain(), self_fence_after=after,
                                  failed_fence="migrate-after-self-fence")
    vms = vms_on(store, [n1, n2, n3], "node2", 2)
    n2.keepalive.hold()  # hung: session alive, keepalive not advancing
    # A failed fence is retried every fence_intervals (0.6 s here) on the primary's
    # monotonic clock: four failures span 1.8 s, past self_fence_after since the first.
    wait_for(lambda: len(decisions(store, "node2", "fence-failed")) >= 4, T,
             "four failed fences")
    let_rounds_pass(n1, 2)
    suspect = decisions(store, "node2", "suspect")[0]
    assert suspect.inputs["session_alive"] is True
    assert "vm-recovery" not in kinds(store, "node2")
    assert "session-gone" not in kinds(store, "node2")
    for u in vms:
        rec = store.vms.get(u)
        assert (rec.placement.node, rec.state.state) == ("node2", VMState.START)
        assert running_somewhere([n1, n2, n3], u) == ["node2"]

    n2.power_loss()  # now its session ends: it self-fences, so its VMs may move after the deadline
    wait_for(lambda: kinds(store, "node2").count("vm-recovery") == 2, T, "recovered")
    gone = decisions(store, "node2", "session-gone")
    recovered = decisions(store, "node2", "vm-recovery")
    assert len(gone) == 1 and gone[0].seq < recovered[0].seq
    assert recovered[0].time - gone[0].time >= after - 0.5  # counted from the session's end
    for u in vms:
        rec = store.vms.get(u)
        assert rec.placement.node in ("node1", "node3") and rec.state.state is VMState.START
        wait_for(lambda u=u, t=rec.placement.node: running_somewhere([n1, n3], u) == [t], T,
                 "recovered VM running on its target")
