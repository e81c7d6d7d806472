"""VM states and faults against node daemons in separate processes.

Each node is a real ``pvcnoded`` process (``hv_cluster``: real ZooKeeper,
the in-memory ``fake`` hypervisor). The test reaches into a node's
hypervisor through the driver's control socket (``hv_control``): it reads
the domains and the driver's recorded calls, crashes a guest, hangs its
shutdown, or starts a VM by hand on the wrong node.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc_core.ops.vms import define_vm, set_vm_state
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_core.store.codec import decode
from pvc_local import procs
from pvc_local.cluster import LocalCluster
from pvc_plugins.fake.control import FakeHypervisorControl
from tests.cluster.conftest import HV_TIMERS, domain_xml, wait_for

pytestmark = pytest.mark.zookeeper
T = 30  # seconds for anything a daemon must do
Control = Callable[[str], FakeHypervisorControl]


def state(store: Store, vm: str) -> VMState:
    return store.vms.get(vm).state.state


def running_at(hv_control: Control, store: Store, vm: str) -> list[str]:
    """The nodes whose hypervisors run the VM (asked directly, not from keepalives)."""
    return [n for n in store.nodes.names() if hv_control(n).state(vm) == "running"]


def calls(ctl: FakeHypervisorControl, method: str, vm: str) -> int:
    """How many calls to ``method`` about ``vm`` the node's driver recorded."""
    return sum(1 for args in ctl.calls_to(method) if args and args[0] == vm)


def lease_holder(store: Store, vm: str) -> str | None:
    doc = decode(store.zk.get(store.ks.vm_lease(vm))[0], "lease") or {}
    holder = doc.get("holder")
    return None if holder is None else str(holder)


def test_state_transitions(hv_store: Store, hv_control: Control) -> None:
    store, n1 = hv_store, hv_control("node1")
    vm = define_vm(store, domain_xml("life1"), node="node1")
    assert state(store, vm.uuid) is VMState.STOP
    assert running_at(hv_control, store, vm.uuid) == []

    set_vm_state(store, "life1", VMState.START)
    wait_for(lambda: running_at(hv_control, store, vm.uuid) == ["node1"], T, "life1 on node1")
    assert lease_holder(store, vm.uuid) == "node1"

    stops, starts = calls(n1, "shutdown", vm.uuid), calls(n1, "start", vm.uuid)
    set_vm_state(store, "life1", VMState.RESTART)
    wait_for(lambda: state(store, vm.uuid) is VMState.START, T, "restart done")
    assert store.vms.get(vm.uuid).state.reason == "restarted"
    # really restarted: shut down once, started once more, running again
    assert (calls(n1, "shutdown", vm.uuid), calls(n1, "start", vm.uuid)) == (stops + 1,
                                                                            starts + 1)
    assert running_at(hv_control, store, vm.uuid) == ["node1"]

    set_vm_state(store, "life1", VMState.SHUTDOWN)
    wait_for(lambda: state(store, vm.uuid) is VMState.STOP, T, "shutdown -> stop")
    assert n1.state(vm.uuid) == "shutoff" and calls(n1, "destroy", vm.uuid) == 0  # graceful
    assert lease_holder(store, vm.uuid) is None

    set_vm_state(store, "life1", VMState.START)
    wait_for(lambda: running_at(hv_control, store, vm.uuid) == ["node1"], T, "running again")
    set_vm_state(store, "life1", VMState.DISABLE)
    wait_for(lambda: n1.state(vm.uuid) == "shutoff", T, "disabled VM shut down")
    assert state(store, vm.uuid) is VMState.DISABLE and calls(n1, "destroy", vm.uuid) == 0

    set_vm_state(store, "life1", VMState.START)
    wait_for(lambda: running_at(hv_control, store, vm.uuid) == ["node1"], T,
             "started from disable")
    set_vm_state(store, "life1", VMState.STOP)
    wait_for(lambda: n1.state(vm.uuid) == "shutoff", T, "stopped")
    assert calls(n1, "destroy", vm.uuid) == 1  # stop is a power-off, not a shutdown
    wait_for(lambda: lease_holder(store, vm.uuid) is None, T, "lease released when stopped")
    assert state(store, vm.uuid) is VMState.STOP


