"""Benchmarks follow the convention: one JSON object on the last line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pvc_local.zookeeper import ZooKeeperServer

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_store_list_prints_result_json(zk_server: ZooKeeperServer) -> None:
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, str(BENCH / "store_list.py"), "--vms", "20", "--runs", "2",
         "--zk-hosts", zk_server.hosts],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["name"] == "store_list"
    assert result["seconds"] > 0 and result["floor_seconds"] > 0
    assert result["runs"] == 2 and result["params"] == {"vms": 20}
