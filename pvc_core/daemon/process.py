"""Process-level plumbing shared by ``pvcnoded`` and the multi-node process."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


@contextmanager
def signals_for_main_thread() -> Iterator[None]:
    """Block SIGTERM/SIGINT while daemons start their threads.

    Threads inherit the signal mask, so every thread started inside this
    block (and every thread those start) leaves the stop signals to the main
    thread. Otherwise the kernel may deliver SIGTERM to a worker thread, and
    Python runs the handler only when the main thread next wakes up.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
