"""Crash-restart bookkeeping: bounded retries with exponential backoff."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pvc_core.clock import Clock


@dataclass
class _Entry:
    attempts: int = 0
    running_since: float | None = None
    not_before: float = 0.0


class RestartTracker:
    """Remembers which VMs this node started, and how often they crashed.

    A VM this node started that is found not running while it should run
    has crashed: :meth:`crashed` counts it and says how long to wait before
    the next start (``backoff * 2**(n-1)``), or that the tries are used up.
    A VM that ran for ``reset_after`` seconds starts counting from zero.
    """

    def __init__(self, clock: Clock, max_tries: int, backoff: float,
                 reset_after: float) -> None:
        self.clock = clock
        self.max_tries = max_tries
        self.backoff = backoff
        self.reset_after = reset_after
        self._vms: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def started(self, uuid: str) -> None:
        with self._lock:
            self._vms.setdefault(uuid, _Entry()).running_since = self.clock.monotonic()

    def stopped(self, uuid: str) -> None:
        """This node stopped the VM on purpose: forget it."""
        with self._lock:
            self._vms.pop(uuid, None)

    def expected_running(self, uuid: str) -> bool:
        with self._lock:
            entry = self._vms.get(uuid)
            return bool(entry and entry.running_since is not None)

    def wait_before_start(self, uuid: str) -> float:
        """Seconds to wait before the next start of this VM (0: go ahead)."""
        with self._lock:
            entry = self._vms.get(uuid)
            return max(0.0, entry.not_before - self.clock.monotonic()) if entry else 0.0

    def attempts(self, uuid: str) -> int:
        with self._lock:
            entry = self._vms.get(uuid)
            return entry.attempts if entry else 0

    def crashed(self, uuid: str) -> float | None:
        """Count a crash; return the backoff before the next start, or None when
        ``max_tries`` restarts were already made (the VM should fail)."""
        now = self.clock.monotonic()
        with self._lock:
            entry = self._vms.setdefault(uuid, _Entry())
            if entry.running_since is not None and now - entry.running_since >= self.reset_after:
                entry.attempts = 0
            entry.running_since = None
            entry.attempts += 1
            if entry.attempts > self.max_tries:
                return None
            delay = float(self.backoff * 2 ** (entry.attempts - 1))
            entry.not_before = now + delay
            return delay
