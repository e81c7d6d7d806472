"""The launcher end to end against a stand-in daemon (tests/local/stub_daemon.py).

Real ZooKeeper, real processes, real signals; only the node daemon is a
stand-in that follows pvcnoded's process contract. This runs whether or not
the real daemon exists; test_local_cluster.py repeats the scenarios with it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from pvc_local import cli, launch, procs
from pvc_local.cluster import LocalCluster, LocalClusterError
from pvc_local.state import load_state

from .conftest import ROOT, assert_nothing_left, http_get, port_open, recorded_pid, states

pytestmark = pytest.mark.zookeeper
STUB = "tests.local.stub_daemon"


@pytest.fixture(autouse=True)
def _stub_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Daemons run with the cluster directory as their working directory.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def test_up_faults_restart_down(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(daemon_module=STUB)
    state = cluster.up(nodes=3, hypervisor="fake", wait=60, api=False)
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
    state = cluster.up(nodes=2, hypervisor="fake", wait=60, api=False)
    # without the API: no servers, no key (and no key file), in the record or the configs
    assert (state.apis, state.api_key_file, cluster.api_urls()) == ((), "", [])
    assert not (cluster.directory / "api.key").exists()
    assert "api" not in yaml.safe_load(Path(state.node("node1").config).read_text())
    with pytest.raises(LocalClusterError, match="started without the API"):
        cluster.api_key()
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
                        monkeypatch: pytest.MonkeyPatch, client_config: Path) -> None:
    cluster = make_cluster()  # torn down by the fixture even if the CLI fails
    monkeypatch.setattr("pvc_local.cli.LocalCluster",
                        lambda d: LocalCluster(d, daemon_module=STUB))
    d = str(cluster.directory)
    # the user already has a connection of their own: it must survive up and down
    client_config.parent.mkdir(mode=0o700)
    client_config.write_text("connections:\n  prod: {address: pvc.example.org, port: 7370}\n")
    assert cli.main(["up", "--dir", d, "--nodes", "2", "--hypervisor", "fake"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"local cluster up in {d}: 2 nodes (hypervisor fake)")
    urls = cluster.api_urls()
    key = cluster.api_key()
    assert len(urls) == 2
    assert f"API: {urls[0]}, {urls[1]} (admin key: {d}/api.key)\n" in out
    assert out.endswith(f"pvc connection 'local' (the default) -> {urls[0]} with the "
                        f"local-admin key, in {client_config}\n")
    assert stat.S_IMODE(os.stat(client_config).st_mode) == 0o600
    saved = yaml.safe_load(client_config.read_text())
    assert saved["default"] == "local"
    assert saved["connections"]["local"] == {
        "address": "127.0.0.1", "port": int(urls[0].rsplit(":", 1)[1]), "key": key,
        "tls": False, "verify": True}
    assert "prod" in saved["connections"]
    local = saved["connections"]["local"]
    url = f"http://{local['address']}:{local['port']}/api/v1/node"
    status, nodes = http_get(url, local["key"])  # what the pvc client will do with it
    assert status == 200 and sorted(n["name"] for n in nodes) == ["node1", "node2"]

    assert cli.main(["--dir", d, "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(n["name"], n["process"], n["daemon_state"]) for n in data["nodes"]] == [
        ("node1", "alive", "run"), ("node2", "alive", "run")]
    assert data["zookeeper"]["process"] == "alive"
    assert [(a["node"], a["url"], a["process"]) for a in data["api"]["servers"]] == [
        ("node1", urls[0], "alive"), ("node2", urls[1], "alive")]
    assert data["api"]["key_file"] == f"{d}/api.key"
    assert cli.main(["kill", "node1", "--dir", d]) == 0
    assert cli.main(["kill", "node1", "--dir", d]) == 1
    assert "node1: daemon is not running" in capsys.readouterr().err
    assert cli.main(["up", "--dir", d, "--hypervisor", "fake"]) == 1
    assert "already up" in capsys.readouterr().err
    assert cli.main(["down", "--dir", d]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "stopped 2 API server(s); stopped 1 daemon process(es); stopped ZooKeeper",
        f"removed pvc connection 'local' from {client_config}"]
    saved = yaml.safe_load(client_config.read_text())
    assert saved["connections"] == {"prod": {"address": "pvc.example.org", "port": 7370,
                                             "key": None, "tls": False, "verify": True}}
    assert "default" not in saved
    assert cli.main(["down", "--dir", d]) == 0  # nothing left to stop or to remove
    assert capsys.readouterr().out.strip() == f"nothing running in {d}"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something (this test) listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_api_server_that_exits_fails_up(make_cluster: Callable[..., LocalCluster],
                                        monkeypatch: pytest.MonkeyPatch,
                                        taken_port: int) -> None:
    # The real pvcapid, given a port that is already taken, exits with 1 at once.
    monkeypatch.setattr("pvc_local.cluster.free_ports", lambda n: [taken_port] * n)
    cluster = make_cluster(daemon_module=STUB)
    with pytest.raises(LocalClusterError) as info:
        cluster.up(nodes=1, hypervisor="fake", wait=60, api=True)
    message = str(info.value)
    log = cluster.directory / "node1" / "pvcapid.log"
    assert message.startswith("node1: API server exited with 1 (fatal error): ")
    assert "cannot start" in message and message.endswith(f"(log: {log})")
    assert "\n" not in message
    record = load_state(cluster.directory)
    assert record is not None and [a.port for a in record.apis] == [taken_port]
    assert record.apis[0].process is None and record.nodes[0].process is None
    assert not cluster.is_up() and not port_open(record.zk_port)
    assert record.api_key_file == str(cluster.directory / "api.key")
    cluster.down(purge=True)  # the key file goes with everything else
    assert not cluster.directory.exists()


def test_api_server_that_never_answers_times_out(make_cluster: Callable[..., LocalCluster],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    # Stand-ins that never listen; each writes its PID so the test can check it was stopped.
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    monkeypatch.setattr(launch, "api_argv", lambda config, port: [
        sys.executable, "-c", code, str(tmp_path / f"api-{port}.pid")])
    cluster = make_cluster(daemon_module=STUB)
    with pytest.raises(LocalClusterError,
                       match=r"^API server\(s\) of node1, node2 not answering "
                             r"/api/v1/openapi.json after 2s \(logs: "):
        cluster.up(nodes=2, hypervisor="fake", wait=2, api=True)
    record = load_state(cluster.directory)
    assert record is not None and len(record.apis) == 2
    pids = [int((tmp_path / f"api-{a.port}.pid").read_text()) for a in record.apis]
    # stopped by the teardown (a zombie not yet reaped counts as gone)
    assert [p for p in pids if procs.is_running(procs.ref_of(p))] == []
    assert not cluster.is_up()
