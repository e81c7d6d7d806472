"""Faults that need a hand inside a node's hypervisor: crashes, hung shutdowns,
a VM started by hand on the wrong node, a lease held elsewhere.

The daemons here are NodeDaemon objects in the test process (real ZooKeeper,
real daemon code, the in-memory ``fake`` hypervisor), because a separate
process's in-memory hypervisor cannot be reached from a test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pvc_core.coordination.lease import RunLease
from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.ops.flush import request_flush, request_ready
from pvc_core.ops.vms import define_vm, migrate_vm, set_vm_state
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver
from tests.cluster.conftest import domain_xml, wait_for

pytestmark = pytest.mark.zookeeper
T = 30
Make = Callable[..., tuple[list[NodeDaemon], Store]]


def hv(daemon: NodeDaemon) -> FakeHypervisorDriver:
    assert daemon.ctx is not None
    driver = daemon.ctx.hv
    assert isinstance(driver, FakeHypervisorDriver)
    return driver


def local_state(daemon: NodeDaemon, uuid: str) -> DomainState | None:
    try:
        return hv(daemon).domain_info(uuid).state
    except Exception:  # noqa: BLE001 - not defined there
        return None


def test_crash_is_restarted_with_backoff_then_fails(daemons: Make) -> None:
    (n1, _), store = daemons(2, restart_max_tries=2, restart_backoff=0.3)
    vm = define_vm(store, domain_xml("crashy"), node="node1", start=True)
    wait_for(lambda: local_state(n1, vm.uuid) is DomainState.RUNNING, T, "crashy running")
    starts = len(hv(n1).calls_to("start"))

    for attempt in (1, 2):
        hv(n1).crash(vm.uuid)
        wait_for(lambda a=attempt: len(hv(n1).calls_to("start")) == starts + a, T,
                 f"restart {attempt}")
        wait_for(lambda: local_state(n1, vm.uuid) is DomainState.RUNNING, T, "running again")
    restarts = [d for d in store.decisions.query(vm=vm.uuid) if d.kind == "vm-restart"]
    assert [d.inputs["delay"] for d in restarts] == [0.3, 0.6]  # exponential backoff

    hv(n1).crash(vm.uuid)  # a third crash: the two restarts are used up
    wait_for(lambda: store.vms.get(vm.uuid).state.state is VMState.FAIL, T, "crashy failed")
    assert "gave up after 2 restarts" in store.vms.get(vm.uuid).state.reason
    assert len(hv(n1).calls_to("start")) == starts + 2
    assert not local_state(n1, vm.uuid) or not local_state(n1, vm.uuid).active  # type: ignore[union-attr]


def test_shutdown_is_aborted_by_a_state_change(daemons: Make) -> None:
    (n1,), store = daemons(1, vm_shutdown_timeout=60)
    vm = define_vm(store, domain_xml("slow"), node="node1", start=True)
    wait_for(lambda: local_state(n1, vm.uuid) is DomainState.RUNNING, T, "slow running")
    hv(n1).hang_shutdown.add(vm.uuid)
    set_vm_state(store, "slow", VMState.SHUTDOWN)
    wait_for(lambda: local_state(n1, vm.uuid) is DomainState.SHUTDOWN, T, "shutdown requested")
    set_vm_state(store, "slow", VMState.START)
    # aborted: after a few more reconcile rounds no new shutdown slice was started
    # (a running shutdown asks again every 0.5 s for 60 s), and nothing was destroyed
    rounds = len(hv(n1).calls_to("list_domains"))
    wait_for(lambda: len(hv(n1).calls_to("list_domains")) >= rounds + 4, T, "reconcile rounds")
    calls = len(hv(n1).calls_to("shutdown"))
    wait_for(lambda: len(hv(n1).calls_to("list_domains")) >= rounds + 8, T, "more rounds")
    assert len(hv(n1).calls_to("shutdown")) == calls
    assert hv(n1).calls_to("destroy") == []
    assert store.vms.get(vm.uuid).state.state is VMState.START
    assert local_state(n1, vm.uuid).active  # type: ignore[union-attr]


def test_hung_guest_is_destroyed_after_the_shutdown_timeout(daemons: Make) -> None:
    (n1,), store = daemons(1, vm_shutdown_timeout=1.5)
    vm = define_vm(store, domain_xml("hung"), node="node1", start=True)
    wait_for(lambda: local_state(n1, vm.uuid) is DomainState.RUNNING, T, "hung running")
    hv(n1).hang_shutdown.add(vm.uuid)
    set_vm_state(store, "hung", VMState.SHUTDOWN)
    wait_for(lambda: store.vms.get(vm.uuid).state.state is VMState.STOP, T, "hung stopped")
    assert hv(n1).calls_to("destroy") == [(vm.uuid,)]
    assert local_state(n1, vm.uuid) is DomainState.SHUTOFF


def test_vm_started_by_hand_on_the_wrong_node_is_stopped_there(daemons: Make) -> None:
    (n1, n2), store = daemons(2)
    vm = define_vm(store, domain_xml("stray"), node="node1", start=True)
    wait_for(lambda: local_state(n1, vm.uuid) is DomainState.RUNNING, T, "stray on node1")
    hv(n2).define(store.vms.get_xml(vm.uuid).value)  # an operator, by hand, on node2
    hv(n2).start(vm.uuid)
    wait_for(lambda: local_state(n2, vm.uuid) is None, T, "stray gone from node2")
    assert local_state(n1, vm.uuid) is DomainState.RUNNING  # the real one is untouched
    outcomes = [d.outcome for d in store.decisions.query(vm=vm.uuid, node="node2")]
    assert "stopped on node2: assigned to node1" in outcomes


def test_a_vm_does_not_start_while_another_node_holds_its_lease(daemons: Make) -> None:
    (n1,), store = daemons(1)
    vm = define_vm(store, domain_xml("leased"), node="node1")
    other = RunLease(store.zk, store.ks.vm_lease(vm.uuid), "node9")
    other.acquire()
    set_vm_state(store, "leased", VMState.START)
    wait_for(lambda: len(hv(n1).calls_to("list_domains")) > 3, T, "a few reconcile rounds")
    assert local_state(n1, vm.uuid) is None
    other.release()
    wait_for(lambda: local_state(n1, vm.uuid) is DomainState.RUNNING, T, "started once free")


def test_ready_cancels_a_running_flush(daemons: Make) -> None:
    (n1, n2), store = daemons(2, migration={"parallel_limit": 1}, vm_shutdown_timeout=60)
    slow = define_vm(store, domain_xml("a-slow"), node="node1", start=True)
    rest = [define_vm(store, domain_xml(f"b-{i}"), node="node1", start=True) for i in range(2)]
    for vm in (slow, *rest):
        wait_for(lambda v=vm: local_state(n1, v.uuid) is DomainState.RUNNING, T, "running")
    hv(n1).hang_shutdown.add(slow.uuid)  # the first migration (a-slow sorts first) hangs

    flush = request_flush(store, "node1")
    wait_for(lambda: local_state(n1, slow.uuid) is DomainState.SHUTDOWN, T, "a-slow migrating")
    ready = request_ready(store, "node1")
    hv(n1).finish_shutdown(slow.uuid)  # the migration in flight may finish
    wait_for(lambda: store.jobs.get(flush["id"]).value["state"] == "cancelled", T,
             "flush cancelled")
    for vm in rest:  # never asked to move
        rec = store.vms.get(vm.uuid)
        assert (rec.placement.node, rec.placement.last_node) == ("node1", None)
        assert local_state(n1, vm.uuid) is DomainState.RUNNING
    wait_for(lambda: store.jobs.get(ready["id"]).value["state"] == "succeeded", T, "ready")
    assert store.nodes.get("node1").value.domain_state.value == "ready"
    wait_for(lambda: local_state(n1, slow.uuid) is DomainState.RUNNING
             and local_state(n2, slow.uuid) is None, T, "a-slow back on node1")


def test_migrating_a_vm_that_never_started_starts_it_on_the_target(daemons: Make) -> None:
    (n1, n2), store = daemons(2, restart_max_tries=50, restart_backoff=0.2)
    vm = define_vm(store, domain_xml("late"), node="node1")
    hv(n1).fail_start.add(vm.uuid)  # it cannot start on node1
    set_vm_state(store, "late", VMState.START)
    wait_for(lambda: len(hv(n1).calls_to("start")) >= 1, T, "a failed start on node1")
    migrate_vm(store, "late", "node2")
    wait_for(lambda: local_state(n2, vm.uuid) is DomainState.RUNNING, T, "running on node2")
    wait_for(lambda: store.vms.get(vm.uuid).state.state is VMState.START, T, "marked start")
    assert local_state(n1, vm.uuid) is None or not local_state(n1, vm.uuid).active  # type: ignore[union-attr]
    assert RunLease(store.zk, store.ks.vm_lease(vm.uuid), "x").read().holder == "node2"
