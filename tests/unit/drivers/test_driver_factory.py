"""The driver factory loads the fake drivers through their real entry points."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import pytest

from pvc_core.drivers import factory
from pvc_core.drivers.base import GROUPS, DriverContext
from pvc_core.drivers.dns import DnsDriver
from pvc_core.drivers.fence import FenceDriver
from pvc_core.drivers.hypervisor import HypervisorDriver
from pvc_core.drivers.network import NetworkDriver
from pvc_core.drivers.storage import StorageDriver
from pvc_core.errors import DriverLoadError

FAKES = {
    "hypervisor": "pvc_plugins.fake.hypervisor:FakeHypervisorDriver",
    "network": "pvc_plugins.fake.network:FakeNetworkDriver",
    "storage": "pvc_plugins.fake.storage:FakeStorageDriver",
    "dns": "pvc_plugins.fake.dns:FakeDnsDriver",
    "fence": "pvc_plugins.fake.fence:FakeFenceDriver",
}


def ctx(node: str = "hv1") -> DriverContext:
    return DriverContext(node=node)


def test_interfaces_cover_every_group() -> None:
    assert set(factory.INTERFACES) == set(GROUPS) == set(FAKES)


@pytest.mark.parametrize("category", sorted(FAKES))
def test_fake_is_a_real_entry_point(category: str) -> None:
    eps = {ep.name: ep.value for ep in entry_points(group=GROUPS[category])}
    assert eps.get("fake") == FAKES[category]
    assert "fake" in factory.available(category)


@pytest.mark.parametrize("category", sorted(FAKES))
def test_fake_loads_by_name(category: str) -> None:
    cls = factory.driver_class(category, "fake")
    module, _, name = FAKES[category].partition(":")
    assert (cls.__module__, cls.__name__) == (module, name)
    assert issubclass(cls, factory.INTERFACES[category])
    drv = factory.load_driver(category, "fake", {}, ctx())
    assert isinstance(drv, factory.INTERFACES[category])
    assert drv.validate().ok
    assert drv.context.node == "hv1"


def test_typed_loaders() -> None:
    assert isinstance(factory.load_hypervisor("fake", {}, ctx()), HypervisorDriver)
    assert isinstance(factory.load_storage("fake", {}, ctx()), StorageDriver)
    assert isinstance(factory.load_dns("fake", {}, ctx()), DnsDriver)
    nets = factory.load_networks([("fake", {}), ("fake", {"kinds": ["bridged"]})], ctx())
    assert len(nets) == 2 and all(isinstance(n, NetworkDriver) for n in nets)
    chain = factory.load_fence_chain([("fake", {}), ("fake", {"fail": True})], ctx("hv2"))
    assert all(isinstance(f, FenceDriver) for f in chain)
    assert [f.context.node for f in chain] == ["hv2", "hv2"]
    assert factory.load_networks([], ctx()) == []


def test_missing_driver_names_group_and_known_names() -> None:
    with pytest.raises(DriverLoadError) as err:
        factory.driver_class("hypervisor", "libvirt-nope")
    msg = str(err.value)
    assert "hypervisor driver 'libvirt-nope' is not installed" in msg
    assert "pvc.drivers.hypervisor" in msg
    assert "fake" in msg


def test_unknown_category() -> None:
    with pytest.raises(DriverLoadError, match="unknown driver category 'gpu'"):
        factory.driver_class("gpu", "fake")
    with pytest.raises(DriverLoadError, match="unknown driver category"):
        factory.available("gpu")


def test_constructor_failure_is_a_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pvc_plugins.fake.dns import FakeDnsDriver

    def boom(self: Any, config: Mapping[str, Any], context: DriverContext) -> None:
        raise ValueError("no zone")

    monkeypatch.setattr(FakeDnsDriver, "__init__", boom)
    with pytest.raises(DriverLoadError, match="dns driver 'fake' failed to initialise: "
                                              "ValueError: no zone"):
        factory.load_driver("dns", "fake", {}, ctx())


def test_load_drivers_closes_what_loaded_when_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from pvc_plugins.fake.network import FakeNetworkDriver

    closed: list[str] = []
    monkeypatch.setattr(FakeNetworkDriver, "close", lambda self: closed.append("closed"))
    with pytest.raises(DriverLoadError) as err:
        factory.load_drivers("network", [("fake", {}), ("nope", {}), ("nope2", {})], ctx())
    assert "'nope' is not installed" in str(err.value)
    assert "'nope2' is not installed" in str(err.value)
    assert closed == ["closed"]


def test_load_entry_point_of_any_group() -> None:
    obj = factory.load_entry_point("pvc.drivers.fence", "fake", "fence driver 'fake'")
    assert obj.__name__ == "FakeFenceDriver"
    with pytest.raises(DriverLoadError, match=r"hook plugin 'x' is not installed "
                                              r"\(entry points in pvc.nothing: none\)"):
        factory.load_entry_point("pvc.nothing", "x", "hook plugin 'x'")
