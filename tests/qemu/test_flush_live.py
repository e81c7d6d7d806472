"""Flush and ready live-migrate a real QEMU (TCG) guest between two real nodes.

The whole stack, as ``pvc-local up --hypervisor qemu`` runs it: a private
ZooKeeper, two ``pvcnoded`` processes, each node with its own libvirtd in
its own mount and network namespace. A tiny busybox guest (128 MiB, its
``stay`` loop prints ``tick <uptime>`` every second) is defined and started
on node1 through the store; ``flush`` of node1 live-migrates it to node2 and
``ready`` brings it back live. The guest never reboots: its console log
shows ``BOOTED-OK`` once and an uptime that only grows.

At most one TCG guest runs at a time (two QEMU processes during a
migration). Runs before ``test_live_migration.py`` (file order) and takes
its cluster down first: both use the ``pvcq*`` namespaces and the
``10.250.0.0/24`` hub, so they must never be up at the same time.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pvc_core.console import tail_lines
from pvc_core.errors import NotFound
from pvc_core.ops.flush import request_flush, request_ready
from pvc_core.ops.vms import define_vm
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_core.store.jobs import FINISHED
from pvc_local import launch, qemu
from pvc_local.cluster import LocalCluster
from tests.qemu.conftest import CACHE_ENV, DEFAULT_CACHE, _host_state

pytestmark = pytest.mark.timeout(600)

VM_UUID = "7e1c0b52-7d6c-4c41-9a39-0000000000f1"
VM_NAME = "pvcq-flush"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} "
                                 f"(last: {last!r})")
        pause.wait(0.1)


def tick_uptimes(lines: list[str]) -> list[float]:
    """The guest uptimes of the ``tick <uptime> <idle>`` lines, in order."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "tick":
            try:
                out.append(float(parts[1]))
            except ValueError:
                continue
    return out


def published_console(store: Store) -> list[str]:
    """The console tail the VM's node daemon published in ZooKeeper ([] before any)."""
    try:
        data, _ = store.zk.get(store.ks.vm_console(VM_UUID))
    except NotFound:
        return []
    return data.decode("utf-8", errors="replace").replace("\r", "").splitlines()


def published_uptime(store: Store) -> float:
    ticks = tick_uptimes(published_console(store))
    return ticks[-1] if ticks else -1.0


def vm_stats_of(store: Store, node: str) -> set[str]:
    """UUIDs in the node's latest keepalive ``vm_stats`` (its hypervisor's running VMs)."""
    data, _ = store.zk.get(store.ks.node_keepalive(node))
    return set((json.loads(data).get("stats") or {}).get("vm_stats") or {})


class Libvirtds:
    """Direct libvirt connections to every node's libvirtd (URIs from the cluster record)."""

    def __init__(self, cluster: LocalCluster) -> None:
        import libvirt  # noqa: PLC0415 - only this suite needs it

        self.libvirt = libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # raised, not printed
        self.conns: dict[str, Any] = {}
        for entry in cluster.record().nodes:
            assert entry.libvirtd, f"{entry.name} has no libvirtd in the record"
            node = launch.node_libvirtd(Path(entry.state_dir).parent, entry.name, entry.index)
            self.conns[entry.name] = libvirt.open(node.uri)

    def active(self, node: str) -> bool:
        """True when the guest's domain runs on that node's libvirtd."""
        try:
            return bool(self.conns[node].lookupByUUIDString(VM_UUID).isActive())
        except self.libvirt.libvirtError:
            return False

    def where(self) -> list[str]:
        return sorted(n for n in self.conns if self.active(n))

    def destroy_all(self) -> None:
        for conn in self.conns.values():
            try:
                dom = conn.lookupByUUIDString(VM_UUID)
            except self.libvirt.libvirtError:
                continue
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except self.libvirt.libvirtError:
                pass

    def close(self) -> None:
        for conn in self.conns.values():
            try:
                conn.close()
            except self.libvirt.libvirtError:
                pass


