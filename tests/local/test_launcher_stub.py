"""The launcher end to end against a stand-in daemon (tests/local/stub_daemon.py).

Real ZooKeeper, real processes, real signals; only the node daemon is a
stand-in that follows pvcnoded's process contract. This runs whether or not
the real daemon exists; test_local_cluster.py repeats the scenarios with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc_local import cli
from pvc_local.cluster import LocalCluster, LocalClusterError
from pvc_local.state import load_state

from .conftest import ROOT, assert_nothing_left, port_open, recorded_pid, states

pytestmark = pytest.mark.zookeeper
STUB = "tests.local.stub_daemon"


@pytest.fixture(autouse=True)
def _stub_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Daemons run with the cluster directory as their working directory.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))




def test_up_faults_restart_down(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(daemon_module=STUB)
    state = cluster.up(nodes=3, hypervisor="fake", wait=60)
    assert [n.name for n in state.nodes] == ["node1", "node2", "node3"]
    assert port_open(state.zk_port)
    assert states(cluster) == {f"node{i}": ("alive", "run") for i in (1, 2, 3)}
    assert {s.vms for s in cluster.status()} == {0}

    with pytest.raises(LocalClusterError, match="already up"):
        cluster.up(nodes=1, hypervisor="fake")

    # Another invocation (a new object on the same directory) sees the same cluster.
    other = LocalCluster(cluster.directory, daemon_module=STUB)
    other.kill("node2")
    assert states(cluster)["node2"] == ("dead", "run")  # the store still says run: stale
    other.restart("node2", wait=60)
    assert states(cluster)["node2"] == ("alive", "run")
    assert recorded_pid(cluster, "node2") == cluster.record().node("node2").process.pid
    assert cluster.record().node("node2").process != state.node("node2").process

    cluster.hang("node3")
    assert states(other)["node3"][0] == "stopped"
    cluster.resume("node3")
    assert states(other)["node3"][0] == "alive"

    before = cluster.record()
    done = other.down(timeout=20)
    assert done == ["stopped 3 daemon process(es)", "stopped ZooKeeper"]
    assert_nothing_left(before)
    assert states(cluster) == {f"node{i}": ("down", None) for i in (1, 2, 3)}
    assert (cluster.directory / "node1" / "pvcnoded.log").read_text().count("stopped") == 1
    assert cluster.down() == []
    cluster.down(purge=True)
    assert not cluster.directory.exists()


def test_hung_node_is_stopped_by_down(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(daemon_module=STUB)
    cluster.up(nodes=2, hypervisor="fake", wait=60)
    cluster.hang("node1")
    before = cluster.record()
    cluster.down(timeout=20)
    assert_nothing_left(before)


def test_failed_up_leaves_nothing(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(daemon_module="tests.local.no_such_daemon")
    with pytest.raises(LocalClusterError) as info:
        cluster.up(nodes=2, hypervisor="fake", wait=60)
    message = str(info.value)
    assert "\n" not in message
    assert "daemon exited with 1 (fatal error)" in message and "no_such_daemon" in message
    record = load_state(cluster.directory)
    assert record is not None and record.zk_process is None
    assert all(n.process is None for n in record.nodes)
    assert not port_open(record.zk_port)


def test_up_times_out_cleanly(make_cluster: Callable[..., LocalCluster],
                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A daemon that never reaches run: python's own "sleep" module stand-in.
    (tmp_path / "never_run.py").write_text("import time\ntime.sleep(60)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    cluster = make_cluster(daemon_module="never_run")
    with pytest.raises(LocalClusterError, match=r"node1 not in state run after 2s"):
        cluster.up(nodes=1, hypervisor="fake", wait=2)
    assert not cluster.is_up()


def test_cli_round_trip(make_cluster: Callable[..., LocalCluster],
                        capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = make_cluster()  # torn down by the fixture even if the CLI fails
    monkeypatch.setattr("pvc_local.cli.LocalCluster",
                        lambda d: LocalCluster(d, daemon_module=STUB))
    d = str(cluster.directory)
    assert cli.main(["up", "--dir", d, "--nodes", "2", "--hypervisor", "fake"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"local cluster up in {d}: 2 nodes (hypervisor fake)")
    assert cli.main(["--dir", d, "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(n["name"], n["process"], n["daemon_state"]) for n in data["nodes"]] == [
        ("node1", "alive", "run"), ("node2", "alive", "run")]
    assert data["zookeeper"]["process"] == "alive"
    assert cli.main(["kill", "node1", "--dir", d]) == 0
    assert cli.main(["kill", "node1", "--dir", d]) == 1
    assert "node1: daemon is not running" in capsys.readouterr().err
    assert cli.main(["up", "--dir", d, "--hypervisor", "fake"]) == 1
    assert "already up" in capsys.readouterr().err
    assert cli.main(["down", "--dir", d]) == 0
    assert capsys.readouterr().out.strip() == "stopped 1 daemon process(es); stopped ZooKeeper"
