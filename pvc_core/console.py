"""Bounded tails of VM serial console logs, and a watcher that publishes them.

The node daemon keeps one :class:`ConsoleLogWatcher` per running VM that has
a console log file (``HypervisorDriver.console_log_path``) and calls
:meth:`ConsoleLogWatcher.poll` from its own loop; the watcher has no thread.
Reading is bounded: :func:`tail_lines` reads backwards from the end of the
file in blocks and never more than ``max_bytes``, however large the file is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: Bytes read per step when scanning backwards.
BLOCK_SIZE = 8192
#: Default cap on the bytes :func:`tail_lines` reads (a line longer than
#: this, e.g. binary garbage without newlines, is cut).
DEFAULT_MAX_BYTES = 1024 * 1024


def tail_lines(path: str | os.PathLike[str], n: int,
               max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """The last ``n`` lines of a text file, without reading all of it.

    Lines are split on ``\\n`` with a trailing ``\\r`` removed (serial
    consoles write ``\\r\\n``); a last line without a newline counts as a
    line; undecodable bytes become U+FFFD. At most ``max_bytes`` are read
    from the end; when that limit cuts the first line, its tail is kept
    (e.g. binary garbage without newlines still shows). A missing or
    unreadable file, or ``n <= 0``, gives ``[]``.
    """
    if n <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            pos, chunks, newlines = end, [], 0
            # One newline more than n is needed to know where line n starts;
            # a trailing newline at EOF does not start a line.
            while pos > 0 and end - pos < max_bytes and newlines <= n:
                step = min(BLOCK_SIZE, pos, max_bytes - (end - pos))
                pos -= step
                fh.seek(pos)
                chunk = fh.read(step)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except OSError:
        return []
    data = b"".join(reversed(chunks))
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    if pos > 0 and newlines > n and lines:
        lines.pop(0)  # the scan started mid-line, and enough whole lines follow
    return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in lines[-n:]]


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class ConsoleLogWatcher:
    """Publish the last ``lines`` lines of a console log whenever they change.

    :meth:`poll` is cheap when nothing happened (one ``stat``): the tail is
    read only when the file's (size, mtime, inode) changed, and published
    only when the tail text differs from what was last published. A file
    that disappears publishes an empty tail once. ``publish`` receives the
    lines joined with ``\\n``; when it raises, the exception propagates and
    the next poll tries again. Not thread-safe: poll from one thread.
    """

    def __init__(self, path: str | os.PathLike[str], lines: int,
                 publish: Callable[[str], None], *,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.lines = lines
        self.max_bytes = max_bytes
        self._publish = publish
        self._signature: tuple[int, int, int] | None = None
        self._published: str | None = None

    @property
    def last_published(self) -> str | None:
        """The text last published, None before the first publication."""
        return self._published

    def poll(self) -> bool:
        """Check the file; publish and return True when the tail changed."""
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        text = "\n".join(tail_lines(self.path, self.lines, self.max_bytes))
        if text == self._published:
            self._signature = signature
            return False
        self._publish(text)
        self._signature, self._published = signature, text
        return True
