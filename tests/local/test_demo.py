"""The demo runs end to end on a fresh local cluster and says what it showed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pvc_local.cluster import LocalCluster
from pvc_local.demo import run_demo

pytestmark = pytest.mark.zookeeper


def test_demo_end_to_end(tmp_path: Path) -> None:
    if shutil.which("ipmitool") is None:
        pytest.skip("ipmitool is not installed (scripts/install-deps): no BMC scene")
    lines: list[str] = []
    cluster = LocalCluster(tmp_path / "demo")
    try:
        assert run_demo(cluster, hypervisor="fake", out=lines.append) == 0, "\n".join(lines)
    finally:
        cluster.down(timeout=15)
    text = "\n".join(lines)
    for marker in ("draining node1", "job flush: succeeded", "job ready: succeeded",
                   "fenced", "proved off by ipmi", "vm-recovery", "demo finished"):
        assert marker in text, f"{marker!r} missing from the demo output:\n{text}"
    assert not cluster.is_up()  # the demo stopped the cluster it started
