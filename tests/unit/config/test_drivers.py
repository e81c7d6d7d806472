"""Driver sections: each enabled driver validates its own section with its schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from pvc_core.config import Config
from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.errors import ConfigError

from .stubs import DRIVERS, RecordingLookup, StubHypervisor, merged


def _error(parse: Callable[..., Config], data: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(data, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_hypervisor_section_validated_by_driver_schema(parse: Callable[..., Config]) -> None:
    assert _error(parse, merged(hypervisor={"libvirt": {"uri": 5}})) == (
        "hypervisor.libvirt.uri: must be a string, got 5")
    assert _error(parse, merged(hypervisor={"libvirt": {"max_vms": 0}})) == (
        "hypervisor.libvirt.max_vms: must be an integer >= 1, got 0")
    assert _error(parse, merged(hypervisor={"libvirt": {"urii": "x"}})) == (
        "hypervisor.libvirt.urii: unknown key (did you mean uri?)")


def test_driver_section_defaults_and_options(parse: Callable[..., Config]) -> None:
    cfg = parse(merged(hypervisor={"libvirt": {"max_vms": 8}}))
    assert cfg.driver_options("hypervisor", "libvirt") == {"uri": "qemu:///system", "max_vms": 8}
    assert cfg.raw["hypervisor"]["libvirt"] == {"uri": "qemu:///system", "max_vms": 8}


def test_network_drivers_each_validated(parse: Callable[..., Config]) -> None:
    data = merged(networking={"enabled": True, "drivers": ["bridge"]})
    assert _error(parse, data) == "networking.bridge.bridge_device: is required"
    data["networking"]["bridge"] = {"bridge_device": "eth0"}
    assert _error(parse, data) == (
        'networking.bridge.bridge_device: must be a bridge name starting with br, got "eth0"')
    data["networking"]["bridge"] = {"bridge_device": "br0"}
    cfg = parse(data)
    assert cfg.networking.drivers == ("bridge",)
    assert cfg.driver_options("network", "bridge") == {"bridge_device": "br0", "mtu": 1500}


def test_duplicate_network_driver(parse: Callable[..., Config]) -> None:
    data = merged(networking={"enabled": True, "drivers": ["bridge", "bridge"]})
    assert _error(parse, data) == 'networking.drivers[1]: duplicate of networking.drivers[0], ' \
                                  'got "bridge"'


def test_disabled_subsystem_driver_is_never_looked_up(parse: Callable[..., Config],
                                                      lookup: RecordingLookup) -> None:
    data = merged(storage={"enabled": False, "driver": "ceph", "ceph": {"pool": 5, "junk": 1}},
                  dns={"driver": "broken", "broken": {"anything": True}},
                  networking={"drivers": ["sriov"]},
                  fencing={"enabled": False,
                           "chain": {"node1": [{"driver": "redfish", "bogus": 1}]}})
    cfg = parse(data)
    assert lookup.calls == [("hypervisor", "libvirt")]
    assert cfg.storage.driver == "ceph" and not cfg.storage.enabled
    assert dict(cfg.storage.options) == {}
    assert cfg.enabled_drivers() == (("hypervisor", "libvirt"),)
    with pytest.raises(ConfigError, match="storage driver 'ceph' is not enabled"):
        cfg.driver_options("storage", "ceph")


def test_hypervisor_manager_alone(parse: Callable[..., Config]) -> None:
    def refuse(category: str, name: str) -> type[Driver]:
        if category != "hypervisor":
            raise AssertionError(f"looked up {category} {name}")
        return StubHypervisor

    cfg = parse(merged(fencing={"enabled": False}), driver_lookup=refuse)
    assert not (cfg.networking.enabled or cfg.storage.enabled or cfg.dns.enabled)


def test_enabled_but_missing_driver_names_the_key(parse: Callable[..., Config]) -> None:
    assert _error(parse, merged(hypervisor={"driver": "xen"})) == (
        "hypervisor.driver: hypervisor driver 'xen' is not installed")
    assert _error(parse, merged(storage={"enabled": True, "driver": "zfs"})) == (
        "storage.driver: storage driver 'zfs' is not installed")
    data = merged(networking={"enabled": True, "drivers": ["bridge", "ovs"],
                              "bridge": {"bridge_device": "br0"}})
    assert _error(parse, data) == "networking.drivers[1]: network driver 'ovs' is not installed"


def test_fence_chain_entries_validated(parse: Callable[..., Config],
                                       lookup: RecordingLookup) -> None:
    chain = {"node2": [{"driver": "ipmi", "host": "10.0.0.102"}],
             "node1": [{"driver": "ipmi", "host": "10.0.0.101", "port": 6230}]}
    cfg = parse(merged(fencing={"chain": chain}))
    assert lookup.calls.count(("fence", "ipmi")) == 1
    entry = cfg.fencing.chain["node2"][0]
    assert entry.driver == "ipmi"
    assert dict(entry.options) == {"host": "10.0.0.102", "port": 623}
    assert dict(cfg.fencing.chain["node1"][0].options)["port"] == 6230
    assert ("fence", "ipmi") in cfg.enabled_drivers()
    with pytest.raises(ConfigError, match="per chain entry"):
        cfg.driver_options("fence", "ipmi")

    bad = {"node1": [{"driver": "ipmi", "host": "h"}, {"driver": "ipmi", "port": "623"}]}
    message = _error(parse, merged(fencing={"chain": bad}))
    assert message == "fencing.chain.node1[1].host: is required (and 1 more)"
    bad = {"node1": [{"driver": "ipmi", "host": "h", "password": "x"}]}
    assert _error(parse, merged(fencing={"chain": bad})) == (
        "fencing.chain.node1[0].password: unknown key")
    bad = {"node3": [{"driver": "redfish", "host": "h"}]}
    assert _error(parse, merged(fencing={"chain": bad})) == (
        "fencing.chain.node3[0].driver: fence driver 'redfish' is not installed")


def test_driver_with_broken_schema_is_reported(parse: Callable[..., Config]) -> None:
    class Broken(Driver):
        category = "storage"
        config_schema: ClassVar[dict[str, Any]] = {"type": "mapping"}

        def validate(self) -> ValidationResult:
            return ValidationResult(True)

    lookup = RecordingLookup({**DRIVERS, ("storage", "odd"): Broken})
    message = _error(parse, merged(storage={"enabled": True, "driver": "odd"}),
                     driver_lookup=lookup)
    assert message.startswith("storage.driver: storage driver 'odd' has an invalid config_schema")


def test_reserved_names_are_not_driver_names(parse: Callable[..., Config]) -> None:
    assert _error(parse, merged(hypervisor={"driver": "enabled"})).startswith(
        "hypervisor.driver: must be a driver name")
    assert _error(parse, merged(networking={"drivers": ["Bridge"]})).startswith(
        "networking.drivers[0]: must be a driver name")
