"""Console tails are bounded and published only on change."""

from __future__ import annotations

from pathlib import Path

from pvc_core.console import ConsoleLogWatcher, tail_lines


def test_tail_of_missing_empty_and_short_files(tmp_path: Path) -> None:
    assert tail_lines(str(tmp_path / "none"), 5) == []
    (tmp_path / "empty").write_text("")
    assert tail_lines(str(tmp_path / "empty"), 5) == []
    (tmp_path / "short").write_text("a\nb\nc")
    assert tail_lines(str(tmp_path / "short"), 5) == ["a", "b", "c"]
    assert tail_lines(str(tmp_path / "short"), 2) == ["b", "c"]
    assert tail_lines(str(tmp_path / "short"), 0) == []


def test_tail_of_a_large_file_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("".join(f"line {i}\n" for i in range(200_000)))
    assert tail_lines(str(big), 3) == ["line 199997", "line 199998", "line 199999"]
    assert len(tail_lines(str(big), 10_000_000, max_bytes=64 * 1024)) < 10_000


def test_watcher_publishes_only_when_the_file_changes(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    published: list[str] = []
    watcher = ConsoleLogWatcher(str(log), 2, published.append)
    assert watcher.poll() is True and published == [""]
    assert watcher.poll() is False
    log.write_text("boot\ntick 1\ntick 2\n")
    assert watcher.poll() is True and published[-1] == "tick 1\ntick 2"
    assert watcher.poll() is False and len(published) == 2
    with log.open("ab") as fh:
        fh.write(b"tick 3\xff\n")
    assert watcher.poll() is True and published[-1] == "tick 2\ntick 3\ufffd"
