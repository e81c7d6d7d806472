"""Daemon log lines: timestamped, levelled, naming node and subsystem; colour
only on a terminal (a pseudo-terminal here) unless configured otherwise."""

from __future__ import annotations

import io
import logging
import os
import re
import select
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from pvc_core.daemon import logs

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\x1b\[[0-9;]*m)?WARNING(\x1b\[0m)? +"
                  r"node7 \[keepalive\] collector host did not finish$")
ESC = "\x1b["


@pytest.fixture(autouse=True)
def pvc_logger() -> Iterator[None]:
    """Put the ``pvc`` logger back as it was (setup changes it for the process)."""
    root = logging.getLogger("pvc")
    saved = (list(root.handlers), root.level, root.propagate)
    yield
    for h in list(root.handlers):
        if h not in saved[0]:
            root.removeHandler(h)
            h.close()
    root.level, root.propagate = saved[1], saved[2]


@pytest.fixture
def terminal() -> Iterator[tuple[IO[str], int]]:
    """A pseudo-terminal: the stream the daemon writes to, and the side to read it."""
    leader, follower = os.openpty()
    stream = os.fdopen(follower, "w", encoding="utf-8")
    yield stream, leader
    stream.close()
    os.close(leader)


def read_terminal(fd: int) -> str:
    out = b""
    while select.select([fd], [], [], 5)[0]:
        out += os.read(fd, 4096)
        if out.endswith(b"\n"):
            break
    return out.decode().replace("\r\n", "\n").rstrip("\n")


def emit() -> None:
    logs.logger("keepalive", "node7").warning("collector %s did not finish", "host")
    logs.flush()


def test_colour_on_a_terminal(terminal: tuple[IO[str], int]) -> None:
    stream, fd = terminal
    assert stream.isatty()
    logs.setup("info", "auto", stream=stream)
    emit()
    line = read_terminal(fd)
    assert LINE.match(line), line
    assert "\x1b[33mWARNING" in line and line.count(ESC) == 2  # yellow, then reset


def test_no_colour_off_a_terminal() -> None:
    stream = io.StringIO()
    assert not stream.isatty()
    logs.setup("info", "auto", stream=stream)
    emit()
    line = stream.getvalue().rstrip("\n")
    assert LINE.match(line), line
    assert ESC not in line


def test_colour_never_on_a_terminal_always_off_one(terminal: tuple[IO[str], int]) -> None:
    stream, fd = terminal
    logs.setup("info", "never", stream=stream)
    emit()
    assert ESC not in read_terminal(fd)
    off = io.StringIO()
    logs.setup("info", "always", stream=off)
    emit()
    assert "\x1b[33mWARNING" in off.getvalue()


def test_a_log_file_has_no_colour(tmp_path: Path) -> None:
    path = tmp_path / "pvcnoded.log"
    logs.setup("info", "auto", file=str(path))
    emit()
    line = path.read_text().rstrip("\n")
    assert LINE.match(line), line
    assert ESC not in line


def test_levels_below_the_configured_one_are_dropped() -> None:
    stream = io.StringIO()
    logs.setup("warning", "auto", stream=stream)
    logs.logger("vm", "node7").info("vm1 started")
    logs.logger("fence", "node7").error("fencing node2 failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("ERROR   node7 [fence] fencing node2 failed")