def test_crash_is_restarted_with_backoff_then_fails(hv_store: Store,
                                                    hv_control: Control) -> None:
    store, n1 = hv_store, hv_control("node1")
    tries, backoff = int(HV_TIMERS["restart_max_tries"]), HV_TIMERS["restart_backoff"]
    vm = define_vm(store, domain_xml("crashy"), node="node1", start=True)
    wait_for(lambda: n1.state(vm.uuid) == "running", T, "crashy running")
    starts = calls(n1, "start", vm.uuid)

    for attempt in range(1, tries + 1):
        n1.crash(vm.uuid)
        wait_for(lambda a=attempt: calls(n1, "start", vm.uuid) == starts + a, T,
                 f"restart {attempt}")
        wait_for(lambda: n1.state(vm.uuid) == "running", T, "running again")
        assert state(store, vm.uuid) is VMState.START
    restarts = [d for d in store.decisions.query(vm=vm.uuid) if d.kind == "vm-restart"]
    assert [d.inputs["delay"] for d in restarts] == [backoff * 2 ** i for i in range(tries)]
    assert {d.by for d in restarts} == {"node1"}

    n1.crash(vm.uuid)  # one crash more: the restarts are used up
    wait_for(lambda: state(store, vm.uuid) is VMState.FAIL, T, "crashy failed")
    assert f"gave up after {tries} restarts" in store.vms.get(vm.uuid).state.reason
    assert calls(n1, "start", vm.uuid) == starts + tries  # not restarted again
    assert n1.state(vm.uuid) == "shutoff"  # the crashed guest was cleaned up
    assert lease_holder(store, vm.uuid) is None
    fails = wait_for(lambda: [d.outcome for d in store.decisions.query(vm=vm.uuid)
                              if d.kind == "vm-fail"], T, "the vm-fail decision (after the state)")
    assert fails == ["failed"]

    set_vm_state(store, "crashy", VMState.START)  # an operator starts it again
    wait_for(lambda: n1.state(vm.uuid) == "running", T, "started from fail")
    assert state(store, vm.uuid) is VMState.START
    n1.crash(vm.uuid)  # and it has its restarts again
    wait_for(lambda: calls(n1, "start", vm.uuid) == starts + tries + 2, T, "restarted")
    wait_for(lambda: n1.state(vm.uuid) == "running", T, "running after the restart")
    restarts = [d for d in store.decisions.query(vm=vm.uuid) if d.kind == "vm-restart"]
    assert (restarts[-1].inputs["attempt"], restarts[-1].inputs["delay"]) == (1, backoff)


def test_shutdown_is_aborted_by_a_state_change(hv_store: Store, hv_control: Control,
                                               hv_cluster: LocalCluster) -> None:
    store, n1 = hv_store, hv_control("node1")
    vm = define_vm(store, domain_xml("slow"), node="node1", start=True)
    wait_for(lambda: n1.state(vm.uuid) == "running", T, "slow running")
    n1.hang_shutdown(vm.uuid)
    set_vm_state(store, "slow", VMState.SHUTDOWN)
    wait_for(lambda: n1.state(vm.uuid) == "shutdown", T, "shutdown requested")
    set_vm_state(store, "slow", VMState.START)

    log = Path(hv_cluster.record().node("node1").log)
    wait_for(lambda: "slow: shutdown aborted, the VM is now start" in log.read_text(), T,
             "the abort in node1's log")
    # Aborted, not merely slow: a shutdown still running asks again every 0.5 s
    # and destroys the guest after vm_shutdown_timeout. Over more reconcile
    # rounds of this VM (one per resync) than that timeout lasts, neither happens.
    rounds = HV_TIMERS["vm_shutdown_timeout"] / HV_TIMERS["keepalive_interval"]
    seen = calls(n1, "domain_info", vm.uuid)
    wait_for(lambda: calls(n1, "domain_info", vm.uuid) >= seen + 2, T, "reconcile rounds")
    asked = calls(n1, "shutdown", vm.uuid)
    wait_for(lambda: calls(n1, "domain_info", vm.uuid) >= seen + 2 + rounds, T,
             "more reconcile rounds")
    assert calls(n1, "shutdown", vm.uuid) == asked
    assert calls(n1, "destroy", vm.uuid) == 0
    assert state(store, vm.uuid) is VMState.START
    assert n1.state(vm.uuid) == "shutdown"  # the guest is left as it is, still up
    assert lease_holder(store, vm.uuid) == "node1"


