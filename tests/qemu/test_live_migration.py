"""Live migration of a real QEMU (TCG) guest between two libvirtds.

At most two QEMU processes at once (the source and destination of one
guest); guests are destroyed, not shut down (the busybox guest has no ACPI
handler, which also makes it a real hung guest for ``shutdown``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc_core.console import tail_lines
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.errors import DriverError, DriverTimeout, NotFound
from pvc_local import qemu
from pvc_plugins.hypervisor_libvirt.driver import LibvirtHypervisorDriver
from tests.qemu.conftest import QemuCluster

pytestmark = pytest.mark.timeout(300)

LIVE_UUID = "7e1c0b52-7d6c-4c41-9a39-0000000000a1"
ABORT_UUID = "7e1c0b52-7d6c-4c41-9a39-0000000000a2"
Drivers = tuple[LibvirtHypervisorDriver, LibvirtHypervisorDriver]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait on a condition with a deadline (no blind sleep)."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        pause.wait(0.2)


def uptimes(log: Path) -> list[float]:
    """The guest uptimes of the ``tick`` lines of a console log, in order."""
    return [float(line.split()[1]) for line in tail_lines(log, 10_000)
            if line.startswith("tick ") and len(line.split()) >= 2]


def boots(log: Path) -> int:
    return sum(line.startswith("BOOTED-OK") for line in tail_lines(log, 10_000))


def test_migration_timeout_aborts_and_the_guest_stays(qemu_cluster: QemuCluster,
                                                       drivers: Drivers) -> None:
    a, b = drivers
    log = qemu_cluster.console_dir / "abort.log"
    a.define(qemu.guest_domain_xml("pvcq-abort", ABORT_UUID, qemu_cluster.images, log))
    a.start(ABORT_UUID)
    target = b.migration_uri()
    assert target is not None
    with pytest.raises(DriverTimeout, match="aborted"):
        a.migrate(ABORT_UUID, target, max_downtime_ms=300, timeout=0.2)
    assert a.domain_info(ABORT_UUID).state is DomainState.RUNNING
    assert b.list_domains() == []


def test_live_migration_keeps_the_guest_running(qemu_cluster: QemuCluster,
                                                drivers: Drivers) -> None:
    a, b = drivers
    assert a.validate().ok and a.capabilities().live_migration
    log = qemu_cluster.console_dir / "live.log"
    info = a.define(qemu.guest_domain_xml("pvcq-live", LIVE_UUID, qemu_cluster.images, log))
    assert (info.memory_mib, info.vcpus, info.state) == (128, 1, DomainState.SHUTOFF)
    a.start(LIVE_UUID)
    assert a.console_log_path(LIVE_UUID) == str(log)
    wait_for(lambda: len(uptimes(log)) >= 2, 60, "tick lines from the guest on node A")
    stats = a.domain_stats(LIVE_UUID)
    assert stats.cpu_time_ns > 0 and stats.memory_mib == 128 and stats.vcpus == 1
    host = a.host_stats()
    assert host.memory_total_mib > host.memory_free_mib > 0 and host.cpu_count >= 1

    before = uptimes(log)[-1]
    target = b.migration_uri()
    assert target is not None and f"={qemu_cluster.b.migration_address}" in target
    started = time.monotonic()
    a.migrate(LIVE_UUID, target, max_downtime_ms=300, timeout=60)
    wall = time.monotonic() - started
    result = a.last_migration
    assert result is not None
    print(f"\nmigration A->B: {wall:.2f} s wall, QEMU {result.total_ms} ms, "
          f"downtime {result.downtime_ms} ms (max 300), {result.data_bytes} bytes")

    assert b.domain_info(LIVE_UUID).state is DomainState.RUNNING
    with pytest.raises(NotFound):
        a.domain_info(LIVE_UUID)
    assert a.list_domains() == []
    # Downtime well under a second: a live migration, not a restart.
    assert result.downtime_ms is not None and 0 < result.downtime_ms <= 1000
    wait_for(lambda: uptimes(log)[-1] > before + 2, 30, "ticks from the guest on node B")
    ticks = uptimes(log)
    assert ticks == sorted(ticks), "the guest's uptime went backwards: it rebooted"
    assert boots(log) == 1, "BOOTED-OK printed again: the guest rebooted"
    assert b.console_log_path(LIVE_UUID) == str(log)

    # The busybox guest ignores ACPI: a real hung graceful shutdown.
    assert b.shutdown(LIVE_UUID, timeout=1.0) is False
    assert b.domain_info(LIVE_UUID).state is DomainState.SHUTDOWN
    b.destroy(LIVE_UUID)
    assert b.domain_info(LIVE_UUID).state is DomainState.SHUTOFF
    b.undefine(LIVE_UUID)
    assert b.list_domains() == []


def test_driver_reconnects_after_libvirtd_restarts(qemu_cluster: QemuCluster,
                                                   drivers: Drivers) -> None:
    # Last in this module: it restarts node B of the session.
    _a, b = drivers
    assert b.list_domains() == []
    qemu_cluster.b.stop()
    qemu_cluster.b.start()
    assert b.list_domains() == []  # the dead connection is noticed, replaced, retried
    qemu_cluster.b.stop()
    with pytest.raises(DriverError):
        b.list_domains()
    qemu_cluster.b.start()
    assert b.list_domains() == []
    assert b.validate().ok
