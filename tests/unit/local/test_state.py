"""cluster.json: round trip, atomic writes, damage reported in one line, purge limits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pvc_local.procs import ProcRef
from pvc_local.state import (
    ClusterState,
    NodeEntry,
    StateError,
    ZkMemberEntry,
    load_state,
    purge_files,
    save_state,
    state_path,
)


def sample(directory: Path) -> ClusterState:
    shared = ProcRef(4242, 777)
    nodes = tuple(
        NodeEntry(f"node{i}", i, str(directory / f"node{i}" / "pvc.yaml"),
                  str(directory / f"node{i}" / "pvcnoded.log"),
                  str(directory / f"node{i}" / "state"),
                  ProcRef(1000 + i, 50 + i) if i != 3 else None, libvirtd=i == 2)
        for i in (1, 2, 3))
    return ClusterState(str(directory), "qemu", False, 42181, str(directory / "zookeeper"),
                        shared, "", nodes, 2048, 2,
                        {"kernel": "/c/vmlinuz", "initrd": "/c/initrd.gz"})


def test_round_trip(tmp_path: Path) -> None:
    state = sample(tmp_path)
    save_state(tmp_path, state)
    assert load_state(tmp_path) == state
    assert json.loads(state_path(tmp_path).read_text())["format"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.json"]  # no temporary left


def test_no_record_is_none(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    assert load_state(tmp_path / "missing") is None


@pytest.mark.parametrize("text", ["{", "[]", '{"format": 1}', '{"format": 99}',
                                  '{"format": 1, "directory": "/x", "hypervisor": "fake", '
                                  '"zookeeper": {"port": "x", "dir": "/"}, "nodes": []}'])
def test_damaged_record(tmp_path: Path, text: str) -> None:
    state_path(tmp_path).write_text(text)
    with pytest.raises(StateError) as info:
        load_state(tmp_path)
    assert "\n" not in str(info.value)
    assert "cluster.json" in str(info.value) or "format" in str(info.value)


def test_node_lookup_and_updates(tmp_path: Path) -> None:
    state = sample(tmp_path)
    assert state.node("node2").libvirtd is True
    with pytest.raises(KeyError, match="node1, node2, node3"):
        state.node("node9")
    moved = state.with_node_process("node3", ProcRef(9, 9))
    assert moved.node("node3").process == ProcRef(9, 9)
    assert state.node("node3").process is None  # frozen: the original is unchanged
    assert [n.name for n in moved.nodes] == ["node1", "node2", "node3"]
    assert state.zk_hosts == "127.0.0.1:42181"


def test_processes_are_listed_once(tmp_path: Path) -> None:
    shared = ProcRef(5, 5)
    state = sample(tmp_path)
    for name in ("node1", "node2", "node3"):
        state = state.with_node_process(name, shared)
    assert state.processes() == [shared]


def test_purge_removes_only_what_the_record_names(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    state = sample(directory)
    for entry in state.nodes:
        Path(entry.state_dir).mkdir(parents=True)
        Path(entry.log).write_text("log\n")
    (directory / "mine.txt").write_text("keep me\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    hostile = ClusterState(str(directory), "fake", zk_dir=str(outside), nodes=state.nodes)
    save_state(directory, hostile)
    purge_files(directory, hostile)
    assert outside.is_dir()  # outside the cluster directory: never removed
    assert sorted(p.name for p in directory.iterdir()) == ["mine.txt"]
    (directory / "mine.txt").unlink()
    purge_files(directory, hostile)
    assert not directory.exists()  # empty now, so the directory goes too


def test_purge_of_a_normal_cluster(tmp_path: Path) -> None:
    state = sample(tmp_path / "c")
    (tmp_path / "c" / "zookeeper" / "data").mkdir(parents=True)
    for entry in state.nodes:
        Path(entry.state_dir).mkdir(parents=True)
    save_state(tmp_path / "c", state)
    purge_files(tmp_path / "c", state)
    assert list(tmp_path.iterdir()) == []


def test_ensemble_members_round_trip(tmp_path: Path) -> None:
    members = tuple(ZkMemberEntry(i, 23180 + i, 2887 + i, 3887 + i,
                                  str(tmp_path / "zookeeper" / f"zk{i}"),
                                  ProcRef(600 + i, 60 + i) if i != 2 else None)
                    for i in (3, 1, 2))
    state = ClusterState(str(tmp_path), "fake", zk_port=23181,
                         zk_dir=str(tmp_path / "zookeeper"))
    for member in members:
        state = state.with_zk_member(member)
    assert [m.member for m in state.zk_members] == [1, 2, 3]  # kept in id order
    assert state.zk_hosts == "127.0.0.1:23181,127.0.0.1:23182,127.0.0.1:23183"
    assert state.zk_processes() == [ProcRef(601, 61), ProcRef(603, 63)]
    assert state.zk_member(2).process is None
    with pytest.raises(KeyError, match="members: 1, 2, 3"):
        state.zk_member(4)
    stopped = state.with_zk_member(replace(state.zk_member(1), process=None))
    assert stopped.zk_processes() == [ProcRef(603, 63)]
    save_state(tmp_path, stopped)
    assert load_state(tmp_path) == stopped


def test_a_standalone_server_has_no_members(tmp_path: Path) -> None:
    state = sample(tmp_path)
    assert state.zk_processes() == [ProcRef(4242, 777)]
    with pytest.raises(KeyError, match="not an ensemble"):
        state.zk_member(1)
    data = state.to_dict()
    del data["zookeeper"]["members"]  # a record written before ensembles existed
    assert ClusterState.from_dict(data) == state
