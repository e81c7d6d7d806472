"""The daemon benchmarks run and print their JSON line (small sizes; no timing asserted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = pytest.mark.zookeeper


@pytest.mark.parametrize("script, args, params", [
    ("startup.py", ["--vms", "40", "--running", "20", "--runs", "1"],
     {"vms": 40, "running": 20}),
    ("drain.py", ["--vms", "10", "--runs", "1"], {"vms": 10, "nodes": 4}),
])
def test_benchmark_prints_result(script: str, args: list[str], params: dict) -> None:  # type: ignore[type-arg]
    proc = subprocess.run([sys.executable, str(BENCH / script), *args],  # noqa: S603
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["name"] == script.removesuffix(".py")
    assert result["seconds"] > 0 and result["floor_seconds"] > 0
    assert {k: result["params"][k] for k in params} == params


@pytest.mark.skipif(shutil.which("ipmitool") is None,
                    reason="ipmitool is not installed (scripts/install-deps installs it)")
def test_fence_recovery_benchmark_prints_result() -> None:
    """Short timers (keepalive 1 s, session 4 s): about 10 s, a fence over IPMI included."""
    args = ["--vms", "2", "--keepalive", "1", "--session-timeout", "4", "--runs", "1"]
    proc = subprocess.run([sys.executable, str(BENCH / "fence_recovery.py"), *args],  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["name"] == "fence_recovery"
    assert {k: result["params"][k] for k in ("vms", "keepalive_interval", "session_timeout")} \
        == {"vms": 2, "keepalive_interval": 1.0, "session_timeout": 4.0}
    assert result["seconds"] >= result["floor_seconds"] > 0
    phases = result["breakdown"]
    assert set(phases) == {"session_expired", "suspect", "fenced", "placed", "all_running"}
    assert phases["suspect"] <= phases["fenced"] <= phases["placed"] <= phases["all_running"]
