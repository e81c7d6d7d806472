"""The driver interfaces: contracts documented, optional parts safe by default."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from pvc_core.drivers.base import Driver, DriverContext
from pvc_core.drivers.dns import DnsDriver, DnsRecord
from pvc_core.drivers.factory import INTERFACES
from pvc_core.drivers.fence import FenceDriver, PowerState
from pvc_core.drivers.hypervisor import (
    Capabilities,
    DomainInfo,
    DomainState,
    DomainStats,
    HypervisorDriver,
)
from pvc_core.drivers.network import NetworkDriver, NetworkKind, NetworkSpec
from pvc_core.drivers.storage import StorageDriver
from pvc_core.errors import NotSupported

REQUIRED = {
    HypervisorDriver: {"validate", "capabilities", "host_stats", "list_domains", "domain_info",
                       "define", "undefine", "start", "shutdown", "destroy", "domain_xml"},
    NetworkDriver: {"validate", "list_networks", "ensure_network", "remove_network"},
    StorageDriver: {"validate", "list_pools", "list_volumes", "create_volume", "remove_volume",
                    "clear_locks", "fence_node"},
    DnsDriver: {"validate", "start_aggregator", "stop_aggregator", "set_record",
                "remove_record"},
    FenceDriver: {"validate", "power_off", "power_status"},
}


def public_methods(cls: type) -> dict[str, Any]:
    return {name: fn for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")}


def minimal(cls: Any) -> Driver:
    """An instance implementing only the abstract methods (they return None)."""
    impl = {name: (lambda self, *a, **k: None) for name in cls.__abstractmethods__}
    sub = type(f"Minimal{cls.__name__}", (cls,), impl)
    instance: Driver = sub({}, DriverContext(node="hv1"))
    return instance


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_required_operations_are_abstract(cls: type[Driver]) -> None:
    assert set(cls.__abstractmethods__) == REQUIRED[cls]


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_every_method_states_contract_timeout_and_exceptions(cls: type[Driver]) -> None:
    methods = public_methods(cls)
    assert {"validate", "close"} <= set(methods)  # the common Driver methods are checked too
    for name, fn in methods.items():
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 40, f"{cls.__name__}.{name} has no real docstring"
        assert any(word in doc for word in ("imeout", "within", "Fast")), \
            f"{cls.__name__}.{name} does not state its time bound"
        assert "rais" in doc.lower(), f"{cls.__name__}.{name} does not state what it raises"


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_category_matches_interface_table(cls: type[Driver]) -> None:
    assert INTERFACES[cls.category] is cls


def test_fence_doc_says_the_context_node_is_the_target() -> None:
    assert "target" in (FenceDriver.__doc__ or "")
    assert "context.node" in (FenceDriver.__doc__ or "")


def test_hypervisor_optional_defaults() -> None:
    drv = minimal(HypervisorDriver)
    assert isinstance(drv, HypervisorDriver)
    with pytest.raises(NotSupported):
        drv.migrate("u", "qemu+tcp://hv2/system", max_downtime_ms=300, timeout=10)
    assert drv.migration_uri() is None
    assert drv.console_log_path("u") is None


def test_hypervisor_default_domain_stats_uses_domain_info() -> None:
    drv = minimal(HypervisorDriver)
    assert isinstance(drv, HypervisorDriver)
    info = DomainInfo("u1", "vm1", DomainState.RUNNING, 1024, 2)
    drv.domain_info = lambda uuid: info  # type: ignore[method-assign]
    assert drv.domain_stats("u1") == DomainStats(uuid="u1", memory_mib=1024, vcpus=2)


def test_network_optional_defaults() -> None:
    drv = minimal(NetworkDriver)
    assert isinstance(drv, NetworkDriver)
    with pytest.raises(NotSupported):
        drv.add_floating_ip("10.0.0.254/24", "br0")
    with pytest.raises(NotSupported):
        drv.remove_floating_ip("10.0.0.254/24", "br0")


def test_storage_optional_defaults() -> None:
    drv = minimal(StorageDriver)
    assert isinstance(drv, StorageDriver)
    for call in (lambda: drv.list_snapshots("p", "v"), lambda: drv.create_snapshot("p", "v", "s"),
                 lambda: drv.remove_snapshot("p", "v", "s")):
        with pytest.raises(NotSupported):
            call()
    assert drv.stats() == {}


def test_dns_and_fence_optional_defaults() -> None:
    dns = minimal(DnsDriver)
    assert isinstance(dns, DnsDriver)
    with pytest.raises(NotSupported):
        dns.list_records("example.com")
    fence = minimal(FenceDriver)
    assert isinstance(fence, FenceDriver)
    with pytest.raises(NotSupported, match="cannot power nodes on"):
        fence.power_on(5.0)
    fence.close()  # the default close is a harmless no-op


def test_not_supported_is_a_501_driver_error() -> None:
    assert NotSupported("x").status == 501


def test_domain_state_active() -> None:
    active = {s for s in DomainState if s.active}
    assert active == {DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUTDOWN}
    assert DomainState("shutoff") is DomainState.SHUTOFF


def test_enums_have_plain_string_values() -> None:
    assert [s.value for s in PowerState] == ["on", "off", "unknown"]
    assert str(NetworkKind.MANAGED) == "managed"


@pytest.mark.parametrize("value", [
    DomainInfo("u", "n", DomainState.RUNNING, 1, 1),
    Capabilities(),
    NetworkSpec("net", NetworkKind.BRIDGED, 100),
    DnsRecord("z", "n", "A", "10.0.0.1"),
], ids=lambda v: type(v).__name__)
def test_data_types_are_frozen(value: Any) -> None:
    field = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, "changed")
