"""A job's bounded log (pure): the head is kept, the middle dropped and counted."""

from __future__ import annotations

from typing import Any

from pvc_core.daemon.joblog import append_line


def line(i: int) -> dict[str, Any]:
    return {"time": float(i), "message": f"line {i}"}


def fill(n: int, limit: int, head: int) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = []
    for i in range(n):
        log = append_line(log, line(i), limit, head)
    return log


def test_under_the_limit_every_line_is_kept_in_order() -> None:
    assert fill(10, 10, 3) == [line(i) for i in range(10)]


def test_over_the_limit_the_head_and_the_newest_lines_are_kept() -> None:
    log = fill(11, 10, 3)
    assert len(log) == 10
    assert log[:3] == [line(0), line(1), line(2)]
    assert log[3] == {"time": 5.0, "message": "... 2 lines dropped", "dropped": 2}
    assert log[4:] == [line(i) for i in range(5, 11)]


def test_the_dropped_count_accumulates() -> None:
    log = fill(100, 10, 3)
    assert len(log) == 10
    assert [entry["message"] for entry in log] == (
        ["line 0", "line 1", "line 2", "... 91 lines dropped"]
        + [f"line {i}" for i in range(94, 100)])
    assert 3 + log[3]["dropped"] + 6 == 100  # every line is kept or counted
