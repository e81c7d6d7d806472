"""Fixtures for functional tests: a real ZooKeeper on loopback.

One server per test session; each test gets a fresh chroot and a client
bound to it, so tests never see each other's znodes. The ensemble fixture
starts three members for tests that stop and restart them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from pvc_core.keyspace import Keyspace
from pvc_core.store.zk import ZkClient
from pvc_local.zookeeper import ZooKeeperEnsemble, ZooKeeperServer, expire_session


@pytest.fixture(scope="session")
def zk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"), tick_ms=200)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def zk_hosts(zk_server: ZooKeeperServer) -> Iterator[str]:
    """A hosts string with a fresh chroot; the chroot is removed afterwards."""
    chroot = f"/t-{uuid.uuid4().hex[:12]}"
    admin = KazooClient(hosts=zk_server.hosts, timeout=5)
    admin.start(timeout=10)
    admin.ensure_path(chroot)
    yield zk_server.hosts + chroot
    admin.delete(chroot, recursive=True)
    admin.stop()
    admin.close()


@pytest.fixture
def zk_factory(zk_hosts: str) -> Iterator[Callable[..., ZkClient]]:
    """Make started ZkClients on the test's chroot; all are stopped afterwards."""
    made: list[ZkClient] = []

    def make(**kwargs: object) -> ZkClient:
        kwargs.setdefault("session_timeout", 4.0)
        kwargs.setdefault("op_timeout", 3.0)
        client = ZkClient(zk_hosts, **kwargs)  # type: ignore[arg-type]
        client.start()
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


@pytest.fixture
def zk(zk_factory: Callable[..., ZkClient]) -> ZkClient:
    return zk_factory()


@pytest.fixture
def keyspace() -> Keyspace:
    return Keyspace("/pvc")


@pytest.fixture
def expire(zk_server: ZooKeeperServer) -> Callable[[ZkClient], None]:
    """Expire a client's session (the server drops it and its ephemerals)."""

    def do(client: ZkClient) -> None:
        sid = client.session_id
        assert sid is not None, "client has no session to expire"
        expire_session(client.hosts, sid)

    return do


@pytest.fixture
def zk_ensemble(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    """A fresh 3-member ensemble on loopback (for tests that stop members)."""
    ensemble = ZooKeeperEnsemble(tmp_path / "ensemble", size=3, tick_ms=200)
    ensemble.start()
    yield ensemble
    ensemble.stop()


@pytest.fixture
def store(zk: ZkClient, keyspace: Keyspace):  # type: ignore[no-untyped-def]
    """An initialised Store on the test's chroot."""
    from pvc_core.store import Store

    s = Store(zk, keyspace)
    s.schema.initialise()
    return s
