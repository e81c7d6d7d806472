"""Fixtures for local-cluster tests: a LocalCluster that is always torn down."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pvc_local import procs
from pvc_local.cluster import LocalCluster
from pvc_local.state import ClusterState

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def client_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pvc client's connections file of every test here: a temporary one, never
    the user's ~/.config/pvc/client.yaml (pvc-local up registers a connection)."""
    path = tmp_path / "pvc-client" / "client.yaml"
    monkeypatch.setenv("PVC_CLIENT_CONFIG", str(path))
    monkeypatch.setenv("PVC_CONFIG", str(tmp_path / "no-server-config.yaml"))
    monkeypatch.delenv("PVC_CONNECTION", raising=False)
    return path


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
    """Every process the record named is gone; the ZooKeeper and API ports are closed."""
    refs = [r for r in [before_down.zk_process, *before_down.processes(),
                        *before_down.api_processes()] if r]
    assert refs, "the record named no process: the check would be vacuous"
    assert [r.pid for r in refs if procs.is_running(r)] == []
    assert not port_open(before_down.zk_port)
    assert [a.port for a in before_down.apis if port_open(a.port)] == []


def http_get(url: str, key: str | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """``GET url`` (no proxy) with ``X-Api-Key`` if given: the status and the JSON body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"X-Api-Key": key} if key else {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, _body(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _body(exc.read())


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def recorded_pid(cluster: LocalCluster, node: str) -> object:
    """The PID the node's daemon wrote into its record (restart waits for the new one)."""
    store = cluster.store()
    try:
        return store.nodes.get(node).value.info.get("pid")
    finally:
        store.close()


def states(cluster: LocalCluster) -> dict[str, tuple[str, str | None]]:
    return {s.name: (s.process, s.daemon_state) for s in cluster.status()}
