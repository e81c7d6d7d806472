"""The storage driver interface: pools, volumes, locks and storage fencing.

Zero or one storage driver serves the cluster (``storage.driver``,
entry-point group ``pvc.drivers.storage``). Besides managing volumes, it
keeps the "never on two nodes" rule safe at the storage layer: it clears a
node's stale locks before a VM starts there and blocklists the clients of a
node that was fenced.

Timeouts: every method returns or raises within the budget its docstring
states, raising :class:`~pvc_core.errors.DriverTimeout` when exceeded (a
storage call that can hang must run with a hard timeout: it would stall the
keepalive and cause a fence storm).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.errors import NotSupported

#: Budget of a read-only query, in seconds.
QUERY_TIMEOUT_S = 15.0
#: Budget of a change (create, remove, lock flush, blocklist), in seconds.
ACTION_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PoolInfo:
    """A storage pool and its capacity in bytes."""

    name: str
    size_bytes: int
    used_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class VolumeInfo:
    """A volume (block device image) in a pool."""

    pool: str
    name: str
    size_bytes: int


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot of a volume."""

    pool: str
    volume: str
    name: str


class StorageDriver(Driver):
    """Base class of storage drivers (``pvc.drivers.storage``)."""

    category: ClassVar[str] = "storage"

    # -- required ---------------------------------------------------------

    @abc.abstractmethod
    def validate(self) -> ValidationResult:
        """Check, within 5 s, that the storage cluster is reachable.

        Must not change anything. Returns ``ok=False`` with a message rather
        than raising for a misconfiguration; raises only for programming errors.
        """

    @abc.abstractmethod
    def list_pools(self) -> list[PoolInfo]:
        """Every pool, sorted by name.

        Timeout: :data:`QUERY_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def list_volumes(self, pool: str) -> list[VolumeInfo]:
        """The volumes of ``pool``, sorted by name.

        Timeout: :data:`QUERY_TIMEOUT_S`. Raises NotFound for an unknown
        pool, DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def create_volume(self, pool: str, name: str, size_bytes: int) -> VolumeInfo:
        """Create a volume of ``size_bytes`` (> 0) in ``pool``.

        Timeout: :data:`ACTION_TIMEOUT_S`. Raises NotFound for an unknown
        pool, AlreadyExists, InvalidInput for a bad size or name,
        DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def remove_volume(self, pool: str, name: str) -> None:
        """Remove a volume and its data.

        Timeout: :data:`ACTION_TIMEOUT_S`. Raises NotFound for an unknown
        pool or volume, Conflict while the volume is locked, DriverError,
        DriverTimeout.
        """

    @abc.abstractmethod
    def clear_locks(self, pool: str, volume: str, node: str) -> int:
        """Release the locks ``node`` holds on a volume; return how many.

        Called before a VM starts (on ``node`` itself, or on a recovery
        target after ``node`` was fenced) so a stale lock from a crashed
        run never blocks the start. Clears only ``node``'s locks: a lock
        held by another node is left alone. Timeout:
        :data:`ACTION_TIMEOUT_S`. Raises NotFound, DriverError,
        DriverTimeout.
        """

    @abc.abstractmethod
    def fence_node(self, node: str) -> None:
        """Cut a fenced node off from storage (e.g. blocklist its clients).

        Called after the node was proved powered off and before its VMs
        are recovered elsewhere; idempotent. Timeout:
        :data:`ACTION_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        """

    # -- optional ---------------------------------------------------------

    def list_snapshots(self, pool: str, volume: str) -> list[SnapshotInfo]:
        """The snapshots of a volume, sorted by name.

        Timeout: :data:`QUERY_TIMEOUT_S`. Raises NotFound, DriverError.
        Default: raises NotSupported.
        """
        raise NotSupported(f"{type(self).__name__} does not support snapshots")

    def create_snapshot(self, pool: str, volume: str, name: str) -> SnapshotInfo:
        """Snapshot a volume. Timeout: :data:`ACTION_TIMEOUT_S`.

        Raises NotFound, AlreadyExists, DriverError. Default: NotSupported.
        """
        raise NotSupported(f"{type(self).__name__} does not support snapshots")

    def remove_snapshot(self, pool: str, volume: str, name: str) -> None:
        """Remove a snapshot. Timeout: :data:`ACTION_TIMEOUT_S`.

        Raises NotFound, DriverError. Default: NotSupported.
        """
        raise NotSupported(f"{type(self).__name__} does not support snapshots")

    def stats(self) -> dict[str, float]:
        """Numeric health and usage figures for keepalives and metrics.

        Keys are short snake_case names (``osds_up``, ``used_bytes``).
        Timeout: :data:`QUERY_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        Default: an empty dict.
        """
        return {}
