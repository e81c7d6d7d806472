"""The hypervisor driver interface: define, start, stop and inspect VMs.

Exactly one hypervisor driver serves each node (``hypervisor.driver`` in the
node configuration, entry-point group ``pvc.drivers.hypervisor``). The core
talks to it only through :class:`HypervisorDriver`; it never sees libvirt.

Timeouts: every method returns or raises within the budget its docstring
states. A driver enforces the budget itself (a library call that can hang
must run with a hard timeout) and raises
:class:`~pvc_core.errors.DriverTimeout` when it is exceeded; a hung hypervisor
must never stall the node daemon's keepalive.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import ClassVar

from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.errors import NotSupported

#: Budget of a read-only query (state, XML, statistics), in seconds.
QUERY_TIMEOUT_S = 10.0
#: Budget of a state change that does not wait for the guest, in seconds.
ACTION_TIMEOUT_S = 30.0


class DomainState(enum.StrEnum):
    """What the hypervisor reports about one domain (a VM)."""

    RUNNING = "running"
    PAUSED = "paused"
    #: A graceful shutdown was requested and the guest has not stopped yet.
    SHUTDOWN = "shutdown"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    #: Anything else the hypervisor reports (no state, suspended, ...).
    OTHER = "other"

    @property
    def active(self) -> bool:
        """True while the domain holds resources on this node (it may be running)."""
        return self in (DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUTDOWN)


@dataclass(frozen=True)
class DomainInfo:
    """Identity and state of one defined domain."""

    uuid: str
    name: str
    state: DomainState
    memory_mib: int
    vcpus: int


@dataclass(frozen=True)
class DomainStats:
    """Runtime statistics of one domain (zeros where the driver cannot tell)."""

    uuid: str
    cpu_time_ns: int = 0
    memory_mib: int = 0
    vcpus: int = 0
    disk_read_bytes: int = 0
    disk_write_bytes: int = 0
    net_rx_bytes: int = 0
    net_tx_bytes: int = 0


@dataclass(frozen=True)
class HostStats:
    """Resources of this node as the hypervisor sees them."""

    memory_total_mib: int
    memory_used_mib: int
    memory_free_mib: int
    cpu_count: int
    load1: float


@dataclass(frozen=True)
class Capabilities:
    """Optional features this driver supports on this node."""

    live_migration: bool = False
    console_log: bool = False


class HypervisorDriver(Driver):
    """Base class of hypervisor drivers (``pvc.drivers.hypervisor``).

    Domains are addressed by UUID (the lower-case canonical string form).
    Unknown UUIDs raise :class:`~pvc_core.errors.NotFound`; any other failure
    of the hypervisor raises :class:`~pvc_core.errors.DriverError` with a
    message an operator can act on. All methods are safe to call from
    several threads at once.
    """

    category: ClassVar[str] = "hypervisor"

    # -- required ---------------------------------------------------------

    @abc.abstractmethod
    def validate(self) -> ValidationResult:
        """Check, within 5 s, that the hypervisor is reachable and usable.

        Must not change anything. Returns ``ok=False`` with a message for an
        expected misconfiguration (no connection, missing permissions) rather
        than raising; raises only for programming errors.
        """

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """Report the optional features of this driver. Fast, never raises."""

    @abc.abstractmethod
    def host_stats(self) -> HostStats:
        """Memory, CPU count and load of this node.

        Called on every keepalive. Timeout: :data:`QUERY_TIMEOUT_S`.
        Raises DriverError or DriverTimeout.
        """

    @abc.abstractmethod
    def list_domains(self) -> list[DomainInfo]:
        """Every domain defined on this node, running or not, sorted by name.

        Timeout: :data:`QUERY_TIMEOUT_S`. Raises DriverError or DriverTimeout.
        """

    @abc.abstractmethod
    def domain_info(self, uuid: str) -> DomainInfo:
        """Identity and current state of one domain.

        Timeout: :data:`QUERY_TIMEOUT_S`. Raises NotFound for an unknown
        UUID, DriverError or DriverTimeout.
        """

    @abc.abstractmethod
    def define(self, xml: str) -> DomainInfo:
        """Define (or redefine) a persistent domain from its libvirt XML.

        Redefining an existing UUID replaces its definition and keeps its
        state. Does not start it. Timeout: :data:`ACTION_TIMEOUT_S`.
        Raises InvalidInput for XML that is malformed or lacks a name,
        AlreadyExists when another UUID already uses the name, DriverError.
        """

    @abc.abstractmethod
    def undefine(self, uuid: str) -> None:
        """Remove the definition of a domain that is not active.

        Timeout: :data:`ACTION_TIMEOUT_S`. Raises NotFound for an unknown
        UUID, Conflict while the domain is active, DriverError.
        """

    @abc.abstractmethod
    def start(self, uuid: str) -> None:
        """Start a defined domain; a running domain is left alone.

        Returns once the hypervisor reports it running. The caller must
        hold the VM's run-lease. Timeout: :data:`ACTION_TIMEOUT_S`.
        Raises NotFound, DriverError (the guest failed to start),
        DriverTimeout.
        """

    @abc.abstractmethod
    def shutdown(self, uuid: str, timeout: float) -> bool:
        """Ask the guest to shut down and wait up to ``timeout`` seconds.

        Returns True when the domain is shut off (also when it already
        was), False when it is still active after ``timeout``. Never
        destroys the domain: the caller decides whether to call
        :meth:`destroy`. Raises NotFound, DriverError.
        """

    @abc.abstractmethod
    def destroy(self, uuid: str) -> None:
        """Stop the domain at once, like pulling its power; idempotent.

        Timeout: :data:`ACTION_TIMEOUT_S`. Raises NotFound, DriverError,
        DriverTimeout.
        """

    @abc.abstractmethod
    def domain_xml(self, uuid: str) -> str:
        """The current libvirt XML definition of a domain.

        Timeout: :data:`QUERY_TIMEOUT_S`. Raises NotFound, DriverError.
        """

    # -- optional ---------------------------------------------------------

    def domain_stats(self, uuid: str) -> DomainStats:
        """Runtime statistics of a domain.

        Default: memory and vCPUs from :meth:`domain_info`, counters zero.
        Timeout: :data:`QUERY_TIMEOUT_S`. Raises NotFound, DriverError.
        """
        info = self.domain_info(uuid)
        return DomainStats(uuid=info.uuid, memory_mib=info.memory_mib, vcpus=info.vcpus)

    def migrate(self, uuid: str, target_uri: str, *, max_downtime_ms: int,
                timeout: float) -> None:
        """Live-migrate a running domain to the hypervisor at ``target_uri``.

        ``target_uri`` is what the target node's :meth:`migration_uri`
        returned. Honours ``max_downtime_ms``; gives up (and leaves the
        domain running here) after ``timeout`` seconds with DriverTimeout.
        Raises NotFound, DriverError on failure. Default: raises
        NotSupported (the core then falls back to shutdown-migration
        unless live migration was forced).
        """
        raise NotSupported(f"{type(self).__name__} does not support live migration")

    def migration_uri(self) -> str | None:
        """The URI other nodes migrate domains to on this node, or None.

        Fast (no I/O), never raises. Default: None (no live migration).
        """
        return None

    def console_log_path(self, uuid: str) -> str | None:
        """Path of the domain's serial console log file, or None when it has none.

        Fast (no I/O on the log itself). Raises NotFound for an unknown
        UUID where the driver checks it. Default: None.
        """
        return None
