"""A real local cluster: ZooKeeper and real node daemons (pvc_core.daemon) on loopback.

Skipped until the node daemon exists (it is run as ``python -m
pvc_core.daemon``; in-process mode builds ``pvc_core.daemon.NodeDaemon``).
"""

from __future__ import annotations

import importlib.util
import os
import stat
from collections.abc import Callable

import pytest

from pvc_api.auth import hash_key, new_key
from pvc_core.config import load_config
from pvc_local import cli, launch, procs
from pvc_local.cluster import LocalCluster, api_answers
from pvc_plugins.fake.hypervisor import read_state_file

from .conftest import assert_nothing_left, http_get, port_open, recorded_pid, states

daemon = pytest.importorskip("pvc_core.daemon")
if not hasattr(daemon, "NodeDaemon") or importlib.util.find_spec("pvc_core.daemon.__main__") \
        is None:
    pytest.skip("pvc_core.daemon has no NodeDaemon or __main__ yet", allow_module_level=True)

pytestmark = pytest.mark.zookeeper
MakeCluster = Callable[..., LocalCluster]



def test_three_nodes_faults_and_down(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    # no BMCs: a killed node must not be fenced while the test restarts it; no API servers
    # (not what this tests, and they cost time): test_api_servers_keys_status_and_down
    state = cluster.up(nodes=3, hypervisor="fake", wait=90, bmc=False, api=False)
    assert states(cluster) == {f"node{i}": ("alive", "run") for i in (1, 2, 3)}
    rows = cluster.status()
    assert len({r.pid for r in rows}) == 3  # one process per node
    assert all(r.domain_state == "ready" and r.vms == 0 for r in rows)

    cluster.kill("node2")
    assert states(cluster)["node2"][0] == "dead"
    cluster.restart("node2", wait=90)
    assert states(cluster)["node2"] == ("alive", "run")
    assert recorded_pid(cluster, "node2") == cluster.record().node("node2").process.pid

    cluster.hang("node3")
    assert states(cluster)["node3"][0] == "stopped"
    cluster.resume("node3")
    assert states(cluster)["node3"][0] == "alive"

    before = cluster.record()
    assert port_open(state.zk_port)
    cluster.down(timeout=30)
    assert_nothing_left(before)
    for entry in before.nodes:
        log = (cluster.directory / entry.name / "pvcnoded.log").read_text()
        assert "Traceback" not in log, f"{entry.name} logged a traceback:\n{log}"


def test_in_process_mode(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    state = cluster.up(nodes=4, hypervisor="fake", in_process=True, wait=120,
                       api=True)
    rows = cluster.status()
    assert {(r.process, r.daemon_state) for r in rows} == {("alive", "run")}
    assert len({r.pid for r in rows}) == 1  # one shared process
    assert state.shared_log.endswith("multinode.log")
    # the API servers are separate processes in this mode too: one per coordinator
    assert [a.node for a in state.apis] == ["node1", "node2", "node3"]
    assert {a.process for a in state.apis}.isdisjoint(state.processes())
    urls = cluster.api_urls()
    assert [http_get(u + "/api/v1/node", cluster.api_key())[0] for u in urls] == [200] * 3
    before = cluster.record()
    cluster.down(timeout=30)
    assert_nothing_left(before)


def test_libvirt_test_hypervisor(make_cluster: MakeCluster) -> None:
    if not launch.libvirt_available():
        pytest.skip("libvirt-python is not installed")
    cluster = make_cluster()
    cluster.up(nodes=2, hypervisor="test", node_memory_mib=8192, node_cpus=4, wait=90,
               api=False)
    assert states(cluster) == {"node1": ("alive", "run"), "node2": ("alive", "run")}
    before = cluster.record()
    cluster.down(timeout=30)
    assert_nothing_left(before)


def test_zookeeper_ensemble_and_hypervisor_state_files(make_cluster: MakeCluster) -> None:
    cluster = make_cluster()
    state = cluster.up(nodes=2, hypervisor="fake", zk_members=3, bmc=False, wait=120,
                       config_overrides={"zookeeper": {"session_timeout": 4}}, api=False)
    assert [m.member for m in state.zk_members] == [1, 2, 3]
    assert state.zk_hosts.count(",") == 2 and state.zk_process is None
    assert cluster.zookeeper_state() is procs.ProcState.ALIVE
    for entry in state.nodes:
        config = load_config(entry.config)
        assert config.zookeeper.hosts == state.zk_hosts
        assert config.zookeeper.session_timeout == 4
        doc = read_state_file(cluster.directory / entry.name / "hypervisor.json")
        assert doc is not None and entry.process is not None
        assert (doc["node"], doc["pid"], doc["domains"]) == (entry.name, entry.process.pid, {})

    cluster.zookeeper_kill(2)  # one member down (and reaped: its ports closed)
    assert not port_open(state.zk_member(2).port)
    assert cluster.zookeeper_state() is procs.ProcState.ALIVE
    store = cluster.store()
    try:
        store.zk.set(store.ks.cluster_config(), store.zk.get(store.ks.cluster_config())[0])
    finally:
        store.close()
    cluster.zookeeper_start(2, wait=60)
    assert cluster.zookeeper_serving(2)
    assert states(cluster) == {"node1": ("alive", "run"), "node2": ("alive", "run")}

    before = cluster.record()
    cluster.down(timeout=30)
    members = [m.process for m in before.zk_members]
    assert all(members) and not any(procs.is_running(r) for r in members)
    assert not any(port_open(m.port) for m in before.zk_members)
    assert not any(procs.is_running(r) for r in before.processes())


def test_api_servers_keys_status_and_down(make_cluster: MakeCluster,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    viewer = new_key()
    cluster = make_cluster()
    overrides = {"api": {"keys": [{"name": "viewer", "hash": hash_key(viewer),
                                   "role": "read-only"}]}}
    state = cluster.up(nodes=3, coordinators=2, hypervisor="fake", bmc=False, wait=90,
                       config_overrides=overrides, api=True)
    # one API server per coordinator (as the generated configuration names them), node1 first
    coordinators = list(load_config(state.node("node3").config).cluster.coordinators)
    assert coordinators == ["node1", "node2"]
    assert [a.node for a in state.apis] == coordinators
    urls = cluster.api_urls()
    assert urls == [f"http://127.0.0.1:{a.port}" for a in state.apis] and len(set(urls)) == 2
    assert LocalCluster(cluster.directory).api_urls() == urls  # recorded in cluster.json
    assert all(procs.is_running(a.process) for a in state.apis)
    assert {a.process for a in state.apis}.isdisjoint(state.processes())

    key_file = cluster.directory / "api.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = cluster.api_key()
    assert key and key_file.read_text().strip() == key
    for entry in state.nodes:  # every node: the overrides' key and the local admin key
        keys = {(k.name, k.role, k.hash) for k in load_config(entry.config).api.keys}
        assert keys == {("viewer", "read-only", hash_key(viewer)),
                        ("local-admin", "admin", hash_key(key))}

    for url in urls:
        status, spec = http_get(url + "/api/v1/openapi.json")
        assert status == 200 and "paths" in spec
        status, nodes = http_get(url + "/api/v1/node", key)
        assert status == 200, nodes
        assert sorted((n["name"], n["daemon_state"]) for n in nodes) == [
            ("node1", "run"), ("node2", "run"), ("node3", "run")]
        assert http_get(url + "/api/v1/node", viewer)[0] == 200
        assert http_get(url + "/api/v1/node")[0] == 401
        assert http_get(url + "/api/v1/node", new_key())[0] == 401
    assert (cluster.directory / "node1" / "pvcapid.log").read_text().count("PVC API") >= 1

    assert cli.main(["status", "--dir", str(cluster.directory)]) == 0
    assert f"API: {urls[0]}, {urls[1]} (admin key: {key_file})" in capsys.readouterr().out

    before = cluster.record()
    done = cluster.down(timeout=30)
    assert done[:2] == ["stopped 2 API server(s)", "stopped 3 daemon process(es)"]
    assert_nothing_left(before)
    assert not any(api_answers(u, timeout=1) for u in urls)
    assert [a.process for a in cluster.record().apis] == [None, None]
    assert cluster.down() == []
    for entry in before.apis:
        log = (cluster.directory / entry.node / "pvcapid.log").read_text()
        assert "Traceback" not in log, f"{entry.node}'s API logged a traceback:\n{log}"
