"""Console-log tails: bounded reads, and a watcher that publishes only changes."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from pvc_core import console
from pvc_core.console import ConsoleLogWatcher, tail_lines


@pytest.mark.parametrize(("data", "n", "expected"), [
    (b"", 5, []),
    (b"one\n", 5, ["one"]),
    (b"one\ntwo\nthree\n", 2, ["two", "three"]),
    (b"one\ntwo\nthree", 2, ["two", "three"]),  # no trailing newline
    (b"a\r\nb\r\n", 5, ["a", "b"]),  # serial consoles write CRLF
    (b"\n\n\n", 2, ["", ""]),
    (b"ok\n\xff\xfe garbage \x00\n", 5, ["ok", "\ufffd\ufffd garbage \x00"]),
    (b"one\ntwo\n", 0, []),
])
def test_tail_lines(tmp_path: Path, data: bytes, n: int, expected: list[str]) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(data)
    assert tail_lines(path, n) == expected


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert tail_lines(tmp_path / "nope.log", 10) == []


class _CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    total = 0

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        _CountingFile.total += len(data)
        return data


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[_CountingFile]:
    _CountingFile.total = 0
    monkeypatch.setattr(console, "open", lambda path, mode: _CountingFile(path, "r"),
                        raising=False)
    return _CountingFile


def test_a_1mb_log_tail_is_bounded(tmp_path: Path, counted: Any) -> None:
    path = tmp_path / "big.log"
    lines = [f"line {i:06d} " + "x" * 80 for i in range(12_000)]  # ~1.1 MB
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 1024 * 1024
    assert tail_lines(path, 50) == lines[-50:]
    assert counted.total <= 2 * console.BLOCK_SIZE


def test_a_huge_line_is_cut_at_max_bytes(tmp_path: Path, counted: Any) -> None:
    path = tmp_path / "garbage.log"
    path.write_bytes(os.urandom(1024 * 1024))
    (line,) = tail_lines(path, 10, max_bytes=4096)[-1:]
    assert counted.total <= 4096
    assert len(line) <= 4096


def test_watcher_publishes_only_changes(tmp_path: Path) -> None:
    path = tmp_path / "vm.log"
    published: list[str] = []
    watcher = ConsoleLogWatcher(path, 3, published.append)
    assert watcher.poll() is False  # no file yet: nothing to say
    with open(path, "a") as fh:
        for i in range(5):
            fh.write(f"tick {i}\n")
    assert watcher.poll() is True
    assert published == ["tick 2\ntick 3\ntick 4"]
    assert watcher.poll() is False  # unchanged
    os.utime(path, ns=(1, 1))  # metadata changed, tail did not
    assert watcher.poll() is False
    with open(path, "a") as fh:
        fh.write("tick 5\n")
    assert watcher.poll() is True
    assert published[-1] == "tick 3\ntick 4\ntick 5"
    assert watcher.last_published == published[-1]
    path.unlink()
    assert watcher.poll() is True
    assert published[-1] == ""
    assert watcher.poll() is False
    assert len(published) == 3


def test_watcher_retries_a_failed_publication(tmp_path: Path) -> None:
    path = tmp_path / "vm.log"
    path.write_text("BOOTED-OK\n")
    calls: list[str] = []

    def publish(text: str) -> None:
        calls.append(text)
        if len(calls) == 1:
            raise ConnectionError("ZooKeeper is away")

    watcher = ConsoleLogWatcher(path, 10, publish)
    with pytest.raises(ConnectionError):
        watcher.poll()
    assert watcher.poll() is True
    assert calls == ["BOOTED-OK", "BOOTED-OK"]
