"""An in-memory network driver: networks and floating IPs in a dict.

Config: ``kinds``, the network kinds it serves (default both). A spec of
another kind is refused with InvalidInput, like a real driver would.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.network import NetworkDriver, NetworkInfo, NetworkKind, NetworkSpec
from pvc_core.errors import InvalidInput
from pvc_plugins.fake._recorder import CallRecorder


class FakeNetworkDriver(CallRecorder, NetworkDriver):
    """The ``fake`` network driver."""

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "kinds": {"type": "array", "uniqueItems": True,
                      "default": [k.value for k in NetworkKind],
                      "items": {"enum": [k.value for k in NetworkKind]}},
        },
        "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        CallRecorder.__init__(self)
        NetworkDriver.__init__(self, config, context)
        self.kinds = frozenset(NetworkKind(k) for k in self.config.get("kinds", list(NetworkKind)))
        self._lock = threading.Lock()
        self._networks: dict[str, tuple[NetworkSpec, NetworkInfo]] = {}
        self._floating: set[tuple[str, str]] = set()

    def validate(self) -> ValidationResult:
        self._record("validate")
        return ValidationResult(True, "fake network driver")

    def list_networks(self) -> list[NetworkInfo]:
        self._record("list_networks")
        with self._lock:
            return [info for _, (_, info) in sorted(self._networks.items())]

    def ensure_network(self, spec: NetworkSpec) -> NetworkInfo:
        self._record("ensure_network", spec)
        if spec.kind not in self.kinds:
            raise InvalidInput(f"fake network driver does not serve {spec.kind} networks")
        if not 0 < spec.vni < 2**24:
            raise InvalidInput(f"network {spec.name}: VNI {spec.vni} out of range")
        prefix = "vmbr" if spec.kind is NetworkKind.BRIDGED else "vxbr"
        info = NetworkInfo(spec.name, spec.kind, spec.vni, f"{prefix}{spec.vni}", up=True)
        with self._lock:
            self._networks[spec.name] = (spec, info)
        return info

    def remove_network(self, name: str) -> None:
        self._record("remove_network", name)
        with self._lock:
            self._networks.pop(name, None)

    def add_floating_ip(self, address: str, device: str) -> None:
        self._record("add_floating_ip", address, device)
        with self._lock:
            self._floating.add((address, device))

    def remove_floating_ip(self, address: str, device: str) -> None:
        self._record("remove_floating_ip", address, device)
        with self._lock:
            self._floating.discard((address, device))

    # -- test helpers (not part of the interface) ---------------------------

    def spec_of(self, name: str) -> NetworkSpec | None:
        """The spec a network was last ensured with, or None."""
        with self._lock:
            entry = self._networks.get(name)
            return entry[0] if entry else None

    @property
    def floating_ips(self) -> set[tuple[str, str]]:
        """The ``(address, device)`` pairs currently held."""
        with self._lock:
            return set(self._floating)
