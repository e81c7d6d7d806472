"""Bounded tails of console log files, published only when they change."""

from __future__ import annotations

import os
from collections.abc import Callable

_BLOCK = 64 * 1024


def tail_lines(path: str, count: int, max_bytes: int = 4 * 1024 * 1024) -> list[str]:
    """The last ``count`` lines of a file, reading backwards from its end.

    Reads at most ``max_bytes`` however long the lines are; a missing file
    gives ``[]``; undecodable bytes are replaced.
    """
    if count <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            pos, data = end, b""
            while pos > 0 and data.count(b"\n") <= count and end - pos < max_bytes:
                step = min(_BLOCK, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.decode(errors="replace").splitlines()
    if pos > 0 and lines:
        lines = lines[1:]  # the first line may be cut
    return lines[-count:]


class ConsoleLogWatcher:
    """Publishes the tail of one log file when the file changed since the last poll."""

    def __init__(self, path: str, lines: int, publish: Callable[[str], None]) -> None:
        self.path = path
        self.lines = lines
        self.publish = publish
        self._seen: tuple[int, int, int] | None = None

    def poll(self) -> bool:
        """Check the file; publish and return True when it changed."""
        try:
            st = os.stat(self.path)
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            key = (0, 0, 0)
        if key == self._seen:
            return False
        self._seen = key
        self.publish("\n".join(tail_lines(self.path, self.lines)))
        return True
