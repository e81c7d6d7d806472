"""Connection-state flags shared by the coordination recipes."""

from __future__ import annotations

import threading
from typing import Any

from pvc_core.store.zk import ZkClient


class SessionFlags:
    """What a recipe knows about its client's session, fed by a state listener.

    The listener runs in kazoo's thread and only sets events: ``suspended``
    while the connection is down, ``lost`` once the session expired, and
    ``wake`` on every change (watches set it too) so a waiting recipe re-checks.
    :meth:`listen` and :meth:`unlisten` are idempotent.
    """

    def __init__(self, client: ZkClient) -> None:
        self._client = client
        self.suspended = threading.Event()
        self.lost = threading.Event()
        self.wake = threading.Event()
        self._listening = False
        self._mutex = threading.Lock()

    def on_state(self, state: str) -> None:
        if state == "SUSPENDED":
            self.suspended.set()
        elif state == "CONNECTED":
            self.suspended.clear()
        elif state == "LOST":
            self.lost.set()
        self.wake.set()

    def on_watch(self, _event: Any) -> None:
        self.wake.set()

    def listen(self) -> None:
        with self._mutex:
            if not self._listening:
                self._client.add_listener(self.on_state)
                self._listening = True

    def unlisten(self) -> None:
        with self._mutex:
            if self._listening:
                self._client.remove_listener(self.on_state)
                self._listening = False
