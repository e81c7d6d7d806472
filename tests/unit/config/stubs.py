"""Tiny stub drivers and an injectable lookup (no entry points involved)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.errors import DriverLoadError


class _Stub(Driver):
    def validate(self) -> ValidationResult:
        return ValidationResult(True)


class StubHypervisor(_Stub):
    category = "hypervisor"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False,
        "properties": {"uri": {"type": "string", "default": "qemu:///system"},
                       "max_vms": {"type": "integer", "minimum": 1}},
    }


class StubBridge(_Stub):
    category = "network"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "required": ["bridge_device"], "additionalProperties": False,
        "properties": {"bridge_device": {"type": "string", "pattern": "^br",
                                         "x-reason": "must be a bridge name starting with br"},
                       "mtu": {"type": "integer", "minimum": 576, "default": 1500}},
    }


class StubCeph(_Stub):
    category = "storage"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {"pool": {"type": "string", "default": "vms"}},
    }


class StubIpmi(_Stub):
    category = "fence"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "required": ["host"], "additionalProperties": False,
        "properties": {"host": {"type": "string", "minLength": 1},
                       "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                                "default": 623}},
    }


DRIVERS: dict[tuple[str, str], type[Driver]] = {
    ("hypervisor", "libvirt"): StubHypervisor,
    ("network", "bridge"): StubBridge,
    ("storage", "ceph"): StubCeph,
    ("fence", "ipmi"): StubIpmi,
}


class RecordingLookup:
    """A driver lookup over :data:`DRIVERS` that records every call."""

    def __init__(self, drivers: dict[tuple[str, str], type[Driver]] | None = None) -> None:
        self.drivers = DRIVERS if drivers is None else drivers
        self.calls: list[tuple[str, str]] = []

    def __call__(self, category: str, name: str) -> type[Driver]:
        self.calls.append((category, name))
        try:
            return self.drivers[(category, name)]
        except KeyError:
            raise DriverLoadError(f"{category} driver {name!r} is not installed") from None


def permissive_lookup(category: str, name: str) -> type[Driver]:
    """Any driver name resolves to a class whose schema accepts any mapping."""

    class Anything(_Stub):
        config_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    Anything.category = category
    return Anything


MINIMAL: dict[str, Any] = {"cluster": {"nodes": ["node1", "node2", "node3"]}}


def merged(**sections: Any) -> dict[str, Any]:
    """MINIMAL with ``sections`` merged in (section dicts are updated key by key)."""
    data = copy.deepcopy(MINIMAL)
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name].update(value)
        else:
            data[name] = value
    return data
