"""Keyspace schema version and its ordered migrations.

The version lives in ``{root}/schema``. A tree with PVC data but no version
znode is version 0, the original flat layout. Each migration moves the tree
from version N to N+1 and is safe to re-run after a crash: it only acts on
what is still in the old shape, one VM per transaction, and the version is
bumped with compare-and-set only once the step finished.

Layouts:

- **0** (original): ``vms/{uuid}`` holds one JSON blob with ``name``,
  ``state``, ``node``, ``last_node``, ``xml`` and optionally ``meta``.
- **1**: the blob is split: ``vms/{uuid}`` keeps ``name`` and ``meta``; its
  children ``state``, ``placement`` and ``xml`` hold the rest.
- **2**: VM names are indexed in ``vm_names/{name}`` (names become unique);
  ``cluster/config``, ``cluster/primary``, ``jobs``, ``decisions``,
  ``faults`` and ``locks`` always exist.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pvc_core.clock import Deadline
from pvc_core.errors import AlreadyExists, Conflict, NotFound, SchemaTooNew
from pvc_core.keyspace import SCHEMA_VERSION, Keyspace
from pvc_core.store.codec import decode, encode
from pvc_core.store.zk import Op, ZkClient

log = logging.getLogger("pvc.store.migrations")

Migration = Callable[[ZkClient, Keyspace], None]


def _split_vm_blobs(zk: ZkClient, ks: Keyspace) -> None:
    """0 -> 1: split each VM blob into meta, state, placement and xml znodes."""
    for vm_uuid in zk.children(ks.vms()):
        data, stat = zk.get(ks.vm(vm_uuid))
        blob: dict[str, Any] = decode(data, ks.vm(vm_uuid)) or {}
        if "state" not in blob and "xml" not in blob:
            continue  # already split
        state = {"state": blob.get("state", "stop"), "reason": "migrated", "by": "schema-1"}
        placement = {"node": blob.get("node"), "last_node": blob.get("last_node")}
        zk.transaction([
            Op.set(ks.vm(vm_uuid), encode({"name": blob.get("name", vm_uuid),
                                           "meta": blob.get("meta") or {}}), stat.version),
            Op.create(ks.vm_state(vm_uuid), encode(state)),
            Op.create(ks.vm_placement(vm_uuid), encode(placement)),
            Op.create(ks.vm_xml(vm_uuid), str(blob.get("xml", "")).encode()),
        ])


def _index_names(zk: ZkClient, ks: Keyspace) -> None:
    """1 -> 2: index VM names (renaming duplicates) and create the fixed directories."""
    for path in ks.base_paths():
        zk.ensure_path(path)
    for path in (ks.cluster_config(), ks.primary()):
        try:
            zk.create(path, encode({"maintenance": False}) if path == ks.cluster_config() else b"")
        except AlreadyExists:
            pass
    for vm_uuid in sorted(zk.children(ks.vms())):
        data, stat = zk.get(ks.vm(vm_uuid))
        meta: dict[str, Any] = decode(data, ks.vm(vm_uuid)) or {}
        name = str(meta.get("name") or vm_uuid)
        try:
            owner, _ = zk.get(ks.vm_name(name))
            if owner.decode() == vm_uuid:
                continue
            new = f"{name[:55]}-{vm_uuid[:8]}"
            log.warning("VM name %s is used twice; %s is renamed %s", name, vm_uuid, new)
            zk.transaction([Op.set(ks.vm(vm_uuid), encode({**meta, "name": new}), stat.version),
                            Op.create(ks.vm_name(new), vm_uuid.encode())])
        except NotFound:
            zk.transaction([Op.check(ks.vm(vm_uuid), stat.version),
                            Op.create(ks.vm_name(name), vm_uuid.encode())])


#: MIGRATIONS[n] moves a tree from version n to n + 1.
MIGRATIONS: tuple[Migration, ...] = (_split_vm_blobs, _index_names)
assert len(MIGRATIONS) == SCHEMA_VERSION, "one migration per schema version"


class SchemaManager:
    """Read, check, initialise and migrate the keyspace schema version."""

    def __init__(self, zk: ZkClient, keyspace: Keyspace) -> None:
        self.zk = zk
        self.ks = keyspace

    def version(self) -> int | None:
        """The tree's version; 0 for a legacy tree; None for an empty one."""
        try:
            data, _ = self.zk.get(self.ks.schema())
        except NotFound:
            if not (self.zk.exists(self.ks.vms()) or self.zk.exists(self.ks.nodes())):
                return None
            # Another daemon's initialise() creates the data paths and the
            # version in one transaction: if that committed between the two
            # reads above, this is a current tree, not a legacy one.
            try:
                data, _ = self.zk.get(self.ks.schema())
            except NotFound:
                return 0
        try:
            return int(data.decode().strip())
        except ValueError:
            raise Conflict(f"{self.ks.schema()} holds {data!r}, not a version number") from None

    def check(self) -> int | None:
        """Return the version, or raise SchemaTooNew when this code cannot act on it."""
        current = self.version()
        if current is not None and current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"cluster keyspace schema is version {current}, this PVC knows up to "
                f"{SCHEMA_VERSION}: refusing to act; upgrade PVC on this node")
        return current

    def initialise(self) -> int:
        """Create an empty cluster at the latest version; leave an existing tree alone."""
        current = self.check()
        if current is not None:
            return current
        ops = [Op.create(self.ks.root)] + [Op.create(p) for p in self.ks.base_paths()]
        ops += [Op.create(self.ks.cluster_config(), encode({"maintenance": False})),
                Op.create(self.ks.primary(), b""),
                Op.create(self.ks.schema(), str(SCHEMA_VERSION).encode())]
        if self.zk.exists(self.ks.root):
            ops = ops[1:]
        try:
            self.zk.transaction(ops)
        except AlreadyExists:  # another daemon initialised it at the same moment
            pass
        version = self.check()
        assert version is not None
        return version

    def migrate(self, target: int = SCHEMA_VERSION, wait: float = 0.0) -> list[int]:
        """Apply migrations up to ``target``; return the versions passed through.

        Only one migrator runs at a time (an ephemeral lock znode). A second
        one waits up to ``wait`` seconds for the first to finish (and then
        finds nothing left to do), and gets Conflict after that.
        """
        if target > SCHEMA_VERSION:
            raise SchemaTooNew(f"cannot migrate to {target}: this PVC knows up to {SCHEMA_VERSION}")
        lock = self.ks.schema_lock()
        deadline = Deadline(wait, self.zk.clock)
        while True:
            try:
                self.zk.create(lock, b"", ephemeral=True, makepath=True)
                break
            except AlreadyExists:
                if not self._wait_gone(lock, deadline):
                    raise Conflict("another schema migration is in progress") from None
        try:
            return self._migrate(target)
        finally:
            try:
                self.zk.delete(lock)
            except NotFound:
                pass

    def _wait_gone(self, path: str, deadline: Deadline) -> bool:
        """Wait (on an exists watch) until ``path`` is gone; False at the deadline."""
        gone = threading.Event()
        if self.zk.call(lambda: self.zk.kazoo.exists_async(
                path, watch=lambda _event: gone.set()), path) is None:
            return True
        return deadline.remaining() > 0 and gone.wait(deadline.remaining())

    def _migrate(self, target: int) -> list[int]:
        current = self.check()
        if current is None:
            return [self.initialise()]
        if current == 0 and self.zk.exists(self.ks.schema()) is None:
            self.zk.create(self.ks.schema(), b"0")
        passed = []
        while current < target:
            log.info("migrating keyspace schema %d -> %d", current, current + 1)
            MIGRATIONS[current](self.zk, self.ks)
            _, stat = self.zk.get(self.ks.schema())
            self.zk.set(self.ks.schema(), str(current + 1).encode(), stat.version)
            current += 1
            passed.append(current)
        return passed
