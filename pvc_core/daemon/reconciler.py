"""A work queue that reconciles VMs on a bounded pool, one step per VM at a time.

Watches and periodic resyncs :meth:`Reconciler.enqueue` VM UUIDs; a
dispatcher thread hands each to the worker pool unless that VM is already
being worked on, in which case it is marked dirty and run again right after.
A step may ask to be looked at again later (backoff); those requests wait in
a timer heap. No step runs inside a ZooKeeper callback.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pvc_core.clock import Clock


class Reconciler:
    """Serializes work per VM, runs different VMs in parallel (``workers``)."""

    def __init__(self, work: Callable[[str], float | None], workers: int, clock: Clock,
                 log: logging.Logger) -> None:
        self._work = work
        self._clock = clock
        self.log = log
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile")
        self._cond = threading.Condition()
        self._ready: list[str] = []
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: list[tuple[float, str]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._dispatch, name="reconcile-dispatch",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def enqueue(self, uuid: str, delay: float = 0.0) -> None:
        with self._cond:
            if delay > 0:
                heapq.heappush(self._timers, (self._clock.monotonic() + delay, uuid))
            elif uuid in self._running:
                self._dirty.add(uuid)
            elif uuid not in self._queued:
                self._queued.add(uuid)
                self._ready.append(uuid)
            self._cond.notify_all()

    def idle(self) -> bool:
        """True when nothing is queued or running (timers may be pending)."""
        with self._cond:
            return not (self._ready or self._running or self._dirty)

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not (self._ready or self._running
                                                    or self._dirty), timeout)

    def stop(self, timeout: float) -> None:
        """Stop taking work; wait up to ``timeout`` for steps in flight."""
        with self._cond:
            self._stopping = True
            self._ready.clear()
            self._queued.clear()
            self._timers.clear()
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._running, timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = self._clock.monotonic()
                    while self._timers and self._timers[0][0] <= now:
                        _, uuid = heapq.heappop(self._timers)
                        if uuid not in self._queued and uuid not in self._running:
                            self._queued.add(uuid)
                            self._ready.append(uuid)
                        elif uuid in self._running:
                            self._dirty.add(uuid)
                    if self._ready:
                        break
                    wait = self._timers[0][0] - now if self._timers else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                uuid = self._ready.pop(0)
                self._queued.discard(uuid)
                self._running.add(uuid)
            self._pool.submit(self._run, uuid)

    def _run(self, uuid: str) -> None:
        delay: float | None = None
        try:
            delay = self._work(uuid)
        except Exception as exc:  # a step failing must not kill the worker
            self.log.error("reconciling %s failed: %s: %s", uuid, type(exc).__name__, exc,
                           exc_info=self.log.isEnabledFor(logging.DEBUG))
            delay = 5.0
        finally:
            with self._cond:
                self._running.discard(uuid)
                again = uuid in self._dirty
                self._dirty.discard(uuid)
                self._cond.notify_all()
        if again:
            self.enqueue(uuid)
        elif delay is not None:
            self.enqueue(uuid, delay)
