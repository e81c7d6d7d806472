"""The libvirt driver on libvirt's test driver: what the contract does not cover."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from pvc_core.drivers import factory
from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.errors import DriverError, DriverTimeout, InvalidInput, NotFound, NotSupported
from pvc_plugins.hypervisor_libvirt.driver import LibvirtHypervisorDriver
from pvc_plugins.hypervisor_libvirt.migration import ADDRESS_PARAM
from tests.libvirt.conftest import PREEXISTING_UUID, domain_xml, write_node_file

U1 = "5c0ffee0-0000-4000-8000-000000000001"
Make = Callable[..., LibvirtHypervisorDriver]


def test_entry_point_loads_the_driver(node_file: Path) -> None:
    drv = factory.load_hypervisor("libvirt", {"uri": f"test://{node_file}"},
                                  DriverContext(node="hv1"))
    try:
        assert isinstance(drv, LibvirtHypervisorDriver)
        assert drv.validate().ok
    finally:
        drv.close()


@pytest.mark.parametrize("config", [
    {}, {"uri": ""}, {"uri": "test:///default", "bogus": 1},
    {"uri": "qemu:///system", "migration_address": "10.0.0.2"},
    {"uri": "qemu:///system", "connect_timeout": 0},
])
def test_config_schema_rejects(config: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, LibvirtHypervisorDriver.config_schema)


def test_config_schema_accepts_a_production_section() -> None:
    section = {"uri": "qemu:///system", "migration_uri": "qemu+tcp://10.0.0.2/system",
               "migration_address": "tcp://10.0.0.2", "connect_timeout": 5}
    validator = jsonschema.Draft202012Validator(LibvirtHypervisorDriver.config_schema)
    assert [e.message for e in validator.iter_errors(section)] == []
    # The driver takes every setting from it (constructing it opens no connection).
    drv = factory.load_hypervisor("libvirt", section, DriverContext(node="hv1"))
    try:
        assert isinstance(drv, LibvirtHypervisorDriver)
        assert drv.uri == "qemu:///system"
        assert drv.connect_timeout == 5.0
        assert drv.poll_interval == 0.25  # the schema's default
        # migration_address rides on the migration URI (a QEMU URI is migratable)
        assert drv.migration_uri() == f"qemu+tcp://10.0.0.2/system?{ADDRESS_PARAM}=tcp://10.0.0.2"
    finally:
        drv.close()


def test_validate_reports_the_driver(libvirt_driver: LibvirtHypervisorDriver) -> None:
    result = libvirt_driver.validate()
    assert result.ok and "TEST" in result.message


def test_validate_fails_for_an_unusable_uri(make_libvirt: Make, tmp_path: Path) -> None:
    result = make_libvirt(uri=f"test://{tmp_path}/missing.xml").validate()
    assert not result.ok and "missing.xml" in result.message


def test_two_drivers_on_one_node_file_are_independent(make_libvirt: Make) -> None:
    a, b = make_libvirt(), make_libvirt()
    a.define(domain_xml("vm1", U1))
    a.start(U1)
    assert b.list_domains() == []
    with pytest.raises(NotFound):
        b.domain_info(U1)
    assert a.domain_info(U1).state is DomainState.RUNNING


def test_preloaded_domain_of_the_node_file(make_libvirt: Make, tmp_path: Path) -> None:
    (tmp_path / "pre").mkdir()
    path = write_node_file(tmp_path / "pre", preexisting=True)
    drv = make_libvirt(uri=f"test://{path}")
    (info,) = drv.list_domains()
    assert (info.uuid, info.name, info.memory_mib, info.vcpus) == (
        PREEXISTING_UUID, "preexisting-vm", 1024, 2)
    assert info.state is DomainState.RUNNING
    assert drv.host_stats().memory_used_mib == 1024


def test_state_lives_as_long_as_the_driver(make_libvirt: Make) -> None:
    first = make_libvirt()
    first.define(domain_xml("vm1", U1))
    first.close()
    first.close()  # idempotent
    with pytest.raises(DriverError, match="closed"):
        first.list_domains()
    assert make_libvirt().list_domains() == []  # a new "boot" of the fake node


def test_migrate_says_why(libvirt_driver: LibvirtHypervisorDriver) -> None:
    libvirt_driver.define(domain_xml("vm1", U1))
    with pytest.raises(NotSupported, match="shutdown-migration"):
        libvirt_driver.migrate(U1, "qemu+tcp://10.0.0.3/system", max_downtime_ms=300, timeout=5)


def test_migration_uri_only_for_migratable_hypervisors(make_libvirt: Make) -> None:
    assert make_libvirt(migration_uri="qemu+tcp://x/system").migration_uri() is None
    qemu = LibvirtHypervisorDriver(
        {"uri": "qemu+unix:///system?socket=/nonexistent/sock",
         "migration_uri": "qemu+unix:///system?socket=/nonexistent/sock",
         "migration_address": "tcp://10.250.0.9", "connect_timeout": 1},
        DriverContext(node="hv9"))
    try:
        assert qemu.capabilities().live_migration  # from the URI, no connection yet
        assert qemu.migration_uri() == ("qemu+unix:///system?socket=/nonexistent/sock"
                                        "&pvc_migration_address=tcp://10.250.0.9")
        assert not qemu.validate().ok
        with pytest.raises(DriverError):
            qemu.list_domains()
    finally:
        qemu.close()


def test_migrate_rejects_bad_arguments(make_libvirt: Make) -> None:
    qemu = make_libvirt(uri="qemu+unix:///system?socket=/nonexistent/sock", connect_timeout=1)
    with pytest.raises(InvalidInput):
        qemu.migrate(U1, "qemu+tcp://b/system", max_downtime_ms=-1, timeout=5)
    with pytest.raises(InvalidInput, match="this node"):
        qemu.migrate(U1, "qemu+unix:///system?socket=/nonexistent/sock", max_downtime_ms=0,
                     timeout=5)


@pytest.mark.parametrize(("devices", "expected"), [
    ("", None),
    ("<serial type='file'><source path='/var/log/pvc/vm1.log'/><target port='0'/></serial>",
     "/var/log/pvc/vm1.log"),
    ("<serial type='pty'><log file='/var/log/pvc/pty.log' append='on'/><target port='0'/></serial>",
     "/var/log/pvc/pty.log"),
    ("<console type='file'><source path='/var/log/pvc/c.log'/><target type='serial'/></console>",
     "/var/log/pvc/c.log"),
])
def test_console_log_path(libvirt_driver: LibvirtHypervisorDriver, devices: str,
                          expected: str | None) -> None:
    libvirt_driver.define(domain_xml("vm1", U1, devices=devices))
    assert libvirt_driver.console_log_path(U1) == expected
    assert libvirt_driver.capabilities().console_log is True


def test_console_log_path_of_unknown_domain(libvirt_driver: LibvirtHypervisorDriver) -> None:
    with pytest.raises(NotFound):
        libvirt_driver.console_log_path(U1)


def test_missing_domain_type_is_invalid_input(libvirt_driver: LibvirtHypervisorDriver) -> None:
    with pytest.raises(InvalidInput, match="type"):
        libvirt_driver.define("<domain><name>x</name><memory>1024</memory></domain>")


def test_libvirt_rejections_are_invalid_input(libvirt_driver: LibvirtHypervisorDriver) -> None:
    # Well-formed for PVC, rejected by libvirt itself (no <os><type>).
    with pytest.raises(InvalidInput, match="os"):
        libvirt_driver.define("<domain type='test'><name>x</name><memory>1024</memory></domain>")


def test_uuid_case_is_canonicalised(libvirt_driver: LibvirtHypervisorDriver) -> None:
    libvirt_driver.define(domain_xml("vm1", U1.upper()))
    assert libvirt_driver.domain_info(U1.upper()).uuid == U1


def test_shutdown_with_zero_timeout(libvirt_driver: LibvirtHypervisorDriver) -> None:
    libvirt_driver.define(domain_xml("vm1", U1))
    libvirt_driver.start(U1)
    assert libvirt_driver.shutdown(U1, timeout=0) is True  # the test driver stops at once


def test_a_hung_libvirtd_gives_timeouts_not_hangs(tmp_path: Path, make_libvirt: Make) -> None:
    # A unix socket that accepts connections and never answers: a hung libvirtd.
    path = tmp_path / "hung-sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    try:
        drv = make_libvirt(uri=f"qemu+unix:///system?socket={path}", connect_timeout=0.3)
        started = time.monotonic()
        result = drv.validate()
        assert not result.ok and "no answer" in result.message
        with pytest.raises(DriverTimeout):
            drv.list_domains()
        assert time.monotonic() - started < 3
    finally:
        server.close()  # the abandoned libvirt threads see EOF and end
