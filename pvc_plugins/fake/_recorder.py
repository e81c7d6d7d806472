"""A thread-safe record of the calls made to a fake driver."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

#: Calls kept per driver: a fake that runs in a long-lived daemon must not grow forever.
MAX_CALLS = 10_000


class CallRecorder:
    """Mixin: ``calls`` lists the last ``MAX_CALLS`` ``(method, args)`` tuples in call order."""

    def __init__(self) -> None:
        self._calls_lock = threading.Lock()
        self._calls: deque[tuple[str, tuple[Any, ...]]] = deque(maxlen=MAX_CALLS)

    def _record(self, method: str, *args: Any) -> None:
        with self._calls_lock:
            self._calls.append((method, args))

    @property
    def calls(self) -> list[tuple[str, tuple[Any, ...]]]:
        """A copy of the calls so far."""
        with self._calls_lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[tuple[Any, ...]]:
        """The argument tuples of every call to ``method``."""
        return [args for name, args in self.calls if name == method]

    def clear_calls(self) -> None:
        """Forget the calls recorded so far."""
        with self._calls_lock:
            self._calls.clear()
