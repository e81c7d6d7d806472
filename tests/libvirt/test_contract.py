"""The HypervisorDriver contract, run against the fake and the libvirt driver.

Both serve the same host (16 GiB, 8 CPUs); every behaviour here must be
identical, so the local cluster and the unit tests (fake) mean the same as
a libvirt node.
"""

from __future__ import annotations

import threading
import uuid as uuidlib

import pytest

from pvc_core.drivers.hypervisor import DomainState, HypervisorDriver
from pvc_core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, NotSupported
from tests.libvirt.conftest import HOST_CPUS, HOST_MEMORY_MIB, domain_xml

U1 = "0a7b6c5d-0000-4000-8000-000000000001"
U2 = "0a7b6c5d-0000-4000-8000-000000000002"
UNKNOWN = "0a7b6c5d-0000-4000-8000-0000000000ff"


def test_validate_and_capabilities(hv: HypervisorDriver) -> None:
    assert hv.validate().ok
    caps = hv.capabilities()
    assert caps.live_migration is False
    assert hv.migration_uri() is None


def test_define_reports_a_stopped_domain(hv: HypervisorDriver) -> None:
    info = hv.define(domain_xml("vm1", U1, memory_mib=512, vcpus=2))
    assert (info.uuid, info.name, info.state) == (U1, "vm1", DomainState.SHUTOFF)
    assert (info.memory_mib, info.vcpus) == (512, 2)
    assert hv.domain_info(U1) == info


def test_list_is_sorted_by_name(hv: HypervisorDriver) -> None:
    assert hv.list_domains() == []
    hv.define(domain_xml("zeta", U1))
    hv.define(domain_xml("alpha", U2))
    assert [d.name for d in hv.list_domains()] == ["alpha", "zeta"]


def test_define_without_uuid_generates_one(hv: HypervisorDriver) -> None:
    info = hv.define(domain_xml("anon"))
    assert str(uuidlib.UUID(info.uuid)) == info.uuid


def test_redefine_keeps_the_state(hv: HypervisorDriver) -> None:
    hv.define(domain_xml("vm1", U1))
    hv.start(U1)
    info = hv.define(domain_xml("vm1", U1, vcpus=4))
    assert info.state is DomainState.RUNNING
    assert len(hv.list_domains()) == 1


@pytest.mark.parametrize("xml", [None, "vm2-no-uuid"])
def test_a_name_belongs_to_one_uuid(hv: HypervisorDriver, xml: str | None) -> None:
    hv.define(domain_xml("vm1", U1))
    with pytest.raises(AlreadyExists):
        hv.define(domain_xml("vm1", U2 if xml is None else None))
    assert [d.uuid for d in hv.list_domains()] == [U1]


@pytest.mark.parametrize("xml", [
    "<domain",
    "<vm><name>x</name></vm>",
    "<domain type='test'><memory>1024</memory><os><type>hvm</type></os></domain>",
    "<domain type='test'><name>x</name><uuid>nope</uuid><memory>1</memory></domain>",
    "<domain type='test'><name>x</name><memory>lots</memory></domain>",
])
def test_bad_xml_is_invalid_input(hv: HypervisorDriver, xml: str) -> None:
    with pytest.raises(InvalidInput):
        hv.define(xml)
    assert hv.list_domains() == []


@pytest.mark.parametrize("call", [
    lambda hv, u: hv.domain_info(u), lambda hv, u: hv.start(u),
    lambda hv, u: hv.shutdown(u, 1.0), lambda hv, u: hv.destroy(u),
    lambda hv, u: hv.undefine(u), lambda hv, u: hv.domain_xml(u),
    lambda hv, u: hv.domain_stats(u),
])
@pytest.mark.parametrize("uuid", [UNKNOWN, "not-a-uuid"])
def test_unknown_uuid_is_not_found(hv: HypervisorDriver, call, uuid: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        call(hv, uuid)


def test_lifecycle(hv: HypervisorDriver) -> None:
    hv.define(domain_xml("vm1", U1))
    hv.start(U1)
    hv.start(U1)  # idempotent
    assert hv.domain_info(U1).state is DomainState.RUNNING
    with pytest.raises(Conflict):
        hv.undefine(U1)
    assert hv.shutdown(U1, timeout=5.0) is True
    assert hv.domain_info(U1).state is DomainState.SHUTOFF
    assert hv.shutdown(U1, timeout=5.0) is True  # already off
    hv.start(U1)
    hv.destroy(U1)
    hv.destroy(U1)  # idempotent
    assert hv.domain_info(U1).state is DomainState.SHUTOFF
    hv.undefine(U1)
    with pytest.raises(NotFound):
        hv.domain_info(U1)
    assert hv.list_domains() == []


def test_host_stats_count_active_domains(hv: HypervisorDriver) -> None:
    idle = hv.host_stats()
    assert (idle.memory_total_mib, idle.cpu_count) == (HOST_MEMORY_MIB, HOST_CPUS)
    assert (idle.memory_used_mib, idle.memory_free_mib) == (0, HOST_MEMORY_MIB)
    hv.define(domain_xml("vm1", U1, memory_mib=1024))
    hv.define(domain_xml("vm2", U2, memory_mib=2048))
    hv.start(U1)
    stats = hv.host_stats()
    assert (stats.memory_used_mib, stats.memory_free_mib) == (1024, HOST_MEMORY_MIB - 1024)
    assert stats.load1 >= 0.0


def test_domain_xml_and_stats(hv: HypervisorDriver) -> None:
    hv.define(domain_xml("vm1", U1, memory_mib=768, vcpus=3))
    xml = hv.domain_xml(U1)
    assert "<name>vm1</name>" in xml and U1 in xml
    stopped = hv.domain_stats(U1)
    assert (stopped.uuid, stopped.memory_mib, stopped.vcpus, stopped.cpu_time_ns) == (U1, 768, 3, 0)
    hv.start(U1)
    running = hv.domain_stats(U1)
    assert (running.memory_mib, running.vcpus) == (768, 3)


def test_migrate_is_not_supported(hv: HypervisorDriver) -> None:
    hv.define(domain_xml("vm1", U1))
    hv.start(U1)
    with pytest.raises(NotSupported):
        hv.migrate(U1, "qemu+tcp://elsewhere/system", max_downtime_ms=300, timeout=10)
    assert hv.domain_info(U1).state is DomainState.RUNNING


def test_parallel_callers(hv: HypervisorDriver) -> None:
    uuids = [f"0a7b6c5d-0000-4000-8000-{i:012x}" for i in range(16)]
    errors: list[BaseException] = []

    def work(i: int, uuid: str) -> None:
        try:
            hv.define(domain_xml(f"vm{i:02d}", uuid, memory_mib=64))
            hv.start(uuid)
            hv.list_domains()
            hv.host_stats()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, u)) for i, u in enumerate(uuids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    infos = hv.list_domains()
    assert [d.name for d in infos] == [f"vm{i:02d}" for i in range(16)]
    assert all(d.state is DomainState.RUNNING for d in infos)
    assert hv.host_stats().memory_used_mib == 16 * 64
