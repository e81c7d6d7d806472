"""Source and target of a migration step in lockstep through the VM's sync lock.

The tests hold a guest's shutdown on the source (``hang_shutdown``) to catch
the migration between its steps. The first uses daemon objects in the test
process (real ZooKeeper, real daemon code, the in-memory ``fake``
hypervisor), to see inside the target while it waits; the second kills a
source ``pvcnoded`` process with SIGKILL in a local cluster with simulated
BMCs, driving its fake hypervisor through the control socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pvc_core.coordination.lease import RunLease
from pvc_core.coordination.migration_sync import MigrationSync
from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.errors import NotFound
from pvc_core.ops.vms import define_vm, migrate_vm
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_local.cluster import LocalCluster
from pvc_plugins.fake.control import FakeHypervisorControl
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver
from tests.cluster.conftest import domain_xml, running_on, wait_for

pytestmark = pytest.mark.zookeeper
T = 30
Make = Callable[..., tuple[list[NodeDaemon], Store]]


def hv(daemon: NodeDaemon) -> FakeHypervisorDriver:
    assert daemon.ctx is not None and isinstance(daemon.ctx.hv, FakeHypervisorDriver)
    return daemon.ctx.hv


def local_state(daemon: NodeDaemon, uuid: str) -> DomainState | None:
    try:
        return hv(daemon).domain_info(uuid).state
    except NotFound:
        return None


def sync_of(store: Store, vm: str) -> MigrationSync:
    """An observer's handle on the VM's sync lock (it never contends)."""
    return MigrationSync(store.zk, store.ks.migration_lock(vm), "observer")


def lease_of(store: Store, vm: str) -> RunLease:
    return RunLease(store.zk, store.ks.vm_lease(vm), "observer")


def settled_on(store: Store, daemon: NodeDaemon, vm: str) -> bool:
    return (local_state(daemon, vm) is DomainState.RUNNING
            and store.vms.get(vm).state.state is VMState.START)


def test_target_starts_only_after_the_source_step_released_the_sync_lock(
        daemons: Make) -> None:
    (n1, n2), store = daemons(2, vm_shutdown_timeout=60)
    vm = define_vm(store, domain_xml("lockstep"), node="node1", start=True)
    wait_for(lambda: settled_on(store, n1, vm.uuid), T, "lockstep running on node1")
    sync = sync_of(store, vm.uuid)
    hv(n1).hang_shutdown.add(vm.uuid)  # the source's step cannot end until we let it

    migrate_vm(store, "lockstep", "node2")
    wait_for(lambda: sync.contenders() == ["node1", "node2"], T,
             "the source holding the sync lock and the target queued behind it")
    queue = store.zk.children(store.ks.migration_lock(vm.uuid))
    beats = n2.keepalive.beats
    wait_for(lambda: n2.keepalive.beats >= beats + 4, T, "four keepalive rounds on node2")
    # The target sat in the queue: the same contender, no attempt to take the lease,
    # define or start the VM while the source's step was under way.
    assert store.zk.children(store.ks.migration_lock(vm.uuid)) == queue
    assert hv(n2).calls_to("define") == [] and hv(n2).calls_to("start") == []
    assert lease_of(store, vm.uuid).read().holder == "node1"
    assert local_state(n1, vm.uuid) is DomainState.SHUTDOWN  # still shutting down

    hv(n1).finish_shutdown(vm.uuid)
    wait_for(lambda: settled_on(store, n2, vm.uuid), T, "lockstep running on node2")
    assert local_state(n1, vm.uuid) is None  # undefined on the source
    assert lease_of(store, vm.uuid).read().holder == "node2"
    assert "shutdown migration from node1 to node2" in store.vms.get(vm.uuid).state.reason
    wait_for(lambda: sync.contenders() == [], T, "the sync lock free after the migration")


CONTROL = "hv-control.sock"


@pytest.fixture
def fenced_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """3 ``pvcnoded`` processes with simulated BMCs and controllable fake hypervisors."""
    c = LocalCluster(tmp_path / "c")
    try:
        c.up(nodes=3, hypervisor="fake", wait=90, config_overrides={
            "timers": {"keepalive_interval": 0.5, "vm_shutdown_timeout": 120},
            "zookeeper": {"session_timeout": 3},
            "fencing": {"fence_intervals": 2, "saving_throws": 2},
            "hypervisor": {"fake": {"control_socket": CONTROL}}})
        yield c
    finally:
        c.down(timeout=30)


def test_a_killed_source_process_does_not_leave_the_target_waiting(
        fenced_cluster: LocalCluster) -> None:
    store = fenced_cluster.store()
    try:
        primary = wait_for(lambda: store.cluster.get_primary().value, T, "a primary")
        source, target = [n for n in ("node1", "node2", "node3") if n != primary][:2]
        control = FakeHypervisorControl(
            Path(fenced_cluster.record().node(source).state_dir) / CONTROL)
        vm = define_vm(store, domain_xml("killed"), node=source, start=True)
        wait_for(lambda: vm.uuid in running_on(store, source), T, f"killed running on {source}")
        control.hang_shutdown(vm.uuid)
        sync = sync_of(store, vm.uuid)
        migrate_vm(store, "killed", target)
        wait_for(lambda: sync.contenders() == [source, target], T,
                 f"{target} queued behind {source}")

        fenced_cluster.kill(source)  # SIGKILL mid-step: its guests die with it
        wait_for(lambda: vm.uuid in running_on(store, target)
                 and store.vms.get(vm.uuid).state.state is VMState.START, 60,
                 f"killed running on {target}")
        lease = lease_of(store, vm.uuid).read()
        assert lease.holder == target
        log = store.decisions.query()
        fenced = [d.seq for d in log if d.kind == "fenced" and d.node == source]
        broken = [d.seq for d in log if d.kind == "migration" and d.vm == vm.uuid
                  and d.outcome == f"lease broken: source {source} was fenced"]
        assert fenced and broken and fenced[0] < broken[0]
        wait_for(lambda: sync.contenders() == [], T, "the sync lock free")
        store.vms.set_state(vm.uuid, VMState.STOP, "test cleanup")
    finally:
        store.close()
