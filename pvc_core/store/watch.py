"""Watches that re-arm themselves and only *notify* (they never do the work).

kazoo 2.11 has no persistent (``AddWatch``) watches, so a watch here is a
one-shot ZooKeeper watch re-armed from its own callback with a non-blocking
async request. Callbacks run in kazoo's event thread: they must only set
events or enqueue work. After a lost session every watch is re-armed
(:meth:`VmWatcher.rearm`), and the daemons' periodic resync covers anything
missed in between, so a lost notification delays work, never loses it.

:class:`VmWatcher` follows every VM: one children watch on the VMs directory
plus a data watch on each VM's ``state`` and ``placement`` znodes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kazoo.protocol.states import EventType

from pvc_core.keyspace import Keyspace
from pvc_core.store.zk import ZkClient

log = logging.getLogger("pvc.store.watch")


class ZnodeWatch:
    """Calls ``callback(path)`` whenever the znode is created, changed or deleted."""

    def __init__(self, zk: ZkClient, path: str, callback: Callable[[str], None]) -> None:
        self.zk = zk
        self.path = path
        self.callback = callback
        self._cancelled = threading.Event()

    def arm(self) -> None:
        if not self._cancelled.is_set():
            self.zk.kazoo.exists_async(self.path, watch=self._fired)

    def cancel(self) -> None:
        self._cancelled.set()

    def _fired(self, event: Any) -> None:
        if self._cancelled.is_set():
            return
        try:
            self.callback(self.path)
        finally:
            self.arm()


class VmWatcher:
    """Notifies ``on_change(uuid)`` when a VM appears, disappears, or its state
    or placement changes."""

    def __init__(self, zk: ZkClient, keyspace: Keyspace,
                 on_change: Callable[[str], None]) -> None:
        self.zk = zk
        self.ks = keyspace
        self.on_change = on_change
        self._watches: dict[str, list[ZnodeWatch]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def start(self) -> None:
        """Arm the watches (waits for the first listing, within the op timeout).

        The VMs present now are not reported as changes: the caller reads
        them all anyway (its resync); only what happens afterwards is. Their
        data watches are armed on a background thread so a node with
        thousands of VMs reaches ``run`` sooner; a change made before its
        watch is armed is picked up by the caller's periodic resync.
        """
        kids = self.zk.call(lambda: self.zk.kazoo.get_children_async(
            self.ks.vms(), watch=self._children_fired), self.ks.vms())
        threading.Thread(target=self._sync, args=(list(kids), False), daemon=True,
                         name="vm-watch-arm").start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            for watches in self._watches.values():
                for w in watches:
                    w.cancel()
            self._watches.clear()

    def rearm(self) -> None:
        """Re-arm everything (after a lost session)."""
        with self._lock:
            for watches in self._watches.values():
                for w in watches:
                    w.cancel()
            self._watches.clear()
        if not self._stopped.is_set():
            self.zk.kazoo.get_children_async(self.ks.vms(), watch=self._children_fired
                                             ).rawlink(self._listed)

    def _notifier(self, uuid: str) -> Callable[[str], None]:
        return lambda _path: self.on_change(uuid)

    def _children_fired(self, event: Any) -> None:
        if self._stopped.is_set() or event.type == EventType.NONE:
            return
        self.zk.kazoo.get_children_async(self.ks.vms(), watch=self._children_fired
                                         ).rawlink(self._listed)

    def _listed(self, result: Any) -> None:
        try:
            kids = result.get_nowait()
        except Exception as exc:  # noqa: BLE001 - the resync covers a missed listing
            log.debug("listing VMs for watches failed: %s", exc)
            return
        self._sync(list(kids))

    def _sync(self, uuids: list[str], notify: bool = True) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            current = set(uuids)
            gone = set(self._watches) - current
            new = current - set(self._watches)
            for uuid in gone:
                for w in self._watches.pop(uuid):
                    w.cancel()
            for uuid in new:
                notifier = self._notifier(uuid)
                watches = [ZnodeWatch(self.zk, p, notifier)
                           for p in (self.ks.vm_state(uuid), self.ks.vm_placement(uuid))]
                self._watches[uuid] = watches
                for w in watches:
                    w.arm()
        if notify:
            for uuid in sorted(gone | new):
                self.on_change(uuid)
