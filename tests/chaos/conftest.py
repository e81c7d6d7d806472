"""Chaos-suite plumbing: the seed in the header, the report in the summary, the skips.

The seed comes from ``PVC_CHAOS_SEED`` (default :data:`DEFAULT_SEED`) and
is printed in pytest's header and again in the chaos report at the end of
the run, so any run can be repeated exactly: ``PVC_CHAOS_SEED=N tox -e
chaos``. The suite is skipped, with the reason printed (``pytest -rs``),
when ipmitool or Java (ZooKeeper) is missing.
"""

from __future__ import annotations

import os
import shutil

import pytest

DEFAULT_SEED = 20261121

#: Lines the tests add for the terminal summary (see :func:`report`).
REPORT: list[str] = []


def seed() -> int:
    """The run's seed: ``PVC_CHAOS_SEED`` or the fixed default."""
    text = os.environ.get("PVC_CHAOS_SEED", "").strip()
    try:
        return int(text) if text else DEFAULT_SEED
    except ValueError:
        raise pytest.UsageError(f"PVC_CHAOS_SEED must be an integer, got {text!r}") from None


def report(line: str) -> None:
    """Add a line to the chaos report (printed at the end of the run, and now)."""
    REPORT.append(line)
    print(line, flush=True)


def missing_tools() -> str | None:
    """Why the chaos suite cannot run here, or None."""
    if shutil.which("ipmitool") is None:
        return "ipmitool is not installed (scripts/install-deps installs it): fencing is real IPMI"
    if shutil.which("java") is None:
        return "java is not installed (scripts/install-deps installs ZooKeeper and Java)"
    return None


def pytest_report_header() -> list[str]:
    return [f"chaos seed: {seed()} (set PVC_CHAOS_SEED to change it)"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT:
        return
    terminalreporter.section("chaos report")
    for line in REPORT:
        terminalreporter.write_line(line)
