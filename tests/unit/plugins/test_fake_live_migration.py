"""Live migration between fake hypervisors of one process (``live_migration: true``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    DriverError,
    InvalidInput,
    NotFound,
    NotSupported,
)
from pvc_plugins.fake.hypervisor import ALL_DOMAINS, FakeHypervisorDriver, read_state_file
from pvc_plugins.fake.livemigration import MIGRATION_REGISTRY_KEY, FakeMigrationRegistry

U1 = "11111111-2222-3333-4444-555555555555"
U2 = "66666666-2222-3333-4444-555555555555"
LIMITS: dict[str, Any] = {"max_downtime_ms": 300, "timeout": 30.0}
Registry = FakeMigrationRegistry[FakeHypervisorDriver]


def xml(name: str = "vm1", uuid: str = U1, memory_mib: int = 1024) -> str:
    return (f"<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid>"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>2</vcpu></domain>")


def make(node: str, registry: Registry | None, **config: Any) -> FakeHypervisorDriver:
    extras: dict[str, Any] = {} if registry is None else {MIGRATION_REGISTRY_KEY: registry}
    return FakeHypervisorDriver({"live_migration": True, "memory_mib": 4096, **config},
                                DriverContext(node=node, extras=extras))


@pytest.fixture
def registry() -> Registry:
    return FakeMigrationRegistry()


@pytest.fixture
def pair(registry: Registry) -> Iterator[tuple[FakeHypervisorDriver, FakeHypervisorDriver]]:
    one, two = make("hv1", registry), make("hv2", registry)
    yield one, two
    one.close()
    two.close()


def running(drv: FakeHypervisorDriver, uuid: str = U1, name: str = "vm1") -> str:
    """Define and start ``uuid`` on ``drv``; its boot id."""
    drv.define(xml(name, uuid))
    drv.start(uuid)
    boot = drv.boot_id(uuid)
    assert boot is not None
    return boot


def defined_on(drv: FakeHypervisorDriver) -> list[str]:
    return [d.uuid for d in drv.peek()]


def test_off_by_default_nothing_changes() -> None:
    drv = FakeHypervisorDriver({}, DriverContext(node="hv1",
                                                 extras={MIGRATION_REGISTRY_KEY: Registry()}))
    assert drv.capabilities().live_migration is False
    assert drv.migration_uri() is None and drv.registry is None
    assert drv.validate().message == "fake hypervisor for hv1"
    running(drv)
    with pytest.raises(NotSupported):
        drv.migrate(U1, "fake://hv2", **LIMITS)
    assert drv.domain_info(U1).state is DomainState.RUNNING


def test_capability_and_uri_when_enabled(pair: tuple[FakeHypervisorDriver, ...],
                                         registry: Registry) -> None:
    one, _ = pair
    assert one.capabilities().live_migration is True
    assert one.migration_uri() == "fake://hv1"
    assert registry.lookup("fake://hv1") is one
    assert "live migration at fake://hv1" in one.validate().message
    assert "no shared registry" not in one.validate().message


def test_migrate_moves_the_running_guest_at_once(
        pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver]) -> None:
    one, two = pair
    boot = running(one)
    source_xml = one.domain_xml(U1)
    one.migrate(U1, "fake://hv2", **LIMITS)
    assert defined_on(one) == []  # undefined on the source
    info = two.domain_info(U1)
    assert (info.name, info.state, info.memory_mib, info.vcpus) == \
        ("vm1", DomainState.RUNNING, 1024, 2)
    assert two.domain_xml(U1) == source_xml
    assert two.boot_id(U1) == boot  # the same boot: never stopped, never restarted
    assert one.calls_to("migrate") == [(U1, "fake://hv2", 300, 30.0)]
    assert two.calls_to("migrate_in") == [(U1, "fake://hv1")]
    assert two.calls_to("start") == [] and two.calls_to("define") == []
    assert one.calls_to("shutdown") == [] and one.calls_to("destroy") == []
    assert one.host_stats().memory_used_mib == 0
    assert two.host_stats().memory_used_mib == 1024
    # and back again
    two.migrate(U1, "fake://hv1", **LIMITS)
    assert defined_on(two) == [] and one.domain_info(U1).state is DomainState.RUNNING
    assert one.boot_id(U1) == boot


def test_a_paused_guest_arrives_paused(
        pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver]) -> None:
    one, two = pair
    running(one)
    one.pause(U1)
    one.migrate(U1, "fake://hv2", **LIMITS)
    assert two.domain_info(U1).state is DomainState.PAUSED


@pytest.mark.parametrize("fault", [U1, ALL_DOMAINS])
def test_injected_failure_leaves_the_guest_running_here(
        pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver], fault: str) -> None:
    one, two = pair
    boot = running(one)
    one.fail_migrate.add(fault)
    with pytest.raises(DriverError, match="injected fault"):
        one.migrate(U1, "fake://hv2", **LIMITS)
    assert one.domain_info(U1).state is DomainState.RUNNING and one.boot_id(U1) == boot
    assert defined_on(two) == [] and two.calls_to("migrate_in") == []
    one.fail_migrate.discard(fault)
    one.migrate(U1, "fake://hv2", **LIMITS)
    assert two.boot_id(U1) == boot


def test_only_the_named_guest_fails(
        pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver]) -> None:
    one, two = pair
    running(one)
    running(one, U2, "vm2")
    one.fail_migrate.add(U2)
    one.migrate(U1, "fake://hv2", **LIMITS)
    with pytest.raises(DriverError):
        one.migrate(U2, "fake://hv2", **LIMITS)
    assert defined_on(one) == [U2] and defined_on(two) == [U1]


@pytest.mark.parametrize(("uri", "limits", "error"), [
    ("fake://hv1", LIMITS, InvalidInput),  # this node
    ("fake://hv2", {"max_downtime_ms": -1, "timeout": 30.0}, InvalidInput),
    ("fake://hv2", {"max_downtime_ms": 300, "timeout": 0}, InvalidInput),
    ("fake://nowhere", LIMITS, DriverError),
    ("qemu+tcp://hv2/system", LIMITS, DriverError),
])
def test_bad_requests_change_nothing(pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver],
                                     uri: str, limits: dict[str, Any],
                                     error: type[Exception]) -> None:
    one, two = pair
    boot = running(one)
    with pytest.raises(error):
        one.migrate(U1, uri, **limits)
    assert one.domain_info(U1).state is DomainState.RUNNING and one.boot_id(U1) == boot
    assert defined_on(two) == []


@pytest.mark.parametrize("state", ["shutoff", "crashed", "shutdown"])
def test_only_a_running_or_paused_guest_migrates(
        pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver], state: str) -> None:
    one, two = pair
    one.define(xml())
    if state != "shutoff":
        one.start(U1)
    if state == "crashed":
        one.crash(U1)
    if state == "shutdown":
        one.hang_shutdown.add(U1)
        assert one.shutdown(U1, timeout=0.01) is False  # still shutting down
    with pytest.raises(Conflict):
        one.migrate(U1, "fake://hv2", **LIMITS)
    assert one.domain_info(U1).state.value == state and defined_on(two) == []
    with pytest.raises(NotFound):
        one.migrate(U2, "fake://hv2", **LIMITS)


def test_a_target_that_cannot_take_the_guest_refuses(registry: Registry) -> None:
    one, small = make("hv1", registry), make("hv2", registry, memory_mib=512)
    running(one)
    with pytest.raises(DriverError, match="MiB free"):
        one.migrate(U1, "fake://hv2", **LIMITS)
    three = make("hv3", registry)
    three.define(xml("vm1", U2))  # the name, with another UUID
    with pytest.raises(DriverError, match="name is taken"):
        one.migrate(U1, "fake://hv3", **LIMITS)
    four = make("hv4", registry)
    running(four)  # the same UUID already running there
    with pytest.raises(DriverError, match="already running"):
        one.migrate(U1, "fake://hv4", **LIMITS)
    assert one.domain_info(U1).state is DomainState.RUNNING
    assert defined_on(small) == [] and defined_on(three) == [U2]
    five = make("hv5", registry)
    five.define(xml())  # a stale inactive definition is replaced, like PERSIST_DEST
    one.migrate(U1, "fake://hv5", **LIMITS)
    assert five.domain_info(U1).state is DomainState.RUNNING


def test_registration(registry: Registry) -> None:
    one = make("hv1", registry)
    with pytest.raises(AlreadyExists):
        make("hv1", registry)
    running(one)
    two = make("hv2", registry)
    two.close()
    two.close()  # idempotent
    with pytest.raises(DriverError, match="no fake hypervisor"):
        one.migrate(U1, "fake://hv2", **LIMITS)  # a closed driver is gone
    one.close()
    again = make("hv1", registry)  # a restarted node registers again
    assert registry.lookup("fake://hv1") is again


def test_without_a_shared_registry_migrations_fail() -> None:
    alone = make("hv1", None)
    other = make("hv2", None)
    assert alone.capabilities().live_migration is True
    assert "no shared registry" in alone.validate().message
    running(alone)
    with pytest.raises(DriverError):
        alone.migrate(U1, "fake://hv2", **LIMITS)
    assert defined_on(other) == []


def test_the_ledger_sees_a_guest_active_on_two_hypervisors(
        pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver], registry: Registry) -> None:
    one, two = pair
    running(one)
    assert registry.active_on(U1) == {"fake://hv1"}
    one.migrate(U1, "fake://hv2", **LIMITS)
    assert registry.active_on(U1) == {"fake://hv2"}
    assert registry.overlaps() == []  # a live migration is one step
    one.define(xml())
    one.start(U1)  # started by hand while it runs on hv2
    assert registry.overlaps() == [(U1, ("fake://hv1", "fake://hv2"))]
    one.destroy(U1)
    two.crash(U1)
    assert registry.active_on(U1) == set()


def test_redefine_keeps_the_boot_and_a_new_start_makes_a_new_one(
        pair: tuple[FakeHypervisorDriver, FakeHypervisorDriver]) -> None:
    one, _ = pair
    one.define(xml())
    assert one.boot_id(U1) is None
    boot = running(one)
    one.define(xml(memory_mib=2048))
    assert one.boot_id(U1) == boot
    one.shutdown(U1, timeout=1.0)
    one.start(U1)
    assert one.boot_id(U1) not in (None, boot)


def test_state_files_follow_the_guest(tmp_path: Path, registry: Registry) -> None:
    one = make("hv1", registry, state_file=str(tmp_path / "hv1.json"))
    two = make("hv2", registry, state_file=str(tmp_path / "hv2.json"))
    running(one)
    one.migrate(U1, "fake://hv2", **LIMITS)
    doc1, doc2 = read_state_file(tmp_path / "hv1.json"), read_state_file(tmp_path / "hv2.json")
    assert doc1 is not None and doc2 is not None
    assert doc1["domains"] == {}
    assert doc2["domains"] == {U1: {"name": "vm1", "state": "running", "active": True}}
    assert defined_on(two) == [U1]


def test_crossing_migrations_never_deadlock(registry: Registry) -> None:
    one, two = make("hv1", registry, memory_mib=65536), make("hv2", registry, memory_mib=65536)
    ours = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(40)]
    for i, uuid in enumerate(ours):
        running(one if i % 2 else two, uuid, f"vm{i}")
    errors: list[BaseException] = []

    def move(src: FakeHypervisorDriver, uri: str, uuids: list[str]) -> None:
        try:
            for uuid in uuids:
                src.migrate(uuid, uri, **LIMITS)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(one, "fake://hv2", ours[1::2])),
               threading.Thread(target=move, args=(two, "fake://hv1", ours[0::2]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a migration deadlocked"
    assert errors == []
    assert sorted(defined_on(one)) == ours[0::2] and sorted(defined_on(two)) == ours[1::2]
    assert registry.overlaps() == []