def test_hung_guest_is_destroyed_after_the_shutdown_timeout(hv_store: Store,
                                                            hv_control: Control) -> None:
    store, n1 = hv_store, hv_control("node1")
    vm = define_vm(store, domain_xml("hung"), node="node1", start=True)
    wait_for(lambda: n1.state(vm.uuid) == "running", T, "hung running")
    n1.hang_shutdown(vm.uuid)
    set_vm_state(store, "hung", VMState.SHUTDOWN)
    wait_for(lambda: state(store, vm.uuid) is VMState.STOP, T, "hung stopped")
    assert calls(n1, "destroy", vm.uuid) == 1
    assert calls(n1, "shutdown", vm.uuid) > 1  # asked in slices until the timeout
    assert n1.state(vm.uuid) == "shutoff"


def test_vm_started_by_hand_on_the_wrong_node_is_stopped_there(hv_store: Store,
                                                               hv_control: Control) -> None:
    store, n1, n2 = hv_store, hv_control("node1"), hv_control("node2")
    vm = define_vm(store, domain_xml("stray"), node="node1", start=True)
    wait_for(lambda: n1.state(vm.uuid) == "running", T, "stray on node1")
    # an operator, by hand, on node2
    assert n2.define(store.vms.get_xml(vm.uuid).value, start=True)["state"] == "running"
    wait_for(lambda: n2.state(vm.uuid) is None, T, "stray gone from node2")
    assert calls(n2, "destroy", vm.uuid) == 1 and calls(n2, "undefine", vm.uuid) == 1
    assert n1.state(vm.uuid) == "running"  # the real one is untouched
    assert calls(n1, "destroy", vm.uuid) == 0
    assert lease_holder(store, vm.uuid) == "node1"
    decisions = store.decisions.query(vm=vm.uuid, node="node2")
    assert [(d.outcome, d.by) for d in decisions] == [
        ("stopped on node2: assigned to node1", "node2")]


def test_sigterm_finishes_work_in_flight_and_stops_the_keepalive_last(
        hv_store: Store, hv_control: Control, hv_cluster: LocalCluster) -> None:
    store, n2 = hv_store, hv_control("node2")
    vm = define_vm(store, domain_xml("inflight"), node="node2", start=True)
    wait_for(lambda: n2.state(vm.uuid) == "running", T, "inflight running")
    n2.hang_shutdown(vm.uuid)
    set_vm_state(store, "inflight", VMState.SHUTDOWN)
    wait_for(lambda: n2.state(vm.uuid) == "shutdown", T, "a shutdown in flight")

    entry = hv_cluster.record().node("node2")
    assert procs.send_signal(entry.process, signal.SIGTERM)

    def daemon_state() -> str:
        return store.nodes.get("node2").value.daemon_state.value

    def beat() -> int:
        doc = decode(store.zk.get(store.ks.node_keepalive("node2"))[0], "keepalive") or {}
        return int(doc.get("seq") or 0)

    wait_for(lambda: daemon_state() == "shutdown", T, "node2 shutting down")
    first = beat()
    # the daemon waits for its step in flight (the hung shutdown), beating meanwhile
    wait_for(lambda: beat() >= first + 2, T, "keepalives while shutting down")
    assert daemon_state() == "shutdown" and n2.state(vm.uuid) == "shutdown"
    n2.finish_shutdown(vm.uuid)  # the guest stops: the step completes

    wait_for(lambda: next(s.process for s in hv_cluster.status() if s.name == "node2")
             == "dead", T, "node2's daemon exited")
    assert state(store, vm.uuid) is VMState.STOP  # the step in flight was finished
    assert_stop_recorded_before_liveness_went(store, "node2")
    log = Path(entry.log).read_text()
    assert "received SIGTERM" in log and log.rstrip().endswith("[daemon] stopped")
    assert "\x1b[" not in log  # not a terminal: no colour

    hv_cluster.restart("node2")  # leave the cluster whole
    assert daemon_state() == "run"


def assert_stop_recorded_before_liveness_went(store: Store, node: str) -> None:
    """The record says ``stop`` and was written before the node's liveness went.

    The node record (``nodes/NODE``) is written with daemon state ``stop``
    after everything but the keepalive has stopped; the keepalive stops
    next, then the ``alive`` child is deleted. So the record's last data
    change (``mzxid``) precedes its last child change (``pzxid``).
    """
    record = store.nodes.get(node).value
    assert record.daemon_state.value == "stop", record.daemon_state
    assert not store.zk.exists(store.ks.node_alive(node))
    _data, stat = store.zk.get(store.ks.node(node))
    assert stat.mzxid < stat.pzxid, (stat.mzxid, stat.pzxid)
