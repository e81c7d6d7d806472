"""An in-memory storage driver: pools, volumes, locks, snapshots, fenced nodes.

It also implements two hooks, as a real storage plugin does:
``pvc_node_fenced`` blocklists the node (:meth:`FakeStorageDriver.fence_node`)
and ``pvc_vm_about_to_start`` refuses VMs listed in ``refuse_start``.

Config: ``pools``, a mapping of pool name to size in bytes (default one
pool ``vms`` of 1 TiB).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.storage import PoolInfo, SnapshotInfo, StorageDriver, VolumeInfo
from pvc_core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from pvc_core.hooks.specs import hookimpl
from pvc_plugins.fake._recorder import CallRecorder

_TIB = 1024**4


class FakeStorageDriver(CallRecorder, StorageDriver):
    """The ``fake`` storage driver."""

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "pools": {"type": "object", "default": {"vms": _TIB},
                      "additionalProperties": {"type": "integer", "minimum": 1}},
        },
        "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        CallRecorder.__init__(self)
        StorageDriver.__init__(self, config, context)
        self._lock = threading.Lock()
        self._pools: dict[str, int] = dict(self.config.get("pools", {"vms": _TIB}))
        self._volumes: dict[tuple[str, str], int] = {}
        self._locks: dict[tuple[str, str], set[str]] = {}
        self._snapshots: set[tuple[str, str, str]] = set()
        self._fenced: set[str] = set()
        #: VM UUIDs whose start this driver refuses (tests add to it).
        self.refuse_start: set[str] = set()

    # -- required ---------------------------------------------------------

    def validate(self) -> ValidationResult:
        self._record("validate")
        return ValidationResult(True, f"fake storage with {len(self._pools)} pool(s)")

    def list_pools(self) -> list[PoolInfo]:
        self._record("list_pools")
        with self._lock:
            return [self._pool_info(name) for name in sorted(self._pools)]

    def list_volumes(self, pool: str) -> list[VolumeInfo]:
        self._record("list_volumes", pool)
        with self._lock:
            self._check_pool(pool)
            return [VolumeInfo(p, n, size) for (p, n), size in sorted(self._volumes.items())
                    if p == pool]

    def create_volume(self, pool: str, name: str, size_bytes: int) -> VolumeInfo:
        self._record("create_volume", pool, name, size_bytes)
        if size_bytes <= 0:
            raise InvalidInput(f"volume size must be positive, not {size_bytes}")
        if not name or "/" in name:
            raise InvalidInput(f"bad volume name {name!r}")
        with self._lock:
            self._check_pool(pool)
            if (pool, name) in self._volumes:
                raise AlreadyExists(f"volume {pool}/{name} already exists")
            if size_bytes > self._pool_info(pool).free_bytes:
                raise InvalidInput(f"pool {pool} has no room for {size_bytes} bytes")
            self._volumes[(pool, name)] = size_bytes
            return VolumeInfo(pool, name, size_bytes)

    def remove_volume(self, pool: str, name: str) -> None:
        self._record("remove_volume", pool, name)
        with self._lock:
            self._check_volume(pool, name)
            holders = self._locks.get((pool, name))
            if holders:
                raise Conflict(f"volume {pool}/{name} is locked by {', '.join(sorted(holders))}")
            del self._volumes[(pool, name)]
            self._snapshots = {s for s in self._snapshots if s[:2] != (pool, name)}

    def clear_locks(self, pool: str, volume: str, node: str) -> int:
        self._record("clear_locks", pool, volume, node)
        with self._lock:
            self._check_volume(pool, volume)
            holders = self._locks.get((pool, volume), set())
            if node not in holders:
                return 0
            holders.discard(node)
            return 1

    def fence_node(self, node: str) -> None:
        self._record("fence_node", node)
        with self._lock:
            self._fenced.add(node)

    # -- optional ---------------------------------------------------------

    def list_snapshots(self, pool: str, volume: str) -> list[SnapshotInfo]:
        self._record("list_snapshots", pool, volume)
        with self._lock:
            self._check_volume(pool, volume)
            return [SnapshotInfo(*s) for s in sorted(self._snapshots) if s[:2] == (pool, volume)]

    def create_snapshot(self, pool: str, volume: str, name: str) -> SnapshotInfo:
        self._record("create_snapshot", pool, volume, name)
        with self._lock:
            self._check_volume(pool, volume)
            if (pool, volume, name) in self._snapshots:
                raise AlreadyExists(f"snapshot {pool}/{volume}@{name} already exists")
            self._snapshots.add((pool, volume, name))
            return SnapshotInfo(pool, volume, name)

    def remove_snapshot(self, pool: str, volume: str, name: str) -> None:
        self._record("remove_snapshot", pool, volume, name)
        with self._lock:
            if (pool, volume, name) not in self._snapshots:
                raise NotFound(f"no snapshot {pool}/{volume}@{name}")
            self._snapshots.discard((pool, volume, name))

    def stats(self) -> dict[str, float]:
        self._record("stats")
        with self._lock:
            return {"pools": float(len(self._pools)), "volumes": float(len(self._volumes)),
                    "used_bytes": float(sum(self._volumes.values()))}

    # -- hooks ------------------------------------------------------------

    @hookimpl
    def pvc_node_fenced(self, node: str) -> None:
        """Storage fencing: blocklist the fenced node."""
        self.fence_node(node)

    @hookimpl
    def pvc_vm_about_to_start(self, vm_uuid: str, node: str) -> None:
        """Refuse the VMs in ``refuse_start``; refuse on a fenced node."""
        if vm_uuid in self.refuse_start:
            raise Conflict(f"fake storage refuses to start {vm_uuid} on {node}")
        if node in self.fenced_nodes:
            raise Conflict(f"{node} is fenced from storage")

    # -- test helpers (not part of the interface) ---------------------------

    def add_lock(self, pool: str, volume: str, node: str) -> None:
        """Make ``node`` hold a lock on a volume (as a running VM would)."""
        with self._lock:
            self._check_volume(pool, volume)
            self._locks.setdefault((pool, volume), set()).add(node)

    def lock_holders(self, pool: str, volume: str) -> set[str]:
        """The nodes holding a lock on a volume."""
        with self._lock:
            return set(self._locks.get((pool, volume), set()))

    @property
    def fenced_nodes(self) -> set[str]:
        """The nodes cut off from storage."""
        with self._lock:
            return set(self._fenced)

    # -- internals (the caller holds self._lock) ------------------------------

    def _pool_info(self, pool: str) -> PoolInfo:
        size = self._pools[pool]
        used = sum(s for (p, _), s in self._volumes.items() if p == pool)
        return PoolInfo(pool, size, used, max(0, size - used))

    def _check_pool(self, pool: str) -> None:
        if pool not in self._pools:
            raise NotFound(f"no storage pool {pool!r}")

    def _check_volume(self, pool: str, volume: str) -> None:
        self._check_pool(pool)
        if (pool, volume) not in self._volumes:
            raise NotFound(f"no volume {pool}/{volume}")
