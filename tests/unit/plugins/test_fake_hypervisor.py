"""The fake hypervisor keeps the hypervisor contract, in memory."""

from __future__ import annotations

import json
import os
import threading
import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.hypervisor import DomainState, HostStats
from pvc_core.errors import AlreadyExists, Conflict, DriverError, InvalidInput, NotFound
from pvc_local import procs
from pvc_plugins.fake import hypervisor as fakehv
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver, read_state_file

U1 = "11111111-2222-3333-4444-555555555555"


def xml(name: str = "vm1", uuid: str | None = U1, memory: str = "1024",
        unit: str | None = "MiB", vcpu: str | None = "2") -> str:
    parts = [f"<name>{name}</name>"]
    if uuid is not None:
        parts.append(f"<uuid>{uuid}</uuid>")
    unit_attr = f' unit="{unit}"' if unit else ""
    parts.append(f"<memory{unit_attr}>{memory}</memory>")
    if vcpu is not None:
        parts.append(f"<vcpu>{vcpu}</vcpu>")
    return f"<domain type='kvm'>{''.join(parts)}</domain>"


@pytest.fixture
def hv() -> FakeHypervisorDriver:
    return FakeHypervisorDriver({"memory_mib": 4096, "cpus": 4, "load1": 0.5},
                                DriverContext(node="hv1"))


def test_define_start_shutdown_undefine(hv: FakeHypervisorDriver) -> None:
    info = hv.define(xml())
    assert (info.uuid, info.name, info.state, info.memory_mib, info.vcpus) == \
        (U1, "vm1", DomainState.SHUTOFF, 1024, 2)
    hv.start(U1)
    assert hv.domain_info(U1).state is DomainState.RUNNING
    hv.start(U1)  # idempotent
    assert hv.shutdown(U1, timeout=5.0) is True
    assert hv.domain_info(U1).state is DomainState.SHUTOFF
    assert hv.shutdown(U1, timeout=5.0) is True  # already off
    hv.undefine(U1)
    assert hv.list_domains() == []
    with pytest.raises(NotFound):
        hv.domain_info(U1)


@pytest.mark.parametrize(("memory", "unit", "mib"), [
    ("1048576", None, 1024),       # libvirt's default unit is KiB
    ("2", "GiB", 2048), ("2", "G", 2048), ("1", "GB", 954), ("512", "MiB", 512),
    ("1", "b", 1), ("1048577", "KiB", 1025),
])
def test_memory_units(hv: FakeHypervisorDriver, memory: str, unit: str | None,
                      mib: int) -> None:
    assert hv.define(xml(memory=memory, unit=unit)).memory_mib == mib


def test_missing_uuid_is_generated_and_kept_in_xml(hv: FakeHypervisorDriver) -> None:
    info = hv.define(xml(uuid=None, vcpu=None))
    assert uuidlib.UUID(info.uuid) and info.vcpus == 1
    assert info.uuid in hv.domain_xml(info.uuid)


def test_uuid_is_normalised(hv: FakeHypervisorDriver) -> None:
    assert hv.define(xml(uuid=U1.upper())).uuid == U1


@pytest.mark.parametrize("bad", [
    "<domain><name>x</name>", "not xml at all", "<vm><name>x</name></vm>",
    xml(name=""), xml(uuid="not-a-uuid"), xml(memory="lots"), xml(memory="0"),
    xml(unit="parsecs"), xml(vcpu="-1"), "<domain><name>x</name></domain>",
])
def test_bad_xml_is_invalid_input(hv: FakeHypervisorDriver, bad: str) -> None:
    with pytest.raises(InvalidInput):
        hv.define(bad)
    assert hv.list_domains() == []