@pytest.fixture(scope="module")
def qemu_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 2-node local cluster in qemu mode; down (and the host checked) afterwards."""
    reason = launch.qemu_unavailable_reason() if launch.libvirt_available() \
        else "libvirt-python is not installed"
    if reason:
        print(f"\nreal-QEMU flush test skipped: {reason}")
        pytest.skip(f"real QEMU nodes unavailable here: {reason}")
    leftover = [n for n in qemu.run(["ip", "netns", "list"]).decode().split()
                if n.startswith("pvcq")]
    assert not leftover, f"pvcq* namespaces in use (another QEMU test running?): {leftover}"
    before = _host_state()
    cluster = LocalCluster(tmp_path_factory.mktemp("flushq"))
    try:
        started = time.monotonic()
        cluster.up(nodes=2, hypervisor="qemu", wait=120,
                   cache_dir=Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE))
        print(f"\nqemu cluster up in {time.monotonic() - started:.1f} s")
        yield cluster
    finally:
        cluster.down(timeout=30)
    after = _host_state()
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def wait_job(store: Store, job_id: str, timeout: float) -> dict[str, Any]:
    job = wait_for(lambda: (j := store.jobs.get(job_id).value)["state"] in FINISHED and j,
                   timeout, f"job {job_id} to finish")
    assert job["state"] == "succeeded", job
    return job


def plan_item(job: dict[str, Any]) -> dict[str, Any]:
    items = [i for i in job["plan"] or [] if i["vm"] == VM_UUID]
    assert len(items) == 1, job["plan"]
    return items[0]


def guest_qemus(node: str) -> list[int]:
    """PIDs of the guest's QEMU processes in the node's network namespace."""
    netns = f"pvcq{node}"
    if netns not in qemu.run(["ip", "netns", "list"]).decode().split():
        return []
    found = []
    for pid in qemu.run(["ip", "netns", "pids", netns]).decode().split():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and f"guest={VM_NAME}".encode() in \
                b",".join(argv):
            found.append(int(pid))
    return found


def migration_log(cluster: LocalCluster, source: str) -> tuple[float, int, int]:
    """Wall s, QEMU total ms and downtime ms of the source's last migration of the guest.

    From the source daemon's log line ``migrated UUID in W s (QEMU: T ms total, D ms
    downtime, ...)``, written by the libvirt driver.
    """
    text = Path(cluster.record().node(source).log).read_text(errors="replace")
    found = re.findall(rf"migrated {VM_UUID} in ([0-9.]+) s \(QEMU: (\d+) ms total, "
                       r"(\d+) ms downtime", text)
    assert found, f"no migration of the guest in {source}'s log"
    wall, total, downtime = found[-1]
    return float(wall), int(total), int(downtime)


def check_on(store: Store, lv: Libvirtds, node: str, other: str) -> None:
    """The guest runs on ``node`` only: libvirt, QEMU's namespace and both keepalives say so."""
    assert lv.where() == [node]
    wait_for(lambda: len(guest_qemus(node)) == 1 and not guest_qemus(other), 15,
             f"the guest's QEMU process in {node}'s namespace only")
    wait_for(lambda: VM_UUID in vm_stats_of(store, node)
             and VM_UUID not in vm_stats_of(store, other),
             15, f"the keepalives to report the guest on {node} only")


def check_no_reboot(log: Path) -> list[float]:
    lines = tail_lines(log, 100_000)
    ticks = tick_uptimes(lines)
    assert ticks == sorted(ticks), f"the guest's uptime went backwards (a reboot): {ticks}"
    boots = sum(line.startswith("BOOTED-OK") for line in lines)
    assert boots == 1, f"BOOTED-OK {boots} times: the guest rebooted"
    return ticks


