"""Fixtures for local-cluster tests: a LocalCluster that is always torn down."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pvc_local import procs
from pvc_local.cluster import LocalCluster
from pvc_local.state import ClusterState

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """Make LocalClusters under tmp_path; every one is brought down afterwards."""
    made: list[LocalCluster] = []

    def make(name: str = "cluster", **kwargs: str) -> LocalCluster:
        cluster = LocalCluster(tmp_path / name, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.down(timeout=15)


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def assert_nothing_left(before_down: ClusterState) -> None:
    """Every process the record named is gone and the ZooKeeper port is closed."""
    refs = [r for r in [before_down.zk_process, *before_down.processes()] if r]
    assert refs, "the record named no process: the check would be vacuous"
    assert [r.pid for r in refs if procs.is_running(r)] == []
    assert not port_open(before_down.zk_port)


def recorded_pid(cluster: LocalCluster, node: str) -> object:
    """The PID the node's daemon wrote into its record (restart waits for the new one)."""
    store = cluster.store()
    try:
        return store.nodes.get(node).value.info.get("pid")
    finally:
        store.close()


def states(cluster: LocalCluster) -> dict[str, tuple[str, str | None]]:
    return {s.name: (s.process, s.daemon_state) for s in cluster.status()}
