"""The network driver interface: bring cluster networks up and down on a node.

Zero or more network drivers serve each node (``networking.drivers: [...]``,
entry-point group ``pvc.drivers.network``); each converges the networks it
is responsible for to the specs the core hands it. Operations are
idempotent, so a reconciler may call them again after any failure.

Timeouts: every method returns or raises within the budget its docstring
states, raising :class:`~pvc_core.errors.DriverTimeout` when exceeded.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import ClassVar

from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.errors import NotSupported

#: Budget of a read-only query, in seconds.
QUERY_TIMEOUT_S = 10.0
#: Budget of creating, changing or removing one network, in seconds.
ACTION_TIMEOUT_S = 30.0


class NetworkKind(enum.StrEnum):
    """How a network reaches other nodes."""

    #: A VLAN on a physical device, bridged; no services from PVC.
    BRIDGED = "bridged"
    #: An overlay (VXLAN) with a gateway and DHCP on the primary coordinator.
    MANAGED = "managed"


@dataclass(frozen=True)
class NetworkSpec:
    """What a cluster network should look like on every node.

    :ivar name: unique network name (the key in ZooKeeper).
    :ivar kind: bridged or managed.
    :ivar vni: the VLAN ID (bridged) or VXLAN network identifier (managed).
    :ivar mtu: the MTU of the VM-facing bridge, or None for the driver default.
    :ivar ipv4_network: CIDR of a managed network, e.g. ``10.0.0.0/24``.
    :ivar ipv4_gateway: gateway address on the primary, e.g. ``10.0.0.1``.
    :ivar dhcp4: whether the primary serves DHCPv4 on it.
    """

    name: str
    kind: NetworkKind
    vni: int
    mtu: int | None = None
    ipv4_network: str | None = None
    ipv4_gateway: str | None = None
    dhcp4: bool = False


@dataclass(frozen=True)
class NetworkInfo:
    """A network as it exists on this node."""

    name: str
    kind: NetworkKind
    vni: int
    #: The device VMs attach to (a bridge name, usually).
    device: str
    up: bool


class NetworkDriver(Driver):
    """Base class of network drivers (``pvc.drivers.network``).

    A driver only touches what it created (its own bridges, its own nftables
    table); it never flushes host configuration it does not own.
    """

    category: ClassVar[str] = "network"

    # -- required ---------------------------------------------------------

    @abc.abstractmethod
    def validate(self) -> ValidationResult:
        """Check, within 5 s, that the configured devices and tools exist.

        Must not change anything. Returns ``ok=False`` with a message rather
        than raising for a misconfiguration; raises only for programming errors.
        """

    @abc.abstractmethod
    def list_networks(self) -> list[NetworkInfo]:
        """The networks this driver manages on this node, sorted by name.

        Timeout: :data:`QUERY_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def ensure_network(self, spec: NetworkSpec) -> NetworkInfo:
        """Create the network, or change it to match ``spec``; idempotent.

        Timeout: :data:`ACTION_TIMEOUT_S`. Raises InvalidInput for a spec
        this driver cannot serve (a kind it does not handle, a VNI out of
        range), DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def remove_network(self, name: str) -> None:
        """Tear the network down on this node; absent networks are ignored.

        Timeout: :data:`ACTION_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        """

    # -- optional ---------------------------------------------------------

    def add_floating_ip(self, address: str, device: str) -> None:
        """Add a floating address (CIDR form) to ``device`` and announce it.

        Called on the primary coordinator when it takes over; idempotent.
        Timeout: :data:`ACTION_TIMEOUT_S`. Default: raises NotSupported.
        """
        raise NotSupported(f"{type(self).__name__} does not manage floating IPs")

    def remove_floating_ip(self, address: str, device: str) -> None:
        """Remove a floating address from ``device``; absent is ignored.

        Called when this node relinquishes (or loses) primary, before any
        other node may take the address. Timeout: :data:`ACTION_TIMEOUT_S`.
        Default: raises NotSupported.
        """
        raise NotSupported(f"{type(self).__name__} does not manage floating IPs")