def test_flush_and_ready_live_migrate_the_guest(qemu_local: LocalCluster) -> None:
    cluster = qemu_local
    images = cluster.record().guest_images
    console_dir = cluster.directory / "console"  # outside every node's private mounts
    console_dir.mkdir(exist_ok=True)
    log = console_dir / f"{VM_NAME}.log"
    xml = qemu.guest_domain_xml(VM_NAME, VM_UUID,
                                qemu.GuestImages(Path(images["kernel"]), Path(images["initrd"])),
                                log, memory_mib=128)
    store = cluster.store()
    lv = Libvirtds(cluster)
    try:
        info = {n: store.nodes.get(n).value.info for n in ("node1", "node2")}
        assert all(i.get("live_migration") and i.get("migration_uri") for i in info.values()), info

        # -- start on node1; the daemon publishes its console in ZooKeeper ---------------
        started = time.monotonic()
        define_vm(store, xml, node="node1", start=True, by="test")
        wait_for(lambda: len(tick_uptimes(published_console(store))) >= 2, 90,
                 "tick lines in the published console of node1's guest")
        print(f"guest ticking (published) {time.monotonic() - started:.1f} s after define")
        check_on(store, lv, "node1", "node2")
        assert store.vms.get(VM_UUID).placement.node == "node1"

        # -- flush node1: live to node2 --------------------------------------------------
        before = published_uptime(store)
        started = time.monotonic()
        job = request_flush(store, "node1", by="test")
        job = wait_job(store, job["id"], 180)
        flush_s = time.monotonic() - started
        item = plan_item(job)
        assert (item["method"], item["target"]) == ("live", "node2"), item
        vm = store.vms.get(VM_UUID)
        assert (vm.placement.node, vm.placement.last_node) == ("node2", "node1"), vm.placement
        assert vm.state.state is VMState.START, vm.state
        assert "live migration" in vm.state.reason, vm.state
        assert store.nodes.get("node1").value.domain_state.value == "flushed"
        check_on(store, lv, "node2", "node1")
        wall, total, downtime = migration_log(cluster, "node1")
        print(f"flush node1 -> node2: job {flush_s:.2f} s; migration {wall:.2f} s wall, "
              f"QEMU {total} ms, downtime {downtime} ms")
        assert 0 <= downtime <= 1000, "downtime above a second: not a live migration"
        decisions = [d for d in store.decisions.query(vm=VM_UUID) if d.kind == "migration"]
        assert decisions and decisions[-1].inputs.get("method") == "live", decisions
        assert decisions[-1].inputs.get("target") == "node2", decisions[-1]

        # The guest keeps counting on node2 (node2's daemon publishes now), no reboot.
        wait_for(lambda: published_uptime(store) > before + 2, 60,
                 f"the published uptime to pass {before + 2:g} s on node2")
        ticks = check_no_reboot(log)
        assert ticks[-1] > before

        # -- ready node1: live back ------------------------------------------------------
        before = published_uptime(store)
        started = time.monotonic()
        job = request_ready(store, "node1", by="test")
        job = wait_job(store, job["id"], 180)
        ready_s = time.monotonic() - started
        item = plan_item(job)
        assert (item["method"], item["target"]) == ("unmigrate", "node1"), item
        vm = store.vms.get(VM_UUID)
        assert vm.placement.node == "node1" and vm.placement.last_node is None, vm.placement
        assert vm.state.state is VMState.START, vm.state
        assert "live migration" in vm.state.reason, vm.state
        check_on(store, lv, "node1", "node2")
        wall, total, downtime = migration_log(cluster, "node2")
        print(f"ready node1 (node2 -> node1): job {ready_s:.2f} s; migration {wall:.2f} s "
              f"wall, QEMU {total} ms, downtime {downtime} ms")
        assert 0 <= downtime <= 1000, "downtime above a second: not a live migration"
        decisions = [d for d in store.decisions.query(vm=VM_UUID) if d.kind == "migration"]
        assert decisions[-1].inputs.get("method") == "live", decisions[-1]
        assert decisions[-1].inputs.get("target") == "node1", decisions[-1]
        wait_for(lambda: published_uptime(store) > before + 2, 60,
                 f"the published uptime to pass {before + 2:g} s on node1 again")
        ticks = check_no_reboot(log)
        assert ticks[-1] > before

        # -- stop (a hard stop: the guest is destroyed) -----------------------------------
        store.vms.set_state(VM_UUID, VMState.STOP, "test cleanup", "test")
        wait_for(lambda: not lv.where(), 60, "the guest to stop")
        store.vms.remove(VM_UUID)
    finally:
        lv.destroy_all()
        lv.close()
        store.close()
