"""Primary coordinator election: an ephemeral exclusive lock and a guarded claim.

Three znodes (paths from :class:`~pvc_core.keyspace.Keyspace`):

* ``primary_lock()`` — an exclusive :class:`~pvc_core.coordination.lock.Lock`
  whose contender nodes are ephemeral. Only its holder may be primary, and
  the lock dies with the holder's session, so a crashed or partitioned
  primary is replaced as soon as its session expires.
* ``primary()`` — the claim: the primary's node name (``""``: none). The
  holder writes it with compare-and-set on the znode version **in one
  transaction with a check that its own lock node still exists**
  (:meth:`PrimaryElection.claim`). Two contenders therefore never both win:
  the lock admits one, the version check rejects a writer that read a stale
  value, and the lock-node check rejects a writer whose session expired
  while it was deciding (its node is gone).
* ``primary_request()`` — a planned move (:class:`PrimaryRequest`), JSON
  ``{"target": "hv2" | null, "source": "hv1" | null, "id": ..., "by": ...}``.
  ``target`` names the node that should become primary; ``target`` null
  asks the primary ``source`` to step down to any other coordinator.

A planned move walks ``relinquish`` → ``takeover`` → ``primary`` in
lockstep through the lock itself: the old primary brings its floating
services down *while it still holds the lock*, then releases it; whoever
acquires the lock next asks :func:`judge` whether the pending request
names someone else who is contending, and if so releases it again at once
(re-queueing behind the target) without claiming anything. The target
finally acquires it and takes over. No read/write lock is needed: the
exclusive lock's queue is the lockstep (docs/coordinator.md).

The decisions (:func:`judge`, :func:`stale_claims`, the state answer sets)
are pure and unit-tested without ZooKeeper.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pvc_core.clock import Clock
from pvc_core.coordination.lock import Lock, ReadWriteLock
from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    LockTimeout,
    NotFound,
    PVCError,
    VersionConflict,
)
from pvc_core.keyspace import Keyspace, check_node_name
from pvc_core.states import CoordinatorState
from pvc_core.store.watch import ZnodeWatch
from pvc_core.store.zk import Op, ZkClient

C = CoordinatorState

#: States that answer yes to "is this node the primary?" (takeover completed,
#: floating services up).
IS_PRIMARY: frozenset[CoordinatorState] = frozenset({C.PRIMARY})
#: States in which the node may *start* cluster-wide primary actions (fence
#: judgement, recovery, demoting stale records): it holds the primary lock and
#: has claimed ``cluster/primary``. Floating services may still be coming up
#: during ``takeover``. A node in ``relinquish`` starts nothing new.
ACTS_AS_PRIMARY: frozenset[CoordinatorState] = frozenset({C.TAKEOVER, C.PRIMARY})
#: States in which the node holds the primary lock, so no other node can be
#: primary: an action already under way may finish (record its result).
HOLDS_PRIMARY: frozenset[CoordinatorState] = frozenset({C.TAKEOVER, C.PRIMARY, C.RELINQUISH})
del C


class LockLost(Conflict):
    """The primary lock node is gone (session expired): nothing may be claimed."""


class Verdict(StrEnum):
    """What the holder of the primary lock does about the pending request."""

    #: No request: take over (or stay primary).
    PROCEED = "proceed"
    #: The request is satisfied by this node holding the lock: take over, then clear it.
    SATISFIED = "satisfied"
    #: The request names another node that is contending: step down / release now.
    YIELD = "yield"
    #: The request cannot be met (its target is not contending): proceed; the
    #: primary drops the request after a grace period.
    UNSATISFIABLE = "unsatisfiable"


@dataclass(frozen=True)
class PrimaryRequest:
    """A planned primary move. ``version`` is the znode version it was read at."""

    target: str | None
    source: str | None
    id: str
    by: str = ""
    version: int = -1

    def describe(self) -> str:
        if self.target is not None:
            return f"make {self.target} primary"
        return f"{self.source or 'the primary'} steps down"

    def to_bytes(self) -> bytes:
        return json.dumps({"target": self.target, "source": self.source, "id": self.id,
                           "by": self.by}, sort_keys=True).encode()

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "source": self.source, "id": self.id, "by": self.by}


def decode_request(raw: bytes, version: int, path: str = "") -> PrimaryRequest | None:
    """Parse a request znode; None for an empty znode.

    :raises Conflict: the znode holds something that is not a request.
    """
    if not raw:
        return None
    try:
        doc = json.loads(raw.decode())
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        target, source = doc.get("target"), doc.get("source")
        for name in (target, source):
            if name is not None:
                check_node_name(name)
        rid = str(doc.get("id") or "")
        by = str(doc.get("by") or "")
    except (ValueError, UnicodeDecodeError, PVCError) as exc:
        raise Conflict(f"primary request {path} holds invalid data: {exc}") from exc
    return PrimaryRequest(target, source, rid, by, version)


def judge(me: str, request: PrimaryRequest | None, contenders: Iterable[str]) -> Verdict:
    """What ``me``, holding the primary lock, does about ``request``.

    ``contenders`` are the identifiers queued on (or holding) the primary
    lock; ``me`` among them is ignored.

    * no request: :attr:`Verdict.PROCEED`;
    * ``target`` is ``me``: :attr:`Verdict.SATISFIED`;
    * ``target`` is another node: :attr:`Verdict.YIELD` if it is contending,
      else :attr:`Verdict.UNSATISFIABLE`;
    * no ``target`` (step down): :attr:`Verdict.SATISFIED` when ``me`` is not
      the ``source`` (the source no longer holds the lock); otherwise
      :attr:`Verdict.YIELD` if anybody else is contending, else
      :attr:`Verdict.UNSATISFIABLE`.
    """
    if request is None:
        return Verdict.PROCEED
    others = {c for c in contenders if c != me}
    if request.target is not None:
        if request.target == me:
            return Verdict.SATISFIED
        return Verdict.YIELD if request.target in others else Verdict.UNSATISFIABLE
    if request.source != me:
        return Verdict.SATISFIED
    return Verdict.YIELD if others else Verdict.UNSATISFIABLE


def stale_claims(me: str, states: Mapping[str, CoordinatorState]) -> list[str]:
    """Other nodes whose records claim the primary lock while ``me`` holds it.

    Only one node holds the lock, so such a record is stale (its node lost
    its session or crashed mid-way) and is set back to ``secondary``.
    """
    return sorted(n for n, s in states.items() if n != me and s in HOLDS_PRIMARY)


# -- the request znode (shared by the coordinator and the operations) ----------


def read_request(client: ZkClient, keyspace: Keyspace) -> PrimaryRequest | None:
    """The pending planned move, or None.

    :raises StoreUnavailable: ZooKeeper did not answer.
    """
    path = keyspace.primary_request()
    try:
        raw, stat = client.get(path)
    except NotFound:
        return None
    return decode_request(raw, int(stat.version), path)


def write_request(client: ZkClient, keyspace: Keyspace, *, target: str | None,
                  source: str | None, by: str = "") -> PrimaryRequest:
    """Write a planned move (replacing any pending one: the latest request wins).

    :raises StoreUnavailable: ZooKeeper did not answer.
    """
    path = keyspace.primary_request()
    request = PrimaryRequest(target, source, uuid.uuid4().hex, by)
    data = request.to_bytes()
    for _ in range(10):
        try:
            stat = client.set(path, data)
            return PrimaryRequest(target, source, request.id, by, int(stat.version))
        except NotFound:
            pass
        try:
            client.create(path, data)
            return PrimaryRequest(target, source, request.id, by, 0)
        except AlreadyExists:
            continue  # written meanwhile: overwrite it
    raise Conflict(f"{path} keeps changing: cannot write the request")


# -- the recipe -----------------------------------------------------------------

log = logging.getLogger("pvc.coordination.election")


def transition_free(client: ZkClient, keyspace: Keyspace, identifier: str,
                    timeout: float) -> bool:
    """Whether no primary transition holds the primary-transition lock: its read
    side taken and released at once (within ``timeout``), so the caller is ordered
    after a relinquish or takeover under way (:meth:`PrimaryElection.transition`).

    :raises StoreUnavailable: ZooKeeper did not answer.
    """
    reader = ReadWriteLock(client, keyspace.transition_lock(), identifier).read_lock()
    try:
        reader.acquire(timeout=timeout)
    except LockTimeout:
        return False
    reader.release()
    return True


class PrimaryElection:
    """One coordinator's side of the election (kazoo-recipe shaped).

    :param client: the node's ZooKeeper session (every call bounded).
    :param keyspace: builds the lock, claim and request paths.
    :param identifier: this node's name (shown as the lock contender).
    :param clock: measures lock waits.

    One thread at a time should drive an object (the coordinator's worker).
    """

    def __init__(self, client: ZkClient, keyspace: Keyspace, identifier: str, *,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.ks = keyspace
        self.identifier = check_node_name(identifier)
        self.lock = Lock(client, keyspace.primary_lock(), identifier, clock=clock)
        #: The write side of the primary-transition read/write lock (see :meth:`transition`).
        self.transition_lock = ReadWriteLock(client, keyspace.transition_lock(), identifier,
                                             clock=clock).write_lock()

    # -- the lock --------------------------------------------------------------

    @contextmanager
    def transition(self, timeout: float) -> Iterator[PVCError | None]:
        """Hold the write side of the primary-transition lock while the block runs.

        A coordinator runs relinquish and takeover in it: readers (flush and
        ready jobs, which take and release the read side before they start)
        then begin only after a transition under way has completed, and a
        takeover begins only after the relinquish before it released it.
        Readers hold it for an instant. Yields None when taken, or the error
        when it was not within ``timeout`` (the block runs anyway: a primary
        matters more than a flush's start); a failed release is left to the
        session (the contender is ephemeral).
        """
        problem: PVCError | None = None
        held = False
        try:
            held = self.transition_lock.acquire(timeout=timeout)
        except PVCError as exc:
            problem = exc
        try:
            yield problem
        finally:
            if held:
                try:
                    self.transition_lock.release()
                except PVCError as exc:  # it vanishes with the session anyway
                    log.warning("releasing the primary-transition lock: %s", exc)

    @property
    def held(self) -> bool:
        """True while this node holds the primary lock and its session was not lost."""
        return self.lock.is_held

    def acquire(self, timeout: float) -> bool:
        """Queue for the lock and wait up to ``timeout`` seconds.

        :returns: True once held; False on timeout (our place in the queue is
            given up) or after :meth:`cancel`.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        try:
            return self.lock.acquire(timeout=timeout)
        except LockTimeout:
            return False

    def cancel(self) -> None:
        """Make a pending :meth:`acquire` in another thread return False soon."""
        self.lock.cancel()

    def release(self) -> None:
        """Leave the queue / release the lock. Idempotent.

        :raises StoreUnavailable: ZooKeeper did not answer (may be called again).
        """
        self.lock.release()

    def contenders(self) -> list[str]:
        """Identifiers queued on or holding the lock, holder first."""
        return self.lock.contenders()

    def guard(self) -> Op:
        """A transaction check that fails unless our lock node still exists.

        :raises LockLost: we do not hold the lock.
        """
        node = self.lock.node
        if not self.held or node is None:
            raise LockLost(f"{self.identifier} does not hold the primary lock")
        return Op.check(node, 0)  # lock nodes are never rewritten: version 0

    def transact(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` atomically, only while we hold the lock.

        :raises LockLost: our lock node is gone (nothing was applied).
        :raises VersionConflict: an op's version check failed.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        guard = self.guard()
        try:
            self.client.transaction([guard, *ops])
        except NotFound:
            if self.client.exists(guard.path) is None:
                raise LockLost(f"{self.identifier}'s primary lock node vanished"
                               " (session expired?)") from None
            raise

    # -- the claim ---------------------------------------------------------------

    def read_claim(self) -> tuple[str | None, int]:
        """``(primary name or None, znode version)`` of ``cluster/primary``."""
        raw, stat = self.client.get(self.ks.primary())
        return raw.decode() or None, int(stat.version)

    def claim(self) -> int:
        """Write our name to ``cluster/primary`` (guarded CAS); return the new version.

        :raises LockLost: we do not hold the lock (any more).
        :raises VersionConflict: the claim kept changing under us.
        """
        path = self.ks.primary()
        for _ in range(5):
            _, version = self.read_claim()
            try:
                self.transact([Op.set(path, self.identifier.encode(), version)])
            except VersionConflict:
                continue  # a stale writer raced us (or our own retried write): re-read
            return version + 1
        raise VersionConflict(f"{path} keeps changing while {self.identifier} holds the lock")

    def unclaim(self) -> bool:
        """Clear ``cluster/primary`` if it names us (guarded CAS); True if cleared.

        :raises LockLost: we do not hold the lock (the claim is someone else's now).
        """
        path = self.ks.primary()
        for _ in range(5):
            current, version = self.read_claim()
            if current != self.identifier:
                return False
            try:
                self.transact([Op.set(path, b"", version)])
            except VersionConflict:
                continue
            return True
        raise VersionConflict(f"{path} keeps changing while {self.identifier} holds the lock")

    # -- the request ---------------------------------------------------------------

    def read_request(self) -> PrimaryRequest | None:
        return read_request(self.client, self.ks)

    def clear_request(self, request: PrimaryRequest) -> bool:
        """Delete ``request`` if it is still the pending one (CAS); True if deleted."""
        try:
            self.client.delete(self.ks.primary_request(), request.version)
        except (NotFound, VersionConflict):
            return False
        return True

    # -- watches (callbacks run in kazoo's thread: they must only set events) -----

    def watch_claim(self, callback: Callable[[str], None]) -> ZnodeWatch:
        """A re-arming watch on ``cluster/primary`` (call ``arm()``, ``cancel()``)."""
        return ZnodeWatch(self.client, self.ks.primary(), callback)

    def watch_request(self, callback: Callable[[str], None]) -> ZnodeWatch:
        """A re-arming watch on the request znode (created, changed, deleted)."""
        return ZnodeWatch(self.client, self.ks.primary_request(), callback)

    def watch_contenders(self, callback: Callable[[Any], None]) -> None:
        """A one-shot watch on the lock's contenders (fires when one comes or goes)."""
        self.client.kazoo.get_children_async(self.lock.path, watch=callback)
