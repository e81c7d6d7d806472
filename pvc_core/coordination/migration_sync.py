"""The per-VM migration sync lock: the source's step, then the target's.

A migration has a side on each of two nodes. Both take part through one
exclusive :class:`~pvc_core.coordination.lock.Lock` per VM
(``Keyspace.migration_lock(uuid)``), whose queue orders their steps:

1. The **source** holds the lock for its whole step: stop the guest (or move
   it live), give up the run-lease, mark the VM started.
2. The **target** joins the queue *behind* the source, so the lock passes
   from the source to the target exactly when the source's step ends, or
   when the source's session does (its contender is ephemeral). The target
   then does its step holding the lock: take the lease, start the guest.

The lock orders the steps; the run-lease still decides whether the target
may start (a source that died mid-step still holds the lease until it is
fenced).

One race is left: both daemons see the request at the same moment, and the
target may look before the source joined the queue. :meth:`MigrationSync.wait_for`
waits on watches (no polling) until a given node is in the queue, a given
znode (the VM's run-lease) changes, or a deadline passes.
"""

from __future__ import annotations

import threading
from typing import Any

from pvc_core.clock import Clock, Deadline, SystemClock
from pvc_core.coordination.lock import Lock, sort_contenders
from pvc_core.errors import NotFound
from pvc_core.store.zk import ZkClient


class MigrationSync:
    """One node's handle on one VM's migration sync lock.

    :param client: the ZooKeeper session; every call is bounded by its ``op_timeout``.
    :param path: the lock directory (``Keyspace.migration_lock(uuid)``), created when missing.
    :param identifier: this node's name, as the other side sees it in the queue.
    :param clock: measures deadlines (default: the system clock).
    """

    def __init__(self, client: ZkClient, path: str, identifier: str, *,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.path = path.rstrip("/")
        self._clock: Clock = clock or SystemClock()
        #: The exclusive lock both sides take (acquire, release, cancel).
        self.lock = Lock(client, self.path, identifier, clock=self._clock)

    def contenders(self) -> list[str]:
        """Identifiers in queue order, the holder first (empty when nobody contends).

        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        return self.lock.contenders()

    def wait_for(self, who: str, timeout: float, also: str | None = None,
                 seen_version: int = -1) -> bool:
        """Wait until ``who`` is in the lock's queue; True as soon as it is.

        Returns False at the deadline, or as soon as the znode ``also`` is
        not at ``seen_version`` (the version the caller read; -1: missing)
        or is created, changed or deleted meanwhile: the caller then looks
        again at what it waits for. Nothing is created in the queue: this
        only watches.

        :raises StoreUnavailable: ZooKeeper did not answer.
        """
        deadline = Deadline(timeout, self._clock)
        wake = threading.Event()
        also_changed = threading.Event()

        def on_also(_event: Any) -> None:
            also_changed.set()
            wake.set()

        armed = False
        while True:
            wake.clear()
            if self._listed_with_watch(who, wake):
                return True
            if also is not None and not armed:  # only when there is something to wait for
                armed = True
                stat = self.client.call(
                    lambda: self.client.kazoo.exists_async(also, watch=on_also), also)
                if (-1 if stat is None else stat.version) != seen_version:
                    return False
            if also_changed.is_set() or deadline.expired():
                return False
            if not wake.wait(deadline.remaining()):
                return False

    def _listed_with_watch(self, who: str, wake: threading.Event) -> bool:
        """Whether ``who`` contends now; a children watch sets ``wake`` on the next change."""
        def listing() -> Any:
            return self.client.kazoo.get_children_async(self.path,
                                                        watch=lambda _event: wake.set())
        try:
            kids = self.client.call(listing, self.path)
        except NotFound:  # nobody ever took this lock: create its directory and look again
            self.client.ensure_path(self.path)
            kids = self.client.call(listing, self.path)
        return any(c.identifier == who for c in sort_contenders(kids))
