"""Live migration, its fallback and its forced failure, between in-process daemons.

The daemons are NodeDaemon objects in the test process (real ZooKeeper, real
daemon code) whose ``fake`` hypervisors can live-migrate to each other
(``live_migration: true`` and one shared
:class:`~pvc_plugins.fake.livemigration.FakeMigrationRegistry`), so a test
can make a live migration fail (``fail_migrate``) and see what the source
does next. A guest that kept running keeps its boot id
(:meth:`FakeHypervisorDriver.boot_id`); the registry's ledger says whether a
guest was ever active on two hypervisors at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pvc_core.coordination.lease import LeaseInfo, RunLease
from pvc_core.coordination.migration_sync import MigrationSync
from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.hypervisor import DomainState as HvState
from pvc_core.ops.flush import request_flush, request_ready
from pvc_core.ops.vms import define_vm, migrate_vm
from pvc_core.states import DomainState, VMState
from pvc_core.store import Store
from pvc_core.store.decisions import Decision
from pvc_local.zookeeper import ZooKeeperServer
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver
from pvc_plugins.fake.livemigration import MIGRATION_REGISTRY_KEY, FakeMigrationRegistry
from tests.cluster.conftest import DaemonFactory, domain_xml, wait_for
from tests.cluster.flushing import finished, job
from tests.helpers import RecordingHandler, local_state
from tests.helpers import fake_hv as hv

pytestmark = pytest.mark.zookeeper
T = 30


class LiveDaemonFactory(DaemonFactory):
    """Node daemon objects whose fake hypervisors live-migrate to each other."""

    def __init__(self, zk: ZooKeeperServer, tmp_path: Path) -> None:
        self.registry: FakeMigrationRegistry[FakeHypervisorDriver] = FakeMigrationRegistry()
        super().__init__(zk, tmp_path, hypervisor={"live_migration": True},
                         extras={MIGRATION_REGISTRY_KEY: self.registry})


@pytest.fixture
def live(zk_for_daemons: ZooKeeperServer, tmp_path: Path) -> Iterator[LiveDaemonFactory]:
    factory = LiveDaemonFactory(zk_for_daemons, tmp_path)
    yield factory
    factory.close()


def lease(store: Store, vm: str) -> LeaseInfo:
    return RunLease(store.zk, store.ks.vm_lease(vm), "observer").read()


def settled(store: Store, daemon: NodeDaemon, vm: str, reason: str = "") -> bool:
    """The VM runs on ``daemon``'s hypervisor, is marked started, with ``reason`` in it."""
    rec = store.vms.get(vm)
    return (local_state(daemon, vm) is HvState.RUNNING and rec.state.state is VMState.START
            and rec.placement.node == daemon.me and reason in rec.state.reason)


def migrations(store: Store, vm: str) -> list[Decision]:
    return [d for d in store.decisions.query(vm=vm) if d.kind == "migration"]


def calls_for(daemon: NodeDaemon, method: str, vm: str) -> list[tuple[Any, ...]]:
    return [args for args in hv(daemon).calls_to(method) if args and args[0] == vm]


def running_vm(store: Store, daemon: NodeDaemon, name: str,
               meta: dict[str, Any] | None = None) -> tuple[str, str, LeaseInfo]:
    """Define ``name`` on ``daemon``'s node, started: (uuid, boot id, lease)."""
    vm = define_vm(store, domain_xml(name), node=daemon.me, start=True, meta=meta)
    wait_for(lambda: settled(store, daemon, vm.uuid), T, f"{name} running on {daemon.me}")
    boot = hv(daemon).boot_id(vm.uuid)
    assert boot is not None
    held = lease(store, vm.uuid)
    assert held.holder == daemon.me
    return vm.uuid, boot, held


def test_migrate_goes_live_and_hands_the_lease_over(live: LiveDaemonFactory) -> None:
    (n1, n2), store = live(2)
    vm, boot, before = running_vm(store, n1, "live-a")

    migrate_vm(store, "live-a", "node2")
    wait_for(lambda: settled(store, n2, vm, "live migration from node1 to node2"), T,
             "live-a arrived live on node2")
    rec = store.vms.get(vm)
    assert (rec.placement.node, rec.placement.last_node) == ("node2", "node1")
    # The guest moved inside the hypervisor: never shut down, never started again.
    assert hv(n2).boot_id(vm) == boot
    assert calls_for(n1, "migrate", vm) == [
        (vm, "fake://node2", n1.config.migration.max_downtime_ms,
         n1.config.migration.vm_timeout)]
    assert calls_for(n1, "shutdown", vm) == [] and calls_for(n1, "destroy", vm) == []
    assert calls_for(n2, "migrate_in", vm) == [(vm, "fake://node1")]
    assert calls_for(n2, "start", vm) == []
    assert local_state(n1, vm) is None  # undefined on the source
    # The lease went straight from node1 to node2 (a hand-over: one more epoch, written
    # by node1), never free while the guest ran.
    after = lease(store, vm)
    assert (after.holder, after.epoch, after.changed_by) == ("node2", before.epoch + 1, "node1")
    (decision,) = migrations(store, vm)
    assert (decision.outcome, decision.node) == ("live to node2", "node1")
    assert decision.inputs["method"] == "live"
    assert live.registry.overlaps() == []


