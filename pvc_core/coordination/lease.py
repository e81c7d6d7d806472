"""The VM run-lease: a holder and a strictly increasing epoch in one znode.

A VM may run on a node only while that node holds the VM's lease
(DESIGN.md section 5). The lease znode (``Keyspace.vm_lease(uuid)``) is
*persistent*, so a holder that loses its session still holds it: the lease
moves only when

* it is free (never taken, or released by its holder): :meth:`RunLease.acquire`;
* its holder releases it: :meth:`RunLease.release`;
* its holder hands it to the node a VM was live-migrated to: :meth:`RunLease.hand_over`;
* its holder was proved off (fenced) and someone breaks it: :meth:`RunLease.break_`.

Every change is a compare-and-set on the znode version, so two contenders
never both win. Each successful acquire, hand-over and break adds one to
the epoch; release keeps it. Winners' epochs therefore never repeat, and a
holder can stamp its work (e.g. storage locks) with its epoch.

Content (JSON)::

    {"holder": "hv1" | null, "epoch": 7, "changed_by": "hv1", "broken_from": null | "hv2"}

A write whose reply is lost is retried by the client and then fails its
version check; every operation re-reads and recognises its own earlier write
(``holder``/``changed_by``/``broken_from``), so all operations are idempotent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from pvc_core.clock import Clock, Deadline, SystemClock
from pvc_core.coordination.session import SessionFlags
from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    LeaseHeld,
    LockTimeout,
    NotFound,
    VersionConflict,
)
from pvc_core.keyspace import check_id
from pvc_core.store.zk import ZkClient


@dataclass(frozen=True)
class LeaseInfo:
    """A snapshot of a lease. ``version`` is -1 when the znode does not exist."""

    holder: str | None
    epoch: int
    version: int
    changed_by: str | None = None
    broken_from: str | None = None

    @property
    def free(self) -> bool:
        """True when nobody holds the lease."""
        return self.holder is None


def decode_lease(raw: bytes, version: int, path: str = "") -> LeaseInfo:
    """Parse lease content; missing keys default to a free lease at epoch 0.

    :raises Conflict: the znode holds something that is not a lease.
    """
    try:
        doc = json.loads(raw.decode() or "{}")
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        holder, epoch = doc.get("holder"), int(doc.get("epoch", 0))
        if holder is not None and not isinstance(holder, str):
            raise ValueError("holder is not a string")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Conflict(f"lease {path} holds invalid data: {exc}") from exc
    return LeaseInfo(holder or None, epoch, version, doc.get("changed_by"),
                     doc.get("broken_from"))


def encode_lease(holder: str | None, epoch: int, changed_by: str,
                 broken_from: str | None = None) -> bytes:
    """Serialise lease content."""
    return json.dumps({"holder": holder, "epoch": epoch, "changed_by": changed_by,
                       "broken_from": broken_from}, sort_keys=True).encode()


class RunLease:
    """One node's handle on one VM's run-lease.

    :param client: the ZooKeeper session; every call is bounded by its ``op_timeout``.
    :param path: the lease znode (``Keyspace.vm_lease(uuid)``); parents are created.
    :param holder: this node's name (1-128 of ``A-Z a-z 0-9 . _ -``).
    :param clock: measures :attr:`timeout` (default: the system clock).
    :param timeout: how long one operation keeps retrying lost compare-and-set
        races before giving up with :class:`LockTimeout` (default: the
        client's ``op_timeout``).

    :attr:`valid` is True after this handle acquired or confirmed the lease
    and until its session is LOST or it releases: after a LOST the holder must
    not start VMs under this lease until :meth:`holds` confirms it again.
    """

    def __init__(self, client: ZkClient, path: str, holder: str, *,
                 clock: Clock | None = None, timeout: float | None = None) -> None:
        self.client = client
        self.path = path
        self.holder = check_id(holder, "holder")
        self.timeout = client.op_timeout if timeout is None else timeout
        self._clock: Clock = clock or SystemClock()
        self._valid = threading.Event()
        self._flags = SessionFlags(client)
        self._mutex = threading.Lock()

    # -- session -------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """True while this handle knows it holds the lease (see the class docstring)."""
        return self._valid.is_set() and not self._flags.lost.is_set()

    @property
    def suspended(self) -> bool:
        """True while the connection is down: no new VM starts until it returns."""
        return self._flags.suspended.is_set()

    def _set_valid(self, valid: bool) -> None:
        with self._mutex:
            if valid:
                self._flags.lost.clear()
                self._flags.listen()
                self._valid.set()
            else:
                self._valid.clear()
                self._flags.unlisten()

    def close(self) -> None:
        """Stop listening to session events (the lease itself is unchanged)."""
        self._set_valid(False)

    # -- operations -----------------------------------------------------------

    def read(self) -> LeaseInfo:
        """The lease as stored now (free at epoch 0, version -1 when missing).

        :raises StoreUnavailable: ZooKeeper did not answer.
        :raises Conflict: the znode does not hold a lease.
        """
        try:
            raw, stat = self.client.get(self.path)
        except NotFound:
            return LeaseInfo(None, 0, -1)
        return decode_lease(raw, stat.version, self.path)

    def holds(self) -> bool:
        """True when the stored lease names this holder; refreshes :attr:`valid`.

        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        held = self.read().holder == self.holder
        self._set_valid(held)
        return held

    def acquire(self) -> int:
        """Take the lease if it is free and return the new epoch.

        A missing lease is created at epoch 1. If this holder already holds it,
        its current epoch is returned and nothing changes (idempotent).

        :raises LeaseHeld: another node holds it (the message names it).
        :raises LockTimeout: the lease kept changing for :attr:`timeout` seconds.
        :raises StoreUnavailable: ZooKeeper did not answer (outcome unknown:
            call again, or :meth:`holds`, to learn it).
        """
        deadline = Deadline(self.timeout, self._clock)
        try:  # a lease never taken before: one round trip instead of two
            self.client.create(self.path, encode_lease(self.holder, 1, self.holder),
                               makepath=True)
            self._set_valid(True)
            return 1
        except AlreadyExists:
            pass
        while True:
            info = self.read()
            if info.holder == self.holder:
                self._set_valid(True)
                return info.epoch
            if info.holder is not None:
                raise LeaseHeld(f"lease {self.path} is held by {info.holder}"
                                f" (epoch {info.epoch})")
            epoch = info.epoch + 1
            data = encode_lease(self.holder, epoch, self.holder)
            try:
                if info.version < 0:
                    self.client.create(self.path, data, makepath=True)
                else:
                    self.client.set(self.path, data, info.version)
            except (VersionConflict, AlreadyExists, NotFound):
                self._check_deadline(deadline, "acquire")
                continue  # someone (maybe our own retried write) changed it: re-read
            self._set_valid(True)
            return epoch

    def release(self) -> None:
        """Free the lease if this holder holds it; otherwise change nothing.

        The epoch is kept. Idempotent; :attr:`valid` becomes False.

        :raises LockTimeout: the lease kept changing for :attr:`timeout` seconds.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        self._set_valid(False)
        deadline = Deadline(self.timeout, self._clock)
        while True:
            info = self.read()
            if info.holder != self.holder:
                return
            try:
                self.client.set(self.path, encode_lease(None, info.epoch, self.holder),
                                info.version)
                return
            except (VersionConflict, NotFound):
                self._check_deadline(deadline, "release")

    def hand_over(self, to: str) -> int:
        """Give a lease this holder holds directly to ``to``; return the new epoch.

        Used at the end of a live migration: the VM already runs on ``to``, so
        the lease must move without a moment in which it is free. Repeating a
        hand-over whose reply was lost returns the same epoch.

        :raises Conflict: this holder does not hold the lease.
        :raises LockTimeout: the lease kept changing for :attr:`timeout` seconds.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        to = check_id(to, "to")
        deadline = Deadline(self.timeout, self._clock)
        while True:
            info = self.read()
            if info.holder == to and info.changed_by == self.holder:
                self._set_valid(False)
                return info.epoch  # our own hand-over, repeated or with a lost reply
            if info.holder != self.holder:
                raise Conflict(f"lease {self.path} is held by {info.holder or 'nobody'},"
                               f" not by {self.holder}: cannot hand it over")
            epoch = info.epoch + 1
            try:
                self.client.set(self.path, encode_lease(to, epoch, self.holder), info.version)
            except (VersionConflict, NotFound):
                self._check_deadline(deadline, "hand over")
                continue
            self._set_valid(False)
            return epoch

    def break_(self, fenced_holder: str) -> int:
        """Free a lease held by ``fenced_holder`` and return the new epoch (old + 1).

        Only call this after ``fenced_holder`` was proved off (fenced): it is
        the one way a lease leaves a holder that did not release it. Repeating
        a break this handle already made returns the same epoch.

        :raises Conflict: the lease is held by someone else, or free and not
            broken by us from ``fenced_holder``.
        :raises LockTimeout: the lease kept changing for :attr:`timeout` seconds.
        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        fenced_holder = check_id(fenced_holder, "fenced_holder")
        deadline = Deadline(self.timeout, self._clock)
        while True:
            info = self.read()
            if (info.holder is None and info.broken_from == fenced_holder
                    and info.changed_by == self.holder):
                return info.epoch  # our own break, repeated or with a lost reply
            if info.holder != fenced_holder:
                raise Conflict(f"lease {self.path} is held by {info.holder or 'nobody'},"
                               f" not by {fenced_holder}: not broken")
            epoch = info.epoch + 1
            data = encode_lease(None, epoch, self.holder, broken_from=fenced_holder)
            try:
                self.client.set(self.path, data, info.version)
            except (VersionConflict, NotFound):
                self._check_deadline(deadline, "break")
                continue
            if fenced_holder == self.holder:
                self._set_valid(False)
            return epoch

    def _check_deadline(self, deadline: Deadline, what: str) -> None:
        if deadline.expired():
            raise LockTimeout(f"lease {self.path}: {what} kept losing races for"
                              f" {deadline.seconds:g}s")

    def __repr__(self) -> str:
        return f"RunLease({self.path!r}, {self.holder!r}, valid={self.valid})"
