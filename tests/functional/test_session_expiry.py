"""Expiring another process's session knowing only its id (what the chaos tests do)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pvc_core.store.zk import ZkClient
from pvc_local.zookeeper import ZooKeeperServer, expire_session_id, session_password

pytestmark = pytest.mark.zookeeper


def test_a_session_expired_by_its_id_is_lost_to_its_owner(
        zk_server: ZooKeeperServer, zk_factory: Callable[..., ZkClient]) -> None:
    client = zk_factory()
    client.create("/owned", b"", ephemeral=True)
    sid = client.session_id
    assert sid is not None and session_password(sid[0]) == sid[1]
    lost = threading.Event()
    client.add_listener(lambda state: lost.set() if state == "LOST" else None)
    owner = client.exists("/owned")
    assert owner is not None and owner.ephemeralOwner == sid[0]
    expire_session_id(zk_server.hosts, owner.ephemeralOwner)
    assert lost.wait(10)
    assert client.wait_connected(10)  # kazoo opens a new session
    assert client.exists("/owned") is None
    new = client.session_id
    assert new is not None and new[0] != sid[0]
