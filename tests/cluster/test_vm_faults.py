"""Faults that need a daemon configured apart: a lease held elsewhere, a flush
cancelled by ``ready`` (one migration at a time, a long shutdown timeout), a
VM whose start fails until it is migrated (many restart tries).

The daemons here are NodeDaemon objects in the test process (real ZooKeeper,
real daemon code, the in-memory ``fake`` hypervisor), each test with its own
timers. Crash restarts, aborted and hung shutdowns and a VM started by hand on
the wrong node run against ``pvcnoded`` processes: test_vm_faults_process.py.
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
from tests.cluster.conftest import domain_xml, wait_for
from tests.helpers import fake_hv as hv
from tests.helpers import local_state

pytestmark = pytest.mark.zookeeper
T = 30
Make = Callable[..., tuple[list[NodeDaemon], Store]]


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
