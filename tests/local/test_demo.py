"""The demo runs end to end on a fresh local cluster, driving it with the ``pvc`` CLI,
and says what it showed; a failing ``pvc`` command or a cluster without the API
makes it fail with one line."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc_local import demo
from pvc_local.cluster import LocalCluster
from pvc_local.demo import run_demo

#: A ``pvc`` that fails the first flush (with a one-line error) and runs the real one otherwise.
FAILING_PVC = """\
import sys
from pvc_cli.app import main
if sys.argv[1:4] == ["node", "flush", "node1"] and "--wait" in sys.argv:
    print("job 42 flush node1: 0/3 queued", file=sys.stderr)
    print("Error: job 42 flush node1 failed: injected by the test", file=sys.stderr)
    sys.exit(1)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.zookeeper
def test_demo_end_to_end(tmp_path: Path, client_config: Path) -> None:
    if shutil.which("ipmitool") is None:
        pytest.skip("ipmitool is not installed (scripts/install-deps): no BMC scene")
    lines: list[str] = []
    cluster = LocalCluster(tmp_path / "demo")
    try:
        assert run_demo(cluster, hypervisor="fake", out=lines.append) == 0, "\n".join(lines)
    finally:
        cluster.down(timeout=15)
    text = "\n".join(lines)
    for marker in ("$ pvc vm define demo0.xml --start", "$ pvc vm list\n",
                   "$ pvc node flush node1 --dry-run", "draining node1",
                   "$ pvc node flush node1 --wait", "$ pvc node ready node1 --wait",
                   "$ pvc decision list --node node2 --since ", "fenced",
                   "proved off by ipmi", "vm-recovery", "$ pvc node list",
                   "$ pvc node ready node2 --wait", "$ pvc cluster status", "demo finished"):
        assert marker in text, f"{marker!r} missing from the demo output:\n{text}"
    # the --wait progress of pvc (its stderr) is shown, and the jobs succeeded
    for job in ("flush node1", "ready node1", "ready node2"):
        assert re.search(rf"^job \w+ {job}: \d+/\d+ succeeded$", text, re.M), text
    # every command shown is a pvc command; the output shows real pvc tables
    assert {line.split()[1] for line in lines if line.startswith("$ ")} == {"pvc"}
    assert "| demo5 | start |" in text
    assert not cluster.is_up()  # the demo stopped the cluster it started
    assert not (cluster.directory / demo.WORK_DIR).exists()  # its client file is gone
    assert not client_config.exists()  # the user's connections file was never touched


@pytest.mark.zookeeper
def test_a_failing_pvc_command_fails_the_demo(tmp_path: Path) -> None:
    fake = tmp_path / "failing_pvc.py"
    fake.write_text(FAILING_PVC, encoding="utf-8")
    lines: list[str] = []
    cluster = LocalCluster(tmp_path / "demo")
    try:
        code = run_demo(cluster, hypervisor="fake", out=lines.append,
                        pvc=[sys.executable, str(fake)])
    finally:
        cluster.down(timeout=15)
    text = "\n".join(lines)
    assert code == 1, text
    assert "$ pvc vm list" in text  # the real pvc ran up to the flush
    assert lines.index("$ pvc node flush node1 --wait") > 0
    assert "job 42 flush node1: 0/3 queued" in lines  # its stderr is shown ...
    # ... and its one-line error is the demo's
    assert lines[-2:] == ["demo: pvc node flush node1 --wait: "
                          "Error: job 42 flush node1 failed: injected by the test",
                          "== stopping the local cluster"], text
    assert "demo finished" not in text
    assert not cluster.is_up()


@pytest.mark.zookeeper
def test_a_cluster_without_the_api_fails_the_demo(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster("noapi")
    cluster.up(nodes=1, hypervisor="fake", bmc=False, api=False)
    lines: list[str] = []
    assert run_demo(cluster, hypervisor="fake", out=lines.append) == 1
    assert len(lines) == 1 and lines[0].startswith("demo: "), lines
    assert "runs no API server" in lines[0]
    assert cluster.is_up()  # not started by the demo: left running


def test_pvc_runs_next_to_the_interpreter(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert demo.pvc_argv() == [str(tmp_path / "python"), "-m", "pvc_cli.app"]
    (tmp_path / "pvc").write_text("#!/bin/sh\n", encoding="utf-8")
    assert demo.pvc_argv() == [str(tmp_path / "pvc")]