def test_a_failed_live_migration_falls_back_to_a_shutdown_migration(
        live: LiveDaemonFactory) -> None:
    (n1, n2), store = live(2)
    vm, boot, before = running_vm(store, n1, "live-b")
    hv(n1).fail_migrate.add(vm)
    records = RecordingHandler()
    log = logging.getLogger("pvc.migration.node1")  # its own handler and level: whether
    level = log.level                                # or not "pvc" propagates or filters
    log.addHandler(records)
    log.setLevel(logging.INFO)
    try:
        migrate_vm(store, "live-b", "node2")
        wait_for(lambda: settled(store, n2, vm, "shutdown migration from node1 to node2"), T,
                 "live-b running on node2 after a shutdown migration")
    finally:
        log.removeHandler(records)
        log.setLevel(level)
    # Live was tried first, failed, and the guest was shut down and started again.
    assert [c[:2] for c in calls_for(n1, "migrate", vm)] == [(vm, "fake://node2")]
    assert calls_for(n1, "shutdown", vm) != []
    assert calls_for(n2, "migrate_in", vm) == [] and calls_for(n2, "start", vm) != []
    assert hv(n2).boot_id(vm) not in (None, boot)
    assert local_state(n1, vm) is None
    warnings = [r.getMessage() for r in records.records if r.levelno == logging.WARNING]
    assert any("live migration to node2 failed" in m and "injected fault" in m
               and "falling back to a shutdown migration" in m for m in warnings), warnings
    failed, decision = migrations(store, vm)
    assert failed.outcome == "live to node2 failed: falling back to shutdown"
    assert "injected fault" in failed.inputs["reason"] and failed.by == "node1"
    assert decision.outcome == "shutdown to node2" and decision.inputs["method"] == "shutdown"
    # Released by node1 (the epoch kept), then taken by node2 (one more).
    after = lease(store, vm)
    assert (after.holder, after.epoch, after.changed_by) == ("node2", before.epoch + 1, "node2")
    assert live.registry.overlaps() == []


@pytest.mark.parametrize("forced", ["migrate-live", "meta live"])
def test_a_forced_live_migration_that_fails_leaves_the_vm_where_it_is(
        live: LiveDaemonFactory, forced: str) -> None:
    (n1, n2), store = live(2)
    meta = {"migration_method": "live"} if forced == "meta live" else None
    vm, boot, before = running_vm(store, n1, "live-c", meta)
    hv(n1).fail_migrate.add(vm)

    migrate_vm(store, "live-c", "node2", live_only=forced == "migrate-live")
    why = "live migration to node2 failed"
    wait_for(lambda: settled(store, n1, vm, why), T, "live-c back to start on node1")
    # The target's turn is over too (it had the sync lock after the source, if at all).
    sync = MigrationSync(store.zk, store.ks.migration_lock(vm), "observer")
    wait_for(lambda: sync.contenders() == [], T, "the sync lock free")
    beats = n2.keepalive.beats
    wait_for(lambda: n2.keepalive.beats >= beats + 2, T, "two keepalive rounds on node2")

    rec = store.vms.get(vm)
    assert rec.placement.node == "node1"
    assert "injected fault" in rec.state.reason and rec.state.by == "node1"
    # Still running on node1, the same boot: never stopped, never on node2.
    assert hv(n1).boot_id(vm) == boot
    assert calls_for(n1, "migrate", vm) != []
    assert calls_for(n1, "shutdown", vm) == [] and calls_for(n1, "destroy", vm) == []
    assert local_state(n2, vm) is None
    for method in ("define", "start", "migrate_in"):
        assert [c for c in hv(n2).calls_to(method) if vm in str(c)] == [], method
    assert live.registry.active_on(vm) == {"fake://node1"}
    assert live.registry.overlaps() == []
    after = lease(store, vm)
    assert (after.holder, after.epoch) == ("node1", before.epoch)
    (decision,) = migrations(store, vm)
    assert decision.outcome == "failed: stays on node1"
    assert why in str(decision.inputs["reason"])


def test_a_flush_migrates_live_and_ready_brings_them_back_live(
        live: LiveDaemonFactory) -> None:
    (n1, n2, n3), store = live(3)
    vms = {}
    for i in range(4):
        uuid, boot, _ = running_vm(store, n1, f"live-d{i}")
        vms[uuid] = boot

    flush = request_flush(store, "node1")
    wait_for(lambda: finished(store, flush["id"]), T, "flush finished")
    done = job(store, flush["id"])
    assert done["state"] == "succeeded", done
    assert sorted(item["vm"] for item in done["plan"]) == sorted(vms)
    assert {item["method"] for item in done["plan"]} == {"live"}
    def arrived(vm: str) -> NodeDaemon | None:
        return next((d for d in (n2, n3)
                     if settled(store, d, vm, f"live migration from node1 to {d.me}")), None)

    for uuid, boot in vms.items():
        target = wait_for(partial(arrived, uuid), T, f"{uuid} arrived live on node2 or node3")
        assert hv(target).boot_id(uuid) == boot
        assert calls_for(n1, "shutdown", uuid) == [] and calls_for(target, "start", uuid) == []
        assert [d.inputs["method"] for d in migrations(store, uuid)] == ["live"]
    assert store.nodes.get("node1").value.domain_state is DomainState.FLUSHED
    assert hv(n1).peek() == []

    ready = request_ready(store, "node1")
    wait_for(lambda: finished(store, ready["id"]), T, "ready finished")
    assert job(store, ready["id"])["state"] == "succeeded"
    for uuid, boot in vms.items():
        wait_for(partial(settled, store, n1, uuid, "live migration from node"), T,
                 f"{uuid} back on node1 live")
        assert hv(n1).boot_id(uuid) == boot
        assert len(calls_for(n1, "start", uuid)) == 1  # its first start, before the flush
    assert live.registry.overlaps() == []
