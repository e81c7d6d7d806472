"""LocalCluster on a record of real sleeping processes: status, kill, hang, resume, down.

No ZooKeeper runs here, so the store columns stay unknown; the process
column and the fault commands are exercised on real processes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc_core.errors import NotFound
from pvc_core.states import DaemonState
from pvc_core.store.codec import Versioned
from pvc_core.store.records import NodeRecord
from pvc_local import launch, procs
from pvc_local.cluster import LocalCluster, LocalClusterError
from pvc_local.state import ClusterState, NodeEntry, ZkMemberEntry, load_state, save_state
from pvc_local.status import running_as

Sleeper = Callable[[], subprocess.Popen[bytes]]


def write_record(directory: Path, refs: list[procs.ProcRef], in_process: bool = False,
                 zk: procs.ProcRef | None = None) -> ClusterState:
    nodes = tuple(NodeEntry(f"node{i}", i, str(directory / f"node{i}" / "pvc.yaml"),
                            str(directory / f"node{i}" / "pvcnoded.log"),
                            str(directory / f"node{i}" / "state"), ref)
                  for i, ref in enumerate(refs, start=1))
    state = ClusterState(str(directory), "fake", in_process, 1, str(directory / "zookeeper"),
                         zk, nodes=nodes)
    save_state(directory, state)
    return state


def processes(cluster: LocalCluster) -> dict[str, str]:
    return {s.name: s.process for s in cluster.status()}


def test_status_and_faults(tmp_path: Path, sleeper: Sleeper) -> None:
    children = [sleeper() for _ in range(3)]
    write_record(tmp_path, [procs.ref_of(p.pid) for p in children])
    cluster = LocalCluster(tmp_path)
    rows = cluster.status()
    assert [(r.name, r.pid, r.process) for r in rows] == [
        (f"node{i}", p.pid, "alive") for i, p in enumerate(children, start=1)]
    assert all(r.daemon_state is None and r.vms is None for r in rows)  # no ZooKeeper

    cluster.hang("node2")
    assert processes(cluster) == {"node1": "alive", "node2": "stopped", "node3": "alive"}
    cluster.resume("node2")
    assert processes(cluster)["node2"] == "alive"
    cluster.kill("node3")
    assert processes(cluster) == {"node1": "alive", "node2": "alive", "node3": "dead"}

    with pytest.raises(LocalClusterError, match="node3: daemon is not running"):
        cluster.kill("node3")
    with pytest.raises(LocalClusterError, match="no node 'node9'.*node1, node2, node3"):
        cluster.hang("node9")
    with pytest.raises(LocalClusterError, match="still running"):
        cluster.restart("node1")
    with pytest.raises(LocalClusterError, match="ZooKeeper is not running"):
        cluster.restart("node3")


def test_up_refuses_a_running_cluster(tmp_path: Path, sleeper: Sleeper) -> None:
    child = sleeper()
    write_record(tmp_path, [procs.ref_of(child.pid)])
    cluster = LocalCluster(tmp_path)
    assert cluster.is_up()
    with pytest.raises(LocalClusterError, match="already up"):
        cluster.up(nodes=1, hypervisor="fake")
    assert child.poll() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.json"]  # nothing started


def test_down_stops_everything_and_is_idempotent(tmp_path: Path, sleeper: Sleeper) -> None:
    children = [sleeper() for _ in range(3)]
    zk = sleeper()  # stands in for the ZooKeeper JVM
    write_record(tmp_path, [procs.ref_of(p.pid) for p in children], zk=procs.ref_of(zk.pid))
    cluster = LocalCluster(tmp_path)
    cluster.hang("node1")  # a stopped process must go too
    done = cluster.down(timeout=10)
    assert done == ["stopped 3 daemon process(es)", "stopped ZooKeeper"]
    for proc in [*children, zk]:
        assert proc.wait(10) is not None
    state = load_state(tmp_path)
    assert state is not None and state.zk_process is None
    assert all(n.process is None for n in state.nodes)
    assert processes(cluster) == {"node1": "down", "node2": "down", "node3": "down"}
    assert cluster.zookeeper_state() is procs.ProcState.DEAD
    assert cluster.down() == []
    assert not cluster.is_up()
    assert cluster.down(purge=True) == [f"removed {tmp_path}"]
    assert not tmp_path.exists()
    assert cluster.down() == []  # nothing left at all: still fine


def test_in_process_mode_shares_one_process(tmp_path: Path, sleeper: Sleeper) -> None:
    shared = procs.ref_of(sleeper().pid)
    write_record(tmp_path, [shared, shared, shared], in_process=True)
    cluster = LocalCluster(tmp_path)
    cluster.kill("node2")
    assert set(processes(cluster).values()) == {"dead"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nodes": 0}, "at least one node"),
    ({"hypervisor": "xen"}, "unknown hypervisor 'xen'"),
    ({"node_memory_mib": 0, "hypervisor": "fake"}, "memory"),
    ({"node_cpus": 0, "hypervisor": "fake"}, "cpus"),
])
def test_up_rejects_bad_arguments_before_starting(tmp_path: Path, kwargs: dict[str, object],
                                                  message: str) -> None:
    cluster = LocalCluster(tmp_path / "c")
    with pytest.raises(LocalClusterError, match=message):
        cluster.up(**kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()


def test_test_hypervisor_needs_libvirt(tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "libvirt_available", lambda: False)
    with pytest.raises(LocalClusterError, match="libvirt-python.*--hypervisor fake"):
        LocalCluster(tmp_path / "c").up(nodes=1, hypervisor="test")
    assert not (tmp_path / "c").exists()


def test_no_cluster(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    with pytest.raises(LocalClusterError, match="no local cluster in"):
        cluster.status()
    with pytest.raises(LocalClusterError, match="no local cluster in"):
        _ = cluster.zk_hosts
    assert cluster.down() == []
    assert not cluster.is_up()


class _Nodes:
    def __init__(self, record: NodeRecord | None) -> None:
        self.record = record

    def get(self, name: str) -> Versioned[NodeRecord]:
        if self.record is None:
            raise NotFound(f"node {name!r} does not exist")
        return Versioned(self.record, 3)


class _Store:
    def __init__(self, record: NodeRecord | None) -> None:
        self.nodes = _Nodes(record)


@pytest.mark.parametrize(("record", "expected"), [
    (None, False),
    (NodeRecord("node1", DaemonState.INIT, info={"pid": 42}), False),
    (NodeRecord("node1", DaemonState.RUN, info={"pid": 41}), False),  # a killed daemon's
    (NodeRecord("node1", DaemonState.RUN, info={"pid": 42}), True),
    (NodeRecord("node1", DaemonState.RUN), True),  # no PID recorded: taken at its word
])
def test_running_as_ignores_stale_records(record: NodeRecord | None, expected: bool) -> None:
    assert running_as(_Store(record), "node1", 42) is expected  # type: ignore[arg-type]


def test_ensemble_members_are_managed_by_pid(tmp_path: Path, sleeper: Sleeper) -> None:
    members = [sleeper() for _ in range(3)]  # stand in for the three ZooKeeper JVMs
    state = write_record(tmp_path, [])
    for i, proc in enumerate(members, start=1):
        state = state.with_zk_member(ZkMemberEntry(i, 23180 + i, 2887 + i, 3887 + i,
                                                   str(tmp_path / f"zk{i}"),
                                                   procs.ref_of(proc.pid)))
    save_state(tmp_path, state)
    cluster = LocalCluster(tmp_path)
    assert cluster.is_up()
    assert cluster.zookeeper_state() is procs.ProcState.ALIVE
    cluster.zookeeper_kill(2)
    assert members[1].wait(10) is not None
    assert cluster.record().zk_member(2).process is None
    assert cluster.zookeeper_state() is procs.ProcState.ALIVE  # 2 of 3: a quorum
    with pytest.raises(LocalClusterError, match="member 2 is not running"):
        cluster.zookeeper_kill(2)
    with pytest.raises(LocalClusterError, match="member 3 is still running"):
        cluster.zookeeper_start(3)
    cluster.zookeeper_stop(3, timeout=10)
    assert members[2].wait(10) is not None
    assert cluster.zookeeper_state() is procs.ProcState.DEAD  # 1 of 3: no quorum
    with pytest.raises(LocalClusterError, match="no ZooKeeper member 7"):
        cluster.zookeeper_kill(7)
    assert cluster.down(timeout=10) == ["stopped ZooKeeper"]
    assert members[0].wait(10) is not None
    assert cluster.record().zk_processes() == []
    assert not cluster.is_up()


def test_member_commands_need_an_ensemble(tmp_path: Path, sleeper: Sleeper) -> None:
    write_record(tmp_path, [], zk=procs.ref_of(sleeper().pid))
    with pytest.raises(LocalClusterError, match="not an ensemble"):
        LocalCluster(tmp_path).zookeeper_kill(1)


def test_up_rejects_an_even_ensemble(tmp_path: Path) -> None:
    with pytest.raises(LocalClusterError, match="odd number"):
        LocalCluster(tmp_path / "c").up(nodes=1, hypervisor="fake", zk_members=2)
    assert not (tmp_path / "c").exists()