def test_name_taken_by_another_uuid(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    with pytest.raises(AlreadyExists, match="vm1"):
        hv.define(xml(uuid=str(uuidlib.uuid4())))


def test_redefine_keeps_state(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    hv.start(U1)
    info = hv.define(xml(name="vm1-renamed", memory="2048"))
    assert (info.name, info.state, info.memory_mib) == ("vm1-renamed", DomainState.RUNNING, 2048)


def test_undefine_active_is_a_conflict(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    hv.start(U1)
    with pytest.raises(Conflict):
        hv.undefine(U1)


@pytest.mark.parametrize("op", ["start", "destroy", "undefine", "domain_xml", "domain_info"])
def test_unknown_uuid_is_not_found(hv: FakeHypervisorDriver, op: str) -> None:
    with pytest.raises(NotFound, match="hv1"):
        getattr(hv, op)(U1)
    with pytest.raises(NotFound):
        hv.shutdown(U1, 1.0)


def test_host_stats_count_active_domains(hv: FakeHypervisorDriver) -> None:
    assert hv.host_stats() == HostStats(4096, 0, 4096, 4, 0.5)
    hv.define(xml())
    other = hv.define(xml(name="vm2", uuid=None, memory="512"))
    assert hv.host_stats().memory_used_mib == 0  # defined is not allocated
    hv.start(U1)
    hv.start(other.uuid)
    assert hv.host_stats().memory_used_mib == 1536
    assert hv.host_stats().memory_free_mib == 2560


def test_start_without_memory_fails(hv: FakeHypervisorDriver) -> None:
    hv.define(xml(memory="5000"))
    with pytest.raises(DriverError, match="needs 5000 MiB"):
        hv.start(U1)


def test_fail_start(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    hv.fail_start.add(U1)
    with pytest.raises(DriverError, match="injected"):
        hv.start(U1)
    assert hv.domain_info(U1).state is DomainState.SHUTOFF


def test_hung_shutdown_times_out_and_destroy_ends_it(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    hv.start(U1)
    hv.hang_shutdown.add(U1)
    assert hv.shutdown(U1, timeout=0.01) is False
    assert hv.domain_info(U1).state is DomainState.SHUTDOWN
    hv.destroy(U1)
    assert hv.domain_info(U1).state is DomainState.SHUTOFF


def test_destroy_wakes_a_waiting_shutdown(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    hv.start(U1)
    hv.hang_shutdown.add(U1)
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(hv.shutdown(U1, timeout=30)))
    waiter.start()
    assert hv.wait_for_state(U1, DomainState.SHUTDOWN, timeout=5)
    hv.destroy(U1)
    waiter.join(5)
    assert outcome == [True]


def test_finish_shutdown(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    hv.start(U1)
    hv.hang_shutdown.add(U1)
    hv.shutdown(U1, timeout=0.0)
    hv.finish_shutdown(U1)
    assert hv.domain_info(U1).state is DomainState.SHUTOFF
    hv.start(U1)
    assert hv.shutdown(U1, timeout=1.0) is True  # no longer hangs


def test_crash_and_pause(hv: FakeHypervisorDriver) -> None:
    hv.define(xml())
    with pytest.raises(Conflict):
        hv.pause(U1)
    hv.start(U1)
    hv.pause(U1)
    assert hv.domain_info(U1).state is DomainState.PAUSED
    hv.crash(U1)
    assert hv.domain_info(U1).state is DomainState.CRASHED
    assert not hv.domain_info(U1).state.active
    hv.start(U1)
    assert hv.domain_info(U1).state is DomainState.RUNNING


def test_list_domains_sorted_by_name(hv: FakeHypervisorDriver) -> None:
    for name in ("zeta", "alpha", "mid"):
        hv.define(xml(name=name, uuid=None, memory="1"))
    assert [d.name for d in hv.list_domains()] == ["alpha", "mid", "zeta"]


def test_instances_are_independent() -> None:
    one = FakeHypervisorDriver({}, DriverContext(node="hv1"))
    two = FakeHypervisorDriver({}, DriverContext(node="hv2"))
    one.define(xml())
    assert two.list_domains() == []
    assert one.host_stats().memory_total_mib == 32768  # the default
    assert one.calls != two.calls


def test_capabilities_and_optional_defaults(hv: FakeHypervisorDriver) -> None:
    caps = hv.capabilities()
    assert caps.live_migration is False and caps.console_log is False
    assert hv.migration_uri() is None
    hv.define(xml())
    assert hv.console_log_path(U1) is None
    stats = hv.domain_stats(U1)
    assert (stats.memory_mib, stats.vcpus) == (1024, 2)


def test_calls_are_recorded(hv: FakeHypervisorDriver) -> None:
    hv.validate()
    hv.define(xml())
    hv.start(U1)
    hv.shutdown(U1, 2.5)
    assert [c[0] for c in hv.calls] == ["validate", "define", "start", "shutdown"]
    assert hv.calls_to("shutdown") == [(U1, 2.5)]
    hv.clear_calls()
    assert hv.calls == []


# -- the optional state file ---------------------------------------------------


def published(path: Path) -> dict[str, Any]:
    doc = read_state_file(path)
    assert doc is not None
    return doc


def test_state_file_follows_every_change(tmp_path: Path) -> None:
    path = tmp_path / "hv.json"
    drv = FakeHypervisorDriver({"state_file": str(path)}, DriverContext(node="hv1"))
    doc = published(path)  # written at once: a new process's hypervisor is empty
    assert (doc["node"], doc["pid"], doc["domains"]) == ("hv1", os.getpid(), {})
    assert doc["pid_start"] == procs.start_time_of(os.getpid())
    seqs = [doc["seq"]]

    def step(expected: dict[str, Any]) -> None:
        doc = published(path)
        assert doc["domains"] == expected
        assert doc["seq"] > seqs[-1]
        seqs.append(doc["seq"])

    drv.define(xml())
    step({U1: {"name": "vm1", "state": "shutoff", "active": False}})
    drv.start(U1)
    step({U1: {"name": "vm1", "state": "running", "active": True}})
    drv.pause(U1)
    step({U1: {"name": "vm1", "state": "paused", "active": True}})
    drv.destroy(U1)
    step({U1: {"name": "vm1", "state": "shutoff", "active": False}})
    drv.undefine(U1)
    step({})
    assert [p.name for p in tmp_path.iterdir()] == ["hv.json"]  # no temporary left


def test_state_file_never_under_reports(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Activation is written before the guest runs; deactivation after it stopped."""
    path = tmp_path / "hv.json"
    drv = FakeHypervisorDriver({"state_file": str(path)}, DriverContext(node="hv1"))
    drv.define(xml())
    seen: list[tuple[str, str]] = []  # (state in the file being written, state in memory)
    real = fakehv._atomic_write

    def spy(target: Path, text: str) -> None:
        dom = drv._domains.get(U1)
        seen.append((json.loads(text)["domains"][U1]["state"], dom.state.value if dom else "-"))
        real(target, text)

    monkeypatch.setattr(fakehv, "_atomic_write", spy)
    drv.start(U1)
    drv.destroy(U1)
    assert seen == [("running", "shutoff"), ("shutoff", "shutoff")]


def test_relative_state_file_lives_in_the_state_dir(tmp_path: Path) -> None:
    drv = FakeHypervisorDriver({"state_file": "hv.json"},
                               DriverContext(node="hv1", state_dir=str(tmp_path / "st")))
    assert drv.state_file == tmp_path / "st" / "hv.json"
    assert published(tmp_path / "st" / "hv.json")["domains"] == {}


def test_without_state_file_nothing_is_written(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    drv = FakeHypervisorDriver({}, DriverContext(node="hv1", state_dir=str(tmp_path)))
    drv.define(xml())
    drv.start(U1)
    assert drv.state_file is None and list(tmp_path.iterdir()) == []
    assert read_state_file(tmp_path / "missing.json") is None


def test_unwritable_state_file_is_logged_not_raised(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    drv = FakeHypervisorDriver({"state_file": str(blocker / "hv.json")},
                               DriverContext(node="hv1"))
    drv.define(xml())
    drv.start(U1)
    assert drv.domain_info(U1).state is DomainState.RUNNING
    assert "cannot write" in caplog.text
