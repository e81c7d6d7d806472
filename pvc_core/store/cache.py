"""An in-memory view of the cluster, kept current by ZooKeeper watches.

The REST API serves its lists from a :class:`ClusterCache` so that listing
thousands of VMs costs no ZooKeeper round trip per VM. The cache holds decoded
records (nodes with their keepalive stats and liveness, VMs, jobs, faults,
the cluster config and the primary); decisions are not cached.

How it stays current:

- kazoo 2.11 has no persistent watches, so every cached znode carries a
  one-shot watch (data watches on records, children watches on the
  ``nodes``, ``vms``, ``jobs`` and ``faults`` directories, exists watches on
  liveness znodes and on optional znodes that do not exist yet).
- A watch callback runs in kazoo's event thread and only *enqueues* the path.
  One worker thread drains the queue, re-reads the queued znodes with
  pipelined async requests (each re-arming its watch), decodes the results
  and applies them under the lock. Every read is issued after the previous
  batch was applied, so results are applied in the order ZooKeeper served them.
- kazoo 2.11 drops *every* watch when its connection is lost, even when the
  session survives (it does not re-send them on reconnect). So after
  ``SUSPENDED`` or ``LOST`` the cache is not fresh until a full reload has
  re-read everything and re-armed every watch.
- Every ``resync_interval`` seconds a full reload compares each znode's
  modification zxid with the cached one and fixes any drift: a lost
  notification delays an update, it never loses it.

Readers never wait for ZooKeeper: they take the lock, copy out what they
need, and return. VM records are immutable and shared (their ``versions``
mapping refuses changes); everything else is returned as a copy.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import Callback, EventType

from pvc_core.clock import Clock, Deadline
from pvc_core.errors import InvalidInput, NotFound, StoreUnavailable
from pvc_core.keyspace import Keyspace, check_uuid
from pvc_core.ops.view import ClusterView
from pvc_core.store.cache_records import (
    CHILDREN,
    CLUSTER,
    DIR_EXISTS,
    EXISTS,
    F_ALIVE,
    F_CONFIG,
    F_FAULT,
    F_JOB,
    F_KEEPALIVE,
    F_NODE,
    F_PRIMARY,
    F_VM,
    F_VM_PLACEMENT,
    F_VM_STATE,
    FAULT,
    GET,
    JOB,
    KIND_OF,
    NODE,
    OPTIONAL,
    PRIMARY_FIELD,
    VM,
    CachedNode,
    EntityKey,
    Request,
    Slot,
    SlotKey,
    build_node,
    build_vm,
    copy_json,
    decode_field,
)
from pvc_core.store.cluster import DEFAULT_CLUSTER_CONFIG
from pvc_core.store.records import VmRecord
from pvc_core.store.zk import ZkClient

log = logging.getLogger("pvc.store.cache")

#: Longest time any wait in the cache goes without looking at its flags.
TICK = 0.5
#: Pause after a failed batch before it is retried.
BACKOFF = 0.2

__all__ = ["CachedNode", "ClusterCache"]

class ClusterCache:
    """Nodes, VMs, jobs, faults, cluster config and primary, decoded in memory and
    kept current by ZooKeeper watches (see the module documentation).

    :param zk: the client whose session carries the watches (the cache only reads).
    :param keyspace: where the cluster lives.
    :param resync_interval: seconds between full resyncs that fix any drift.

    Call :meth:`start` once; :meth:`stop` when done. Readers call
    :meth:`check_fresh` to refuse serving while the session is suspended or
    the cache is reloading.
    """

    def __init__(self, zk: ZkClient, keyspace: Keyspace, *,
                 resync_interval: float = 30.0) -> None:
        if resync_interval <= 0:
            raise ValueError("resync_interval must be > 0")
        self.zk = zk
        self.ks = keyspace
        self.resync_interval = resync_interval
        self._clock: Clock = zk.clock
        self._dirs: dict[str, str] = {keyspace.nodes(): NODE, keyspace.vms(): VM,
                                      keyspace.jobs(): JOB, keyspace.faults(): FAULT}
        # Bound once so that kazoo's watcher sets see one callable per path.
        self._data_cb: Callable[[Any], None] = self._on_data_event
        self._child_cb: Callable[[Any], None] = self._on_child_event

        # -- readers' state: guarded by _cond ---------------------------------
        self._cond = threading.Condition(threading.Lock())
        self._nodes: dict[str, CachedNode] = {}
        self._vms: dict[str, VmRecord] = {}
        self._vm_names: dict[str, set[str]] = {}
        self._vm_list: list[VmRecord] | None = None  # sorted, rebuilt when VMs change
        self._jobs: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, dict[str, Any]] = {}
        self._config: dict[str, Any] = dict(DEFAULT_CLUSTER_CONFIG)
        self._primary: str | None = None
        self._generation = 0
        self._changes = 0  # bumped on every notification (data or freshness)
        self._epoch = 0  # bumped when the session was suspended or lost
        self._loaded = -1  # the epoch of the last complete full load
        self._running = False
        self._reloads = 0

        # -- the worker's own state (only the worker thread touches it) -------
        self._members: dict[str, set[str]] = {k: set() for k in (NODE, VM, JOB, FAULT)}
        self._owners: dict[str, SlotKey] = {}
        self._entity_paths: dict[EntityKey, list[str]] = {}
        self._slots: dict[SlotKey, Slot] = {}
        for path, field in ((keyspace.cluster_config(), F_CONFIG),
                            (keyspace.primary(), F_PRIMARY)):
            self._owners[path] = (field, field)

        # -- the work queue: guarded by _wake ----------------------------------
        self._wake = threading.Condition(threading.Lock())
        self._want_full = False
        self._pending_paths: set[str] = set()
        self._pending_dirs: set[str] = set()
        self._stopping = False
        self._busy = False  # the worker is applying a batch
        self._resync_at = 0.0
        self._retry_at = 0.0
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Load everything (pipelined reads), arm the watches, start the worker.

        Returns once the cache is complete and fresh; raises
        :class:`StoreUnavailable` (and stops the cache) if that takes longer
        than ``timeout`` seconds.
        """
        with self._cond:
            if self._running or self._thread is not None:
                raise RuntimeError("a ClusterCache is started only once")
            self._running = True
        self.zk.add_listener(self._on_state)
        self._request(full=True)
        self._thread = threading.Thread(target=self._run, name="pvc-cluster-cache",
                                        daemon=True)
        self._thread.start()
        if not self.wait_for(self._is_fresh, timeout):
            self.stop()
            raise StoreUnavailable(
                f"the cluster cache could not load from ZooKeeper within {timeout:g}s")

    def stop(self) -> None:
        """Stop the worker; the cache is no longer fresh. Idempotent."""
        self.zk.remove_listener(self._on_state)
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        with self._cond:
            self._running = False
            self._changes += 1
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.zk.op_timeout + 2 * TICK)

    # -- freshness -------------------------------------------------------------

    @property
    def generation(self) -> int:
        """A number that increases with every applied change (memoize per value)."""
        with self._cond:
            return self._generation

    @property
    def reloads(self) -> int:
        """How many full loads (initial, after reconnects, periodic) completed."""
        with self._cond:
            return self._reloads

    def _is_fresh(self) -> bool:
        with self._cond:
            return self._fresh_locked()

    def _fresh_locked(self) -> bool:
        return self._running and self._loaded == self._epoch and self.zk.connected

    def check_fresh(self) -> None:
        """Raise :class:`StoreUnavailable` unless the cache is known to be current:
        not while the session is suspended or lost, nor while it is reloading."""
        with self._cond:
            if self._fresh_locked():
                return
            running, loaded = self._running, self._loaded
        if not running:
            raise StoreUnavailable("the cluster cache is not running")
        if not self.zk.connected:
            raise StoreUnavailable(
                "the connection to ZooKeeper is suspended or lost; cached state may be stale")
        if loaded < 0:
            raise StoreUnavailable("the cluster cache is still loading")
        raise StoreUnavailable("the cluster cache is reloading after a ZooKeeper reconnect")

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``predicate()`` to become true.

        The predicate is evaluated (without the cache's lock held) now, after
        every applied change or freshness change, and at least every 0.5 s.
        Returns whether it became true.
        """
        deadline = Deadline(timeout, self._clock)
        while True:
            with self._cond:
                seen = self._changes
            if predicate():
                return True
            left = deadline.remaining()
            if left <= 0:
                return False
            with self._cond:
                if self._changes == seen:
                    self._cond.wait(min(left, TICK))

    # -- readers ---------------------------------------------------------------

    @staticmethod
    def _node_copy(node: CachedNode) -> CachedNode:
        record = dataclasses.replace(node.record, info=copy_json(node.record.info))
        return CachedNode(record, copy_json(node.stats), node.alive)

    def nodes(self) -> list[CachedNode]:
        """Every node (record, keepalive stats, liveness), sorted by name."""
        with self._cond:
            nodes = [self._nodes[name] for name in sorted(self._nodes)]
        return [self._node_copy(n) for n in nodes]

    def node(self, name: str) -> CachedNode:
        """One node; :class:`NotFound` when there is no such node."""
        with self._cond:
            node = self._nodes.get(name)
        if node is None:
            raise NotFound(f"node {name!r} does not exist")
        return self._node_copy(node)

    def vms(self) -> list[VmRecord]:
        """Every complete VM, sorted by name (the records are immutable and shared)."""
        with self._cond:
            if self._vm_list is None:
                self._vm_list = sorted(self._vms.values(), key=lambda v: (v.name, v.uuid))
            return list(self._vm_list)

    def vm(self, name_or_uuid: str) -> VmRecord:
        """One VM by name or UUID; :class:`NotFound` when there is none."""
        try:
            key: str | None = check_uuid(name_or_uuid)
        except InvalidInput:
            key = None
        with self._cond:
            found = self._vms.get(key) if key is not None else None
            if found is None:
                uuids = self._vm_names.get(name_or_uuid)
                if uuids:
                    found = self._vms.get(min(uuids))
        if found is None:
            raise NotFound(f"VM {name_or_uuid!r} does not exist")
        return found

    def jobs(self) -> list[dict[str, Any]]:
        """Every job document (copies), oldest first."""
        with self._cond:
            jobs = list(self._jobs.values())
        jobs.sort(key=lambda j: (j.get("created", 0), str(j.get("id", ""))))
        return [copy_json(j) for j in jobs]

    def job(self, job_id: str) -> dict[str, Any]:
        """One job document (a copy); :class:`NotFound` when there is none."""
        with self._cond:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id!r} does not exist")
        out: dict[str, Any] = copy_json(job)
        return out

    def faults(self) -> list[dict[str, Any]]:
        """Every fault (copies), oldest first."""
        with self._cond:
            faults = list(self._faults.values())
        faults.sort(key=lambda f: (f.get("first_seen", 0), str(f.get("id", ""))))
        return [copy_json(f) for f in faults]

    def cluster_config(self) -> dict[str, Any]:
        """The cluster configuration (a copy, defaults filled in)."""
        with self._cond:
            out: dict[str, Any] = copy_json(self._config)
        return out

    def primary(self) -> str | None:
        """The primary coordinator's name, or None when there is none."""
        with self._cond:
            return self._primary

    def view(self) -> ClusterView:
        """What :func:`pvc_core.ops.view.read_view` returns, built from the cache
        (nodes, their keepalive stats, all VMs sorted by name; no ZooKeeper read)."""
        with self._cond:
            nodes = list(self._nodes.values())
        vms = self.vms()
        return ClusterView(
            nodes={n.record.name: dataclasses.replace(n.record, info=copy_json(n.record.info))
                   for n in nodes},
            stats={n.record.name: copy_json(n.stats) for n in nodes},
            vms=vms)

    # -- kazoo's thread: enqueue only --------------------------------------------

    def _on_state(self, state: str) -> None:
        if state not in ("SUSPENDED", "LOST"):
            return  # CONNECTED: the worker is waiting for the connection already
        # kazoo forgets every watch when the connection drops, so a reload must
        # re-read and re-arm everything before the cache is fresh again.
        with self._cond:
            self._epoch += 1
            self._changes += 1
            self._cond.notify_all()
        self._request(full=True)

    def _on_data_event(self, event: Any) -> None:
        if event.type != EventType.NONE and event.path:
            self._request(paths=(event.path,))

    def _on_child_event(self, event: Any) -> None:
        if event.type != EventType.NONE and event.path:
            self._request(dirs=(event.path,))

    def settle(self, timeout: float) -> bool:
        """Return once every watch notification this client received before the
        call has been applied, and the worker is idle (False at the timeout).

        After a write on this cache's own session, that makes the write visible
        to the next read (read-your-writes): ZooKeeper sends a session the
        notifications a write triggers before the write's reply, and kazoo
        hands them to the callback queue in that order, so a marker queued now
        runs after them.
        """
        deadline = Deadline(timeout, self._clock)
        marker = threading.Event()
        self.zk.kazoo.handler.dispatch_callback(Callback("watch", marker.set, ()))
        if not marker.wait(max(deadline.remaining(), 0.0)):
            return False
        with self._wake:
            while self._want_full or self._pending_paths or self._pending_dirs or self._busy:
                if self._stopping:
                    return False
                left = deadline.remaining()
                if left <= 0:
                    return False
                self._wake.wait(min(left, TICK))
        return True

    def _request(self, *, full: bool = False, paths: Iterable[str] = (),
                 dirs: Iterable[str] = ()) -> None:
        with self._wake:
            self._want_full |= full
            self._pending_paths.update(paths)
            self._pending_dirs.update(dirs)
            self._wake.notify_all()

    # -- the worker ------------------------------------------------------------------

    def _run(self) -> None:
        self._resync_at = self._clock.monotonic() + self.resync_interval
        while True:
            with self._wake:
                while not self._stopping:
                    now = self._clock.monotonic()
                    if now >= self._retry_at and (
                            self._want_full or self._pending_paths or self._pending_dirs
                            or now >= self._resync_at):
                        break
                    due = self._resync_at if now >= self._retry_at else self._retry_at
                    self._wake.wait(min(TICK, max(due - now, 0.01)))
                if self._stopping:
                    return
                full = self._want_full or self._clock.monotonic() >= self._resync_at
                paths, dirs = self._pending_paths, self._pending_dirs
                self._want_full = False
                self._pending_paths, self._pending_dirs = set(), set()
                self._busy = True
            try:
                if full:
                    if self._full_load():
                        self._resync_at = self._clock.monotonic() + self.resync_interval
                    else:
                        self._request(full=True)
                        self._retry_later()
                else:
                    self._incremental(paths, dirs)
            except Exception:  # the worker must survive any bug or surprise
                log.exception("cluster cache update failed; reloading")
                self._request(full=True)
                self._retry_later()
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _retry_later(self) -> None:
        self._retry_at = self._clock.monotonic() + BACKOFF

    def _fetch(self, requests: Sequence[Request]) -> tuple[dict[Request, Any], list[Request]]:
        """Issue ``requests`` pipelined (each arming its watch), await them all.

        Returns the outcome of each request that completed (None for a missing
        znode) and the requests that failed (connection loss, timeout).
        """
        if not requests:
            return {}, []
        kazoo = self.zk.kazoo
        deadline = Deadline(self.zk.op_timeout + 0.001 * len(requests), self._clock)
        pending = []
        for op, path in requests:
            if op == GET:
                pending.append(kazoo.get_async(path, watch=self._data_cb))
            elif op == EXISTS:
                pending.append(kazoo.exists_async(path, watch=self._data_cb))
            elif op == CHILDREN:
                pending.append(kazoo.get_children_async(path, watch=self._child_cb))
            else:  # a missing directory: its creation re-lists it
                pending.append(kazoo.exists_async(path, watch=self._child_cb))
        outcomes: dict[Request, Any] = {}
        failed: list[Request] = []
        for request, result in zip(requests, pending, strict=True):
            try:
                outcomes[request] = result.get(timeout=max(deadline.remaining(), 0.001))
            except NoNodeError:
                outcomes[request] = None
            except Exception as exc:  # connection loss, expiry, timeout: retried
                log.debug("cache read %s %s failed: %r", request[0], request[1], exc)
                failed.append(request)
        return outcomes, failed

    def _paths_of(self, kind: str, key: str) -> list[tuple[str, str]]:
        """(path, field) of every cached znode of one entity (InvalidInput for a bad key)."""
        ks = self.ks
        if kind == NODE:
            return [(ks.node(key), F_NODE), (ks.node_keepalive(key), F_KEEPALIVE),
                    (ks.node_alive(key), F_ALIVE)]
        if kind == VM:
            return [(ks.vm(key), F_VM), (ks.vm_state(key), F_VM_STATE),
                    (ks.vm_placement(key), F_VM_PLACEMENT)]
        if kind == JOB:
            return [(ks.job(key), F_JOB)]
        return [(ks.fault(key), F_FAULT)]

    def _register(self, kind: str, key: str) -> list[str] | None:
        """Start tracking an entity; its paths, or None when its key is not valid."""
        try:
            pairs = self._paths_of(kind, key)
        except InvalidInput as exc:
            log.debug("cluster cache ignores %s %r: %s", kind, key, exc)
            return None
        for path, field in pairs:
            self._owners[path] = (field, key)
        paths = [p for p, _ in pairs]
        self._entity_paths[(kind, key)] = paths
        self._members[kind].add(key)
        return paths

    def _forget(self, kind: str, key: str) -> None:
        """Stop tracking an entity (its slots are dropped)."""
        self._members[kind].discard(key)
        for path in self._entity_paths.pop((kind, key), []):
            field_key = self._owners.pop(path, None)
            if field_key is not None:
                self._slots.pop(field_key, None)

    @staticmethod
    def _read_op(field: str) -> str:
        return EXISTS if field == F_ALIVE else GET

    def _slot_of(self, field: str, key: str, path: str, outcome: Any) -> Slot | None:
        """The new slot for a read outcome (reusing the cached one when unchanged)."""
        if outcome is None:
            return None
        data, stat = (b"", outcome) if field == F_ALIVE else outcome
        old = self._slots.get((field, key))
        if old is not None and old.mzxid == stat.mzxid:
            return old
        ok, value = decode_field(field, key, path, bytes(data or b""))
        return Slot(stat.mzxid, stat.version, ok, value)

    def _full_load(self) -> bool:
        """Re-read everything with fresh watches and replace the cache's content.

        True when it completed; the cache is fresh afterwards unless the
        connection dropped meanwhile.
        """
        if not self.zk.wait_connected(TICK):
            return False
        with self._cond:
            epoch = self._epoch
        ks = self.ks
        fixed: list[Request] = [(GET, ks.cluster_config()), (GET, ks.primary())]
        listing: list[Request] = [(CHILDREN, d) for d in self._dirs]
        outcomes, failed = self._fetch(listing + fixed)
        if failed:
            return False
        members: dict[str, set[str]] = {}
        reads: list[Request] = []
        for req in listing:
            kind = self._dirs[req[1]]
            kids = outcomes[req]
            if kids is None:
                reads.append((DIR_EXISTS, req[1]))
            members[kind] = set(kids or ())
        gone = [(kind, key) for kind, keys in members.items()
                for key in self._members[kind] - keys]
        entity_reads: list[tuple[Request, str, str]] = []  # request, field, key
        for kind, keys in members.items():
            for key in keys:
                paths = self._entity_paths.get((kind, key)) or self._register(kind, key)
                if paths is None:
                    continue
                for path in paths:
                    field, _ = self._owners[path]
                    entity_reads.append(((self._read_op(field), path), field, key))
        results, failed = self._fetch(reads + [r for r, _, _ in entity_reads])
        if failed:
            return False
        self._relist_created_dirs(results)
        results.update(outcomes)
        for kind, key in gone:
            self._forget(kind, key)
        touched = set(gone) | self._collect(
            entity_reads + [(req, self._owners[req[1]][0], self._owners[req[1]][0])
                            for req in fixed],
            results)
        with self._cond:
            changed = self._apply(touched)
            if self._epoch == epoch:
                self._loaded = epoch
            self._reloads += 1
            self._finish_locked(changed)
        return True

    def _incremental(self, paths: set[str], dirs: set[str]) -> None:
        """Re-list the changed directories and re-read the changed znodes."""
        if not self.zk.wait_connected(TICK):
            self._request(paths=paths, dirs=dirs)
            return
        listing: list[Request] = [(CHILDREN, d) for d in sorted(dirs) if d in self._dirs]
        outcomes, failed = self._fetch(listing)
        if failed:
            self._request(dirs=[p for _, p in failed])
            self._retry_later()
        touched: set[EntityKey] = set()
        dir_exists: list[Request] = []
        for req, kids in outcomes.items():
            kind = self._dirs[req[1]]
            if kids is None:
                dir_exists.append((DIR_EXISTS, req[1]))
            keys = set(kids or ())
            for key in self._members[kind] - keys:
                self._forget(kind, key)
                touched.add((kind, key))
            for key in keys - self._members[kind]:
                paths.update(self._register(kind, key) or ())
        entity_reads: list[tuple[Request, str, str]] = []
        for path in sorted(paths):
            owner = self._owners.get(path)
            if owner is not None:
                entity_reads.append(((self._read_op(owner[0]), path), owner[0], owner[1]))
        results, failed = self._fetch(dir_exists + [r for r, _, _ in entity_reads])
        self._relist_created_dirs(results)
        if failed:
            self._request(paths=[p for op, p in failed if op != DIR_EXISTS],
                          dirs=[p for op, p in failed if op == DIR_EXISTS])
            self._retry_later()
            lost = set(failed)
            entity_reads = [e for e in entity_reads if e[0] not in lost]
        touched |= self._collect(entity_reads, results)
        if touched:
            with self._cond:
                self._finish_locked(self._apply(touched))

    def _relist_created_dirs(self, results: dict[Request, Any]) -> None:
        """A directory that was missing but exists now is listed again."""
        created = [p for (op, p), stat in results.items() if op == DIR_EXISTS and stat]
        if created:
            self._request(dirs=created)

    def _collect(self, reads: list[tuple[Request, str, str]],
                 results: dict[Request, Any]) -> set[EntityKey]:
        """Turn read results into slots (decoding outside the lock); return the
        entities touched. Entities whose own znode is gone are forgotten;
        missing optional znodes get an exists watch."""
        touched: set[EntityKey] = set()
        watch_missing: list[Request] = []
        for request, field, key in reads:
            path = request[1]
            if self._owners.get(path) != (field, key):
                continue  # forgotten meanwhile
            kind = KIND_OF[field]
            slot = self._slot_of(field, key, path, results.get(request))
            old = self._slots.get((field, key))
            if slot is None:
                if kind != CLUSTER and field == PRIMARY_FIELD[kind]:
                    self._forget(kind, key)  # a later listing brings it back
                    touched.add((kind, key))
                    continue
                if field in OPTIONAL:
                    watch_missing.append((EXISTS, path))
                self._slots.pop((field, key), None)
            else:
                self._slots[(field, key)] = slot
            if slot is not old:
                touched.add((kind, key))
        if watch_missing:
            # Arm exists watches on optional znodes that are missing (a VM whose
            # state is not written yet, a node without keepalive). One that
            # appeared meanwhile is simply read again.
            outcomes, failed = self._fetch(watch_missing)
            again = [p for (_, p), stat in outcomes.items() if stat is not None]
            again += [p for _, p in failed]
            if again:
                self._request(paths=again)
        return touched

    # -- applying (under the lock) -------------------------------------------------

    def _finish_locked(self, changed: bool) -> None:
        if changed:
            self._generation += 1
        self._changes += 1
        self._cond.notify_all()

    def _apply(self, touched: Iterable[EntityKey]) -> bool:
        """Rebuild the readers' records of ``touched`` entities; whether any changed."""
        changed = False
        for kind, key in touched:
            if kind == VM:
                changed |= self._apply_vm(key)
            elif kind == NODE:
                changed |= self._apply_node(key)
            elif kind == CLUSTER:
                changed |= self._apply_cluster(key)
            else:
                slot = self._slots.get((PRIMARY_FIELD[kind], key))
                table = self._jobs if kind == JOB else self._faults
                old = table.get(key)
                if slot is not None and slot.ok:
                    if old is not slot.value:
                        table[key] = slot.value
                        changed |= old != slot.value
                elif old is not None:
                    del table[key]
                    changed = True
        return changed

    def _apply_vm(self, uuid: str) -> bool:
        old = self._vms.get(uuid)
        new = build_vm(uuid, *(self._slots.get((f, uuid))
                               for f in (F_VM, F_VM_STATE, F_VM_PLACEMENT)))
        if new == old:
            return False
        if old is not None:
            uuids = self._vm_names.get(old.name)
            if uuids is not None:
                uuids.discard(uuid)
                if not uuids:
                    del self._vm_names[old.name]
        if new is None:
            del self._vms[uuid]
        else:
            self._vms[uuid] = new
            self._vm_names.setdefault(new.name, set()).add(uuid)
        self._vm_list = None
        return True

    def _apply_node(self, name: str) -> bool:
        old = self._nodes.get(name)
        new = build_node(self._slots.get((F_NODE, name)), self._slots.get((F_KEEPALIVE, name)),
                         (F_ALIVE, name) in self._slots)
        if new == old:
            return False
        if new is None:
            del self._nodes[name]
        else:
            self._nodes[name] = new
        return True

    def _apply_cluster(self, field: str) -> bool:
        slot = self._slots.get((field, field))
        ok = slot is not None and slot.ok
        if field == F_CONFIG:
            config = slot.value if ok and slot is not None else dict(DEFAULT_CLUSTER_CONFIG)
            if config == self._config:
                return False
            self._config = config
            return True
        primary = slot.value if ok and slot is not None else None
        if primary == self._primary:
            return False
        self._primary = primary
        return True
