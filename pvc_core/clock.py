"""Clocks, injected into everything that measures time.

Liveness is always judged on the *observer's* monotonic clock; wall time is
only ever used for display and log records, never compared across hosts.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the core needs from a clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (not comparable across hosts)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for display and records only."""
        ...


class SystemClock:
    """The real clocks of this host."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class FakeClock:
    """A manually advanced clock for unit tests of time-dependent logic."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._mono = start
        self._wall = wall_start

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def wall(self) -> float:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (must be >= 0)."""
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._mono += seconds
            self._wall += seconds


class Deadline:
    """A point in time on a monotonic clock; ``remaining()`` never goes below 0."""

    def __init__(self, seconds: float, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self.seconds = seconds
        self._end = self._clock.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0
