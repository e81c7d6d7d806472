"""The cluster cache's vocabulary and its pure parts: which znodes make an
entity, how one znode's bytes decode, and how cached znodes build a record.

:mod:`pvc_core.store.cache` keeps the watches, the worker and the readers;
everything here is free of ZooKeeper and of locking.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn

from pvc_core.store.cluster import DEFAULT_CLUSTER_CONFIG
from pvc_core.store.codec import decode
from pvc_core.store.records import NodeRecord, Placement, VmMeta, VmRecord, VmStateRecord

log = logging.getLogger("pvc.store.cache")

# Entity kinds (one per directory, plus the two cluster znodes).
NODE = "node"
VM = "vm"
JOB = "job"
FAULT = "fault"
CLUSTER = "cluster"

# Fields: one per cached znode of an entity.
F_NODE = "node"
F_KEEPALIVE = "keepalive"
F_ALIVE = "alive"
F_VM = "vm"
F_VM_STATE = "vm_state"
F_VM_PLACEMENT = "vm_placement"
F_JOB = "job"
F_FAULT = "fault"
F_CONFIG = "config"
F_PRIMARY = "primary"

KIND_OF: Mapping[str, str] = MappingProxyType({
    F_NODE: NODE, F_KEEPALIVE: NODE, F_ALIVE: NODE, F_VM: VM, F_VM_STATE: VM,
    F_VM_PLACEMENT: VM, F_JOB: JOB, F_FAULT: FAULT, F_CONFIG: CLUSTER,
    F_PRIMARY: CLUSTER})
#: The field whose znode *is* the entity: when it is gone, so is the entity.
PRIMARY_FIELD: Mapping[str, str] = MappingProxyType(
    {NODE: F_NODE, VM: F_VM, JOB: F_JOB, FAULT: F_FAULT})
#: Fields whose znode may be missing while the entity exists: a missing one
#: gets an exists watch so that its creation is noticed.
OPTIONAL = frozenset({F_KEEPALIVE, F_VM_STATE, F_VM_PLACEMENT, F_CONFIG, F_PRIMARY})

# Request operations.
GET = "get"
EXISTS = "exists"
CHILDREN = "children"
DIR_EXISTS = "dir_exists"

Request = tuple[str, str]  # (operation, path)
SlotKey = tuple[str, str]  # (field, entity key)
EntityKey = tuple[str, str]  # (kind, entity key)


class ReadOnlyDict(dict[str, int]):
    """A dict that refuses changes: the ``versions`` of a shared cached VmRecord.

    Copies (``dict(d)``, :func:`copy.copy`, :func:`copy.deepcopy`, pickling)
    are plain, writable dicts.
    """

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError("a cached record is read-only; change a copy (dict(...))")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))

    def __copy__(self) -> dict[str, int]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, int]:
        return dict(self)


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


@dataclass(frozen=True)
class CachedNode:
    """One node as the cache holds it.

    ``record`` is the node record, ``stats`` the ``stats`` of its last
    keepalive (empty when it never wrote one), ``alive`` whether its liveness
    znode exists (its daemon's session is alive).
    """

    record: NodeRecord
    stats: dict[str, Any]
    alive: bool


@dataclass(frozen=True, slots=True)
class VmMetaPart:
    """The decoded ``vms/{uuid}`` znode."""

    name: str
    meta: VmMeta
    memory_mib: int
    vcpus: int


@dataclass(frozen=True, slots=True)
class Slot:
    """One cached znode: its modification zxid, version and decoded value.

    ``ok`` is False when the value could not be decoded (it is then skipped
    until the znode changes).
    """

    mzxid: int
    version: int
    ok: bool
    value: Any


def decode_field(field: str, key: str, path: str, data: bytes) -> tuple[bool, Any]:
    """Decode one cached znode's value; (False, None) when it is corrupt."""
    try:
        if field == F_ALIVE:
            return True, True
        if field == F_PRIMARY:
            return True, data.decode() or None
        raw = decode(data, path)
        if field == F_NODE:
            return True, NodeRecord.from_dict(raw) if raw else NodeRecord(name=key)
        if field == F_KEEPALIVE:
            return True, dict((raw or {}).get("stats") or {})
        if field == F_VM:
            resources = raw.get("resources") or {}
            return True, VmMetaPart(str(raw["name"]), VmMeta.from_dict(raw.get("meta")),
                                    int(resources.get("memory_mib", 0)),
                                    int(resources.get("vcpus", 0)))
        if field == F_VM_STATE:
            return True, VmStateRecord.from_dict(raw)
        if field == F_VM_PLACEMENT:
            return True, Placement.from_dict(raw)
        if field == F_CONFIG:
            return True, {**DEFAULT_CLUSTER_CONFIG, **(raw or {})}
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        return True, raw
    except Exception as exc:  # corrupt data must not stop the cache
        log.warning("cluster cache skips %s: %s", path, exc)
        return False, None


def build_vm(uuid: str, meta: Slot | None, state: Slot | None,
             placement: Slot | None) -> VmRecord | None:
    """The VM record from its three cached znodes (None until all three decode)."""
    if not (meta is not None and meta.ok and state is not None and state.ok
            and placement is not None and placement.ok):
        return None
    part: VmMetaPart = meta.value
    return VmRecord(uuid=uuid, name=part.name, meta=part.meta, state=state.value,
                    placement=placement.value,
                    versions=ReadOnlyDict(meta=meta.version, state=state.version,
                                          placement=placement.version),
                    memory_mib=part.memory_mib, vcpus=part.vcpus)


def build_node(record: Slot | None, keepalive: Slot | None, alive: bool) -> CachedNode | None:
    """The cached node from its record and keepalive znodes (None without a record)."""
    if record is None or not record.ok:
        return None
    stats = keepalive.value if keepalive is not None and keepalive.ok else {}
    return CachedNode(record.value, stats, alive)
