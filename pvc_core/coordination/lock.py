"""Exclusive and read/write locks on sequential-ephemeral znodes.

One algorithm serves both lock kinds. A contender creates the child
``{path}/{kind}-{identifier}-{token}-NNNNNNNNNN`` (EPHEMERAL_SEQUENTIAL) where
``kind`` is ``write`` (exclusive locks and writers) or ``read``, and
``token`` is a random hex string unique to one lock object:

* a writer holds the lock when no contender precedes it;
* a reader holds the lock when no *writer* precedes it.

A blocked contender watches the one node that blocks it (an ``exists``
watch that only sets an Event) and re-checks when it fires, until its
deadline. The token finds our own node again when a create succeeded on the
server but its reply was lost (ZkClient retries connection losses, so a
create may even be applied twice: the extra node is deleted).

The decision functions (:func:`parse_contender`, :func:`blocker`,
:func:`holders`) are pure, so the ordering rules are unit-tested without
ZooKeeper.

Session events: on ``SUSPENDED`` :attr:`BaseLock.suspended` becomes True (the
lock may be lost; do not start new irreversible work); on ``LOST`` the
ephemeral node is gone, so :attr:`BaseLock.is_held` becomes False and
:attr:`BaseLock.lost` is set. A holder must check ``lost`` before each step
of its critical section.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from pvc_core.clock import Clock, Deadline, SystemClock
from pvc_core.coordination.session import SessionFlags
from pvc_core.errors import LockTimeout, NotFound, PVCError
from pvc_core.keyspace import check_id, child
from pvc_core.store.zk import ZkClient

READ = "read"
WRITE = "write"

_NODE_RE = re.compile(r"^(read|write)-(.+)-([0-9a-f]{32})-(-?\d{10})$")


@dataclass(frozen=True)
class Contender:
    """One parsed lock node: ``{kind}-{identifier}-{token}-{seq}``."""

    name: str
    kind: str
    identifier: str
    token: str
    seq: int


def node_prefix(kind: str, identifier: str, token: str) -> str:
    """The child name a contender creates (ZooKeeper appends ten sequence digits)."""
    return f"{kind}-{identifier}-{token}-"


def parse_contender(name: str) -> Contender | None:
    """Parse a lock child name; None for children that are not contenders."""
    m = _NODE_RE.match(name)
    if m is None:
        return None
    return Contender(name, m.group(1), m.group(2), m.group(3), int(m.group(4)))


def sort_contenders(names: Iterable[str]) -> list[Contender]:
    """The contenders among ``names`` in queue order (sequence number)."""
    parsed = (parse_contender(n) for n in names)
    return sorted((c for c in parsed if c is not None), key=lambda c: c.seq)


def blocker(contenders: Sequence[Contender], own: Contender) -> Contender | None:
    """The contender ``own`` must wait for, or None when ``own`` holds the lock.

    A writer waits for its immediate predecessor (of any kind); a reader waits
    for the closest preceding writer. ``contenders`` need not be sorted.
    """
    earlier = sorted((c for c in contenders if c.seq < own.seq), key=lambda c: c.seq)
    if own.kind == READ:
        earlier = [c for c in earlier if c.kind == WRITE]
    return earlier[-1] if earlier else None


def holders(contenders: Sequence[Contender]) -> list[Contender]:
    """The contenders currently holding the lock: the first writer, or the leading readers."""
    ordered = sorted(contenders, key=lambda c: c.seq)
    if not ordered:
        return []
    if ordered[0].kind == WRITE:
        return ordered[:1]
    out: list[Contender] = []
    for c in ordered:
        if c.kind == WRITE:
            break
        out.append(c)
    return out


class BaseLock:
    """A lock contender on ``path``; subclasses choose the node kind.

    :param client: the ZooKeeper session; every call is bounded by its ``op_timeout``.
    :param path: the lock directory (e.g. ``Keyspace.flush_lock()``), created when missing.
    :param identifier: who contends (a node name), shown by :meth:`contenders`;
        1-128 of ``A-Z a-z 0-9 . _ -``.
    :param clock: measures the acquire deadline (default: the system clock).
    :param timeout: the deadline used by ``with lock:`` (None: wait forever).

    A lock object is not re-entrant: :meth:`acquire` on a held lock returns True
    at once and one :meth:`release` releases it. One thread at a time should
    use an object; use one object per contender.
    """

    _KIND: ClassVar[str] = WRITE

    def __init__(self, client: ZkClient, path: str, identifier: str, *,
                 clock: Clock | None = None, timeout: float | None = None) -> None:
        self.client = client
        self.path = path.rstrip("/")
        self.identifier = check_id(identifier, "identifier")
        self.timeout = timeout
        self._clock: Clock = clock or SystemClock()
        self._token = uuid.uuid4().hex
        self._prefix = node_prefix(self._KIND, self.identifier, self._token)
        self._mutex = threading.Lock()
        self._flags = SessionFlags(client)
        self._wake = self._flags.wake
        self._cancelled = threading.Event()
        #: Set when the session died while this lock was held (or being acquired).
        self.lost = self._flags.lost
        self._node: str | None = None
        #: False while no node carrying our token can exist in this session (no
        #: create attempted since the last clean-up): a failed acquire then has
        #: nothing to remove and raises without another round trip.
        self._may_have_node = False
        self._acquired = False
        self._path_ready = False

    # -- state ---------------------------------------------------------------

    @property
    def is_held(self) -> bool:
        """True while this object holds the lock and its session was not lost."""
        return self._acquired and not self.lost.is_set()

    @property
    def suspended(self) -> bool:
        """True while the connection is down (the lock may be lost; not yet known)."""
        return self._flags.suspended.is_set()

    @property
    def node(self) -> str | None:
        """Full path of this contender's znode, if it has one."""
        return child(self.path, self._node) if self._node else None

    def _on_watch(self, event: Any) -> None:
        self._flags.on_watch(event)

    def _listen(self) -> None:
        self._flags.listen()

    def _unlisten(self) -> None:
        self._flags.unlisten()

    # -- acquire and release -------------------------------------------------

    def acquire(self, timeout: float | None = None, blocking: bool = True) -> bool:
        """Take the lock.

        :param timeout: seconds to wait when blocked (None: forever). Each
            ZooKeeper call is bounded separately by the client's ``op_timeout``.
        :param blocking: when False, take the lock only if it is free right now.
        :returns: True once held; False when ``blocking`` is False and the lock
            is taken, or when :meth:`cancel` was called.
        :raises LockTimeout: the deadline passed (own node removed first; the
            message names the lock path and its holders).
        :raises StoreUnavailable: ZooKeeper did not answer. Raised within the
            client's ``op_timeout`` when the failing call came before this
            attempt created its node (as with quorum lost from the start); once
            a node may exist, its best-effort removal can take one more
            ``op_timeout`` (it vanishes with the session anyway).
        """
        deadline = None if timeout is None else Deadline(timeout, self._clock)
        with self._mutex:
            if self.is_held:
                return True
            self._acquired = False
            self._listen()
            try:
                got = self._inner_acquire(deadline, blocking, timeout)
            except BaseException:
                self._cleanup()
                raise
            if not got:
                self._cleanup()
            return got

    def _inner_acquire(self, deadline: Deadline | None, blocking: bool,
                       timeout: float | None) -> bool:
        if not self._path_ready:
            self.client.ensure_path(self.path)
            self._path_ready = True
        self.lost.clear()
        self._cancelled.clear()
        while True:
            if self._cancelled.is_set():
                return False
            self._wake.clear()
            if self.lost.is_set():  # the session was replaced: our node is gone
                self.lost.clear()
                self._node = None
                self._may_have_node = False
            contenders = self._contenders_cleaned()
            own = next((c for c in contenders if c.token == self._token), None)
            if own is None:
                self._may_have_node = True  # even if the reply is lost, it may exist
                created = self.client.create(child(self.path, self._prefix),
                                             self.identifier.encode(),
                                             ephemeral=True, sequence=True)
                self._node = created.rsplit("/", 1)[-1]
                continue  # re-read to learn our place among the others
            self._node = own.name
            block = blocker(contenders, own)
            if block is None:
                if self.lost.is_set():
                    continue
                self._acquired = True
                return True
            if not blocking:
                return False
            if not self._watch_exists(child(self.path, block.name)):
                continue  # the blocker already left
            left = None if deadline is None else deadline.remaining()
            if (left is not None and left <= 0) or not self._wake.wait(left):
                raise self._timeout_error(contenders, timeout)

    def _watch_exists(self, path: str) -> bool:
        """Set an exists watch on ``path`` (it wakes ``_wake``); True if it exists."""
        stat = self.client.call(
            lambda: self.client.kazoo.exists_async(path, watch=self._on_watch), path)
        return stat is not None

    def _contenders_cleaned(self) -> list[Contender]:
        """Current contenders; duplicates of our own node (a retried create) are deleted."""
        contenders = sort_contenders(self.client.children(self.path))
        mine = [c for c in contenders if c.token == self._token]
        for dup in mine[1:]:
            self._delete(dup.name)
        dups = {c.name for c in mine[1:]}
        return [c for c in contenders if c.name not in dups]

    def _timeout_error(self, contenders: Sequence[Contender],
                       timeout: float | None) -> LockTimeout:
        others = [c for c in contenders if c.token != self._token]
        held = ", ".join(c.identifier for c in holders(others)) or "nobody (just released)"
        waited = f" within {timeout:g}s" if timeout is not None else ""
        return LockTimeout(f"lock {self.path} not acquired{waited}: held by {held}"
                           f" ({len(others)} contender(s) ahead or holding)")

    def _delete(self, name: str) -> None:
        try:
            self.client.delete(child(self.path, name))
        except NotFound:
            pass

    def _cleanup(self) -> None:
        """Best effort: remove every node carrying our token and stop listening.

        Skipped when no such node can exist (no create since the last clean-up).
        """
        self._acquired = False
        if self._may_have_node or self._node is not None:
            try:
                for c in sort_contenders(self.client.children(self.path)):
                    if c.token == self._token:
                        self._delete(c.name)
                self._node = None
                self._may_have_node = False
            except PVCError:
                pass  # ZooKeeper is away; the ephemeral node vanishes with the session
        self._unlisten()

    def cancel(self) -> None:
        """Make a pending :meth:`acquire` (in another thread) return False soon."""
        self._cancelled.set()
        self._wake.set()

    def release(self) -> None:
        """Release the lock (delete our node). Idempotent: no error when not held.

        :raises StoreUnavailable: ZooKeeper did not answer; the lock stays in
            place (``is_held`` unchanged) and ``release`` may be called again.
        """
        with self._mutex:
            if self._node is not None:
                self._delete(self._node)
                self._node = None
                self._may_have_node = False
            self._acquired = False
            self._unlisten()

    def __enter__(self) -> Self:
        """Acquire with the constructor's ``timeout``; raises LockTimeout naming the holder."""
        self.acquire(timeout=self.timeout)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Release the lock (see :meth:`release`)."""
        self.release()

    # -- queries ---------------------------------------------------------------

    def contenders(self) -> list[str]:
        """Identifiers of all contenders (readers and writers) in queue order.

        Holders come first. Empty when the lock directory does not exist.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        return [c.identifier for c in self._all()]

    def holders(self) -> list[str]:
        """Identifiers of the contenders holding the lock right now (see :func:`holders`).

        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        return [c.identifier for c in holders(self._all())]

    def _all(self) -> list[Contender]:
        try:
            return sort_contenders(self.client.children(self.path))
        except NotFound:
            return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, {self.identifier!r}, held={self.is_held})"


class Lock(BaseLock):
    """An exclusive lock (the same node kind as a writer, so it excludes readers too)."""

    _KIND = WRITE


class WriteLock(Lock):
    """The write side of a read/write lock: exclusive."""


class ReadLock(BaseLock):
    """The read side of a read/write lock: shared with other readers, excluded by writers."""

    _KIND = READ


class ReadWriteLock:
    """A pair of contenders, one reader and one writer, on one lock path.

    Arguments as for :class:`BaseLock`. The two sides are independent objects
    (taking the write side while holding the read side of the same pair would
    deadlock: the writer queues behind our own reader).
    """

    def __init__(self, client: ZkClient, path: str, identifier: str, *,
                 clock: Clock | None = None, timeout: float | None = None) -> None:
        self.path = path.rstrip("/")
        self._read = ReadLock(client, path, identifier, clock=clock, timeout=timeout)
        self._write = WriteLock(client, path, identifier, clock=clock, timeout=timeout)

    def read_lock(self) -> ReadLock:
        """The shared side (the same object on every call)."""
        return self._read

    def write_lock(self) -> WriteLock:
        """The exclusive side (the same object on every call)."""
        return self._write

    def contenders(self) -> list[str]:
        """Identifiers of all contenders in queue order.

        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        return self._read.contenders()
