"""The daemon benchmarks run and print their JSON line (small sizes; no timing asserted)."""

from __future__ import annotations

import json
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
