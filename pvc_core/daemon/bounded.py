"""Run a call with a deadline in its own thread, skipping it while it still hangs.

The keepalive must never wait on a slow collector: each collector runs in a
daemon thread and the caller waits at most its deadline. A collector that
overran is not started again until its previous call returned, so a hung
driver costs one thread, not one per keepalive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pvc_core.errors import DriverTimeout

T = TypeVar("T")


class BoundedCaller:
    """Calls named functions with a deadline; remembers which ones still hang."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def busy(self) -> list[str]:
        with self._lock:
            return sorted(self._busy)

    def call(self, name: str, fn: Callable[[], T], timeout: float) -> T:
        """Return ``fn()`` or raise DriverTimeout after ``timeout`` seconds.

        Raises DriverTimeout at once if the previous call of ``name`` is still
        running. Exceptions of ``fn`` are re-raised in the caller.
        """
        with self._lock:
            if name in self._busy:
                raise DriverTimeout(f"{name} is still running from an earlier call: skipped")
            self._busy.add(name)
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc
            finally:
                with self._lock:
                    self._busy.discard(name)
                done.set()

        threading.Thread(target=run, name=f"bounded-{name}", daemon=True).start()
        if not done.wait(timeout):
            self.log.warning("%s did not finish within %.1fs: skipped", name, timeout)
            raise DriverTimeout(f"{name} did not finish within {timeout:g}s")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]
