"""Node liveness without comparing clocks across hosts.

Each node holds two znodes (paths from :class:`~pvc_core.keyspace.Keyspace`):

* ``nodes/{name}/alive``: ephemeral; it exists while the node's session does;
* ``nodes/{name}/keepalive``: ``{"seq": n, "stats": {...}}``, where ``n``
  grows by one at every beat. The node is its only writer.

An observer (the primary, when judging fencing) never looks at a time the
node wrote. It remembers when, on *its own* monotonic clock, it last saw each
node's ``seq`` change; ``stale_for`` is the time since. A node is suspect
when its session is gone or ``stale_for`` exceeds the fence window.

The observer's own disconnection must not count against other nodes: when
its session is SUSPENDED or LOST every baseline restarts at the next
:meth:`LivenessObserver.observe` (a node is never judged on time during
which the observer could not see it).

Both classes take a ``Keyspace`` rather than a base path so the layout is
spelled in one place.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kazoo.protocol.states import ZnodeStat

from pvc_core.clock import Clock, Deadline, SystemClock
from pvc_core.coordination.session import SessionFlags
from pvc_core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, VersionConflict
from pvc_core.keyspace import Keyspace, check_node_name
from pvc_core.store.zk import ZkClient


class Liveness:
    """The node's side: announce the session, beat the keepalive sequence.

    :param client: the node's ZooKeeper session (calls bounded by ``op_timeout``).
    :param keyspace: builds ``node_alive(node)`` and ``node_keepalive(node)``.
    :param node: this node's name (a DNS label).
    :param clock: measures the :meth:`announce` wait (default: the system clock).

    After a LOST session the alive znode is gone; :attr:`lost` is set and the
    next :meth:`beat` announces again before beating (no work in kazoo's thread).
    """

    def __init__(self, client: ZkClient, keyspace: Keyspace, node: str, *,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.node = check_node_name(node)
        self.alive_path = keyspace.node_alive(node)
        self.keepalive_path = keyspace.node_keepalive(node)
        self._node_path = keyspace.node(node)
        self._clock: Clock = clock or SystemClock()
        self._data = b""
        self._announced = False
        self._seq: int | None = None
        self._version = -1
        self._flags = SessionFlags(client)
        self._wake = self._flags.wake
        #: Set when the session was lost; cleared by the next announce.
        self.lost = self._flags.lost

    @property
    def suspended(self) -> bool:
        """True while the connection is down (the session may yet survive)."""
        return self._flags.suspended.is_set()

    def _on_watch(self, event: Any) -> None:
        self._flags.on_watch(event)

    def announce(self, data: bytes = b"", wait: float = 0.0) -> None:
        """Create the ephemeral alive znode for this session (parents as needed).

        Idempotent: an alive znode owned by this session is kept (its data is
        not rewritten). One owned by another session (this node's previous
        run, not yet expired) is waited for up to ``wait`` seconds.

        :raises Conflict: another session still owns the alive znode after ``wait``.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        self._flags.listen()
        self._data = data
        self.lost.clear()
        deadline = Deadline(wait, self._clock)
        self.client.ensure_path(self._node_path)
        while True:
            self._wake.clear()
            try:
                self.client.create(self.alive_path, data, ephemeral=True)
                break
            except AlreadyExists:
                pass
            stat = self._watch_alive()
            if stat is None:
                continue
            sid = self.client.session_id
            if sid is not None and stat.ephemeralOwner == sid[0]:
                break  # ours: a retried create, or announced before
            left = deadline.remaining()
            if left <= 0 or not self._wake.wait(left):
                raise Conflict(f"{self.alive_path} is owned by session"
                               f" 0x{stat.ephemeralOwner:x}, not ours: is {self.node}"
                               " running elsewhere, or has its old session not expired?")
        self._announced = True

    def _watch_alive(self) -> ZnodeStat | None:
        path = self.alive_path
        stat: ZnodeStat | None = self.client.call(
            lambda: self.client.kazoo.exists_async(path, watch=self._on_watch), path)
        return stat

    def beat(self, stats: Mapping[str, Any] | None = None) -> int:
        """Write the next keepalive sequence number with ``stats``; return it.

        The sequence continues from the stored value (after a restart too).
        Re-announces first when the session was lost since :meth:`announce`.

        :raises InvalidInput: ``stats`` is not JSON-serialisable.
        :raises Conflict: another writer keeps changing the keepalive znode.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        if self._announced and self.lost.is_set():
            self.announce(self._data)
        for _ in range(3):
            if self._seq is None:
                self._load()
            seq = (self._seq or 0) + 1
            try:
                data = json.dumps({"seq": seq, "stats": dict(stats or {})},
                                  sort_keys=True).encode()
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"keepalive stats are not JSON: {exc}", "stats") from exc
            try:
                if self._version < 0:
                    self.client.create(self.keepalive_path, data, makepath=True)
                    self._version = 0
                else:
                    self._version = self.client.set(self.keepalive_path, data,
                                                    self._version).version
            except (AlreadyExists, VersionConflict, NotFound):
                self._seq = None  # moved under us (maybe our own retried write): re-read
                continue
            self._seq = seq
            return seq
        raise Conflict(f"{self.keepalive_path} keeps changing under {self.node}:"
                       " is another daemon writing it?")

    def _load(self) -> None:
        try:
            raw, stat = self.client.get(self.keepalive_path)
        except NotFound:
            self._seq, self._version = 0, -1
            return
        self._seq, self._version = _decode_seq(raw), stat.version

    def withdraw(self) -> None:
        """Delete the alive znode (clean shutdown) and stop listening. Idempotent.

        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        self._announced = False
        self._flags.unlisten()
        try:
            self.client.delete(self.alive_path)
        except NotFound:
            pass


@dataclass(frozen=True)
class NodeLiveness:
    """What an observer knows about one node.

    ``seq`` is 0 when the node never beat. ``stale_for`` is seconds on the
    observer's monotonic clock since it last saw ``seq`` change (0 at first
    sighting). ``session_id`` is the owner of the alive znode, if any.
    """

    name: str
    session_alive: bool
    seq: int
    stale_for: float
    stats: dict[str, Any] = field(default_factory=dict)
    session_id: int | None = None


class LivenessObserver:
    """Judges other nodes' liveness on this process's monotonic clock.

    :param client: the observer's ZooKeeper session.
    :param keyspace: builds the node paths.
    :param clock: the observer's clock (inject a FakeClock in tests).

    Call :meth:`close` when done (it removes the session listener).
    """

    def __init__(self, client: ZkClient, keyspace: Keyspace, *,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.keyspace = keyspace
        self._clock: Clock = clock or SystemClock()
        self._seen: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._discontinuity = threading.Event()
        client.add_listener(self._on_state)

    def _on_state(self, state: str) -> None:
        # kazoo's thread: only a flag.
        if state in ("SUSPENDED", "LOST"):
            self._discontinuity.set()

    def close(self) -> None:
        """Stop listening to the observer's session events."""
        self.client.remove_listener(self._on_state)

    def reset(self) -> None:
        """Forget every baseline: the next observation counts as a first sighting."""
        with self._lock:
            self._seen.clear()

    def forget(self, name: str) -> None:
        """Forget one node's baseline (e.g. a node removed from the cluster)."""
        with self._lock:
            self._seen.pop(name, None)

    def observe(self, names: Iterable[str]) -> dict[str, NodeLiveness]:
        """Read the alive and keepalive znodes of ``names`` and judge each.

        Two bounded ZooKeeper reads per node.
        :raises StoreUnavailable: ZooKeeper did not answer (no baseline changes).
        :raises InvalidInput: a name is not a valid node name.
        """
        if self._discontinuity.is_set():
            self._discontinuity.clear()
            self.reset()
        raw = {name: self._read(name) for name in names}
        now = self._clock.monotonic()
        out: dict[str, NodeLiveness] = {}
        with self._lock:
            for name, (owner, seq, stats) in raw.items():
                last = self._seen.get(name)
                if last is None or last[0] != seq:
                    last = (seq, now)
                    self._seen[name] = last
                out[name] = NodeLiveness(name, owner is not None, seq,
                                         max(0.0, now - last[1]), stats, owner)
        return out

    def _read(self, name: str) -> tuple[int | None, int, dict[str, Any]]:
        stat = self.client.exists(self.keyspace.node_alive(name))
        owner = int(stat.ephemeralOwner) if stat is not None else None
        try:
            raw, _ = self.client.get(self.keyspace.node_keepalive(name))
        except NotFound:
            return owner, 0, {}
        doc = _decode(raw)
        stats = doc.get("stats")
        return owner, _decode_seq(raw), stats if isinstance(stats, dict) else {}


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _decode_seq(raw: bytes) -> int:
    """The ``seq`` of keepalive content; 0 when absent or unreadable."""
    seq = _decode(raw).get("seq", 0)
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
