"""Fence chains, recovery policies and the daemon's start-up fence check.

Real daemons on a real ZooKeeper with fake BMCs (helpers in
tests/cluster/fence_helpers.py): a VM that no node can take waits for its
home node; a chain whose first driver fails is saved by the second;
``successful_fence: none`` and ``failed_fence: migrate``; and the loud
warning a daemon logs at start-up when its own fence device does not answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.fence import PowerState
from pvc_core.ops.flush import request_ready
from pvc_core.states import DaemonState, VMState
from pvc_core.states import DomainState as NodeDomain
from pvc_core.store import Store
from tests.cluster.conftest import DaemonFactory, wait_for
from tests.cluster.fence_helpers import (
    T,
    cluster,
    decisions,
    failing_chain,
    kinds,
    let_rounds_pass,
    restart,
    running_somewhere,
    vms_on,
)
from tests.helpers import RecordingHandler

pytestmark = pytest.mark.zookeeper


def assert_recovered(store: Store, survivors: list[NodeDaemon], vms: list[str]) -> None:
    """Each VM is placed on a survivor, wanted running, remembers node2, and runs there."""
    names = [d.me for d in survivors]
    for u in vms:
        rec = store.vms.get(u)
        assert rec.state.state is VMState.START and rec.placement.node in names
        assert rec.placement.last_node == "node2"
        wait_for(lambda u=u, t=rec.placement.node: running_somewhere(survivors, u) == [t], T,
                 f"{u} running on its target {rec.placement.node}")


def assert_left_alone(store: Store, others: list[NodeDaemon], vms: list[str]) -> None:
    """Each VM is still assigned to node2, still wanted running, and runs nowhere else."""
    for u in vms:
        rec = store.vms.get(u)
        assert (rec.placement.node, rec.state.state) == ("node2", VMState.START)
        assert running_somewhere(others, u) == []


# -- recovery -------------------------------------------------------------------


def test_vm_without_a_target_waits_for_its_node_and_starts_when_it_is_ready(
        daemons: DaemonFactory) -> None:
    (n1, n2, n3), store = cluster(daemons)
    pinned = vms_on(store, [n1, n2, n3], "node2", 1, meta={"node_limit": ["node2"]},
                    prefix="pinned-")[0]
    free = vms_on(store, [n1, n2, n3], "node2", 1, prefix="free-")

    n2.power_loss()
    wait_for(lambda: "fenced" in kinds(store, "node2"), T, "node2 fenced")
    wait_for(lambda: store.nodes.get("node2").value.domain_state is NodeDomain.FLUSHED, T,
             "node2's VMs recovered")
    assert_recovered(store, [n1, n3], free)
    rec = store.vms.get(pinned)  # only node2 may run it: stopped, waiting for node2
    assert rec.state.state is VMState.STOP
    assert (rec.placement.node, rec.placement.wait_for) == ("node2", "node2")
    outcome = {d.vm: d.outcome for d in decisions(store, "node2", "vm-recovery")}
    assert outcome[pinned] == "left stopped: no valid target"
    assert outcome[free[0]].startswith("placed on node")
    let_rounds_pass(n1, 3)
    assert running_somewhere([n1, n3], pinned) == []
    assert store.nodes.get("node2").value.domain_state is NodeDomain.FLUSHED  # not readied

    n2 = restart(daemons, n2)  # node2 powered on again: flushed until an operator readies it
    assert store.vms.get(pinned).state.state is VMState.STOP
    request_ready(store, "node2")
    wait_for(lambda: running_somewhere([n1, n2, n3], pinned) == ["node2"], T,
             "the waiting VM started on its ready node")
    rec = store.vms.get(pinned)
    assert rec.state.state is VMState.START and rec.placement.wait_for is None
    wait_for(lambda: running_somewhere([n1, n2, n3], free[0]) == ["node2"], T,
             "the recovered VM back home")
    wait_for(lambda: store.nodes.get("node2").value.domain_state is NodeDomain.READY, T,
             "node2 ready")


def test_second_fence_driver_proves_the_node_off_after_the_first_fails(
        daemons: DaemonFactory) -> None:
    chain = failing_chain()
    chain["node2"] = [{"driver": "fake", "fail": True}, {"driver": "fake"}]
    (n1, n2, n3), store = cluster(daemons, chain=chain)
    vms = vms_on(store, [n1, n2, n3], "node2", 2)

    n2.power_loss()
    wait_for(lambda: kinds(store, "node2").count("vm-recovery") == 2, T, "node2's VMs recovered")
    attempts = [(d.inputs["step"], d.inputs["of"], d.outcome)
                for d in decisions(store, "node2", "fence-attempt")]
    assert attempts == [(1, 2, "failed: fake BMC of node2: power off failed (fail)"),
                        (2, 2, "off")]
    order = kinds(store, "node2")
    assert order.index("fence-attempt") < order.index("fenced") < order.index("vm-recovery")
    assert "fence-failed" not in order
    assert decisions(store, "node2", "fenced")[0].outcome == "proved off by fake"
    assert store.nodes.get("node2").value.daemon_state is DaemonState.FENCED
    assert daemons.bmcs.get("node2").state is PowerState.OFF
    assert_recovered(store, [n1, n3], vms)


def test_successful_fence_none_fences_but_leaves_the_vms_alone(daemons: DaemonFactory) -> None:
    (n1, n2, n3), store = cluster(daemons, successful_fence="none")
    vms = vms_on(store, [n1, n2, n3], "node2", 2)

    n2.power_loss()
    wait_for(lambda: "recovery" in kinds(store, "node2"), T, "node2 fenced and judged")
    assert decisions(store, "node2", "recovery")[0].outcome == "none: successful_fence is none"
    assert "fenced" in kinds(store, "node2")
    assert store.nodes.get("node2").value.daemon_state is DaemonState.FENCED
    assert daemons.bmcs.get("node2").state is PowerState.OFF
    let_rounds_pass(n1, 5)
    assert "vm-recovery" not in kinds(store, "node2")
    assert_left_alone(store, [n1, n3], vms)


def test_failed_fence_migrate_recovers_the_vms_all_the_same(daemons: DaemonFactory) -> None:
    (n1, n2, n3), store = cluster(daemons, chain=failing_chain(), failed_fence="migrate")
    vms = vms_on(store, [n1, n2, n3], "node2", 2)

    n2.power_loss()
    wait_for(lambda: kinds(store, "node2").count("vm-recovery") == 2, T, "node2's VMs recovered")
    order = kinds(store, "node2")
    assert "fenced" not in order
    assert order.index("fence-failed") < order.index("vm-recovery")
    assert decisions(store, "node2", "fence-failed")[0].inputs["policy"] == "migrate"
    assert any(f["kind"] == "failed-fence" for f in store.faults.all())
    assert store.nodes.get("node2").value.daemon_state is DaemonState.DEAD
    assert daemons.bmcs.get("node2").state is PowerState.ON  # never proved off
    assert_recovered(store, [n1, n3], vms)


# -- the daemon's start-up check of its own fence device ------------------------------


@pytest.fixture
def fence_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``pvc.fence.*`` loggers (INFO and up) while the test runs.

    Its own handler on ``pvc.fence``, so it sees them whether or not the
    ``pvc`` logger propagates to the root (caplog listens at the root).
    """
    handler = RecordingHandler()
    log = logging.getLogger("pvc.fence")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@pytest.mark.parametrize("reachable", [True, False], ids=["bmc-answers", "bmc-refuses"])
def test_daemon_start_checks_its_own_fence_device(daemons: DaemonFactory,
                                                  fence_log: list[logging.LogRecord],
                                                  reachable: bool) -> None:
    chain = {"node1": [{"driver": "fake", "fail": not reachable}]}
    (n1,), _store = daemons(1, fencing={"enabled": True, "chain": chain},
                            keepalive_interval=0.3)
    assert n1.state is DaemonState.RUN  # a bad fence device warns; it does not stop the node
    mine = [(r.levelno, r.getMessage()) for r in fence_log if r.name == "pvc.fence.node1"]
    loud = [m for level, m in mine if "FENCING WOULD FAIL" in m]
    if reachable:
        assert loud == []
        assert (logging.INFO, "fence device fake of node1 answers: fake BMC of node1 reachable") \
            in mine
    else:
        assert loud == ["FENCING WOULD FAIL for node1: fence device fake: "
                        "fake BMC of node1 refuses (fail)"]
        assert all(level == logging.ERROR for level, m in mine if m in loud)
