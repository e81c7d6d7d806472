"""``bench/cli_start.py`` runs and prints its JSON line (small sizes; no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pvc_local.cluster import LocalCluster

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_cli_start_benchmark_prints_result(cluster: LocalCluster) -> None:
    """On the suite's ZooKeeper (a private root, removed after), 3 runs, 5 VMs."""
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, str(BENCH / "cli_start.py"), "--runs", "3", "--vms", "5",
         "--zk-hosts", cluster.zk_hosts],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["name"] == "cli_start" and result["runs"] == 3
    assert len(result["samples"]) == 3 and len(result["params"]["list_samples"]) == 3
    assert result["seconds"] > 0 and result["floor_seconds"] > 0
    params = result["params"]
    assert params["vms"] == 5
    assert params["help_ms"] > 0 and params["list_ms"] > 0 and params["floor_ms"] > 0
    assert abs(params["help_ms"] - result["seconds"] * 1000) <= 0.1  # seconds: the help
