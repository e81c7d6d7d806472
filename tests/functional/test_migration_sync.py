"""The migration sync lock's wait for the other side, against a real ZooKeeper."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pvc_core.coordination.migration_sync import MigrationSync
from pvc_core.keyspace import Keyspace
from pvc_core.store.zk import ZkClient

pytestmark = pytest.mark.zookeeper
VM = "0b5a4c7e-3c1f-4d2a-9a7b-5d6e7f809102"


def sync(client: ZkClient, ks: Keyspace, who: str) -> MigrationSync:
    return MigrationSync(client, ks.migration_lock(VM), who)


def in_thread(fn: Callable[[], bool]) -> tuple[threading.Thread, list[bool]]:
    out: list[bool] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def test_wait_for_returns_once_the_named_node_joins_the_queue(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace) -> None:
    source, target = sync(zk_factory(), keyspace, "node1"), sync(zk_factory(), keyspace, "node2")
    waiter, out = in_thread(lambda: target.wait_for("node1", timeout=30))
    assert out == [] and target.contenders() == []  # waiting only watches: nothing queued
    assert source.lock.acquire(timeout=5)
    waiter.join(10)
    assert out == [True]
    # queued now, the target waits behind the source and gets the lock when it is released
    got, acquired = in_thread(lambda: target.lock.acquire(timeout=30))
    assert target.wait_for("node2", timeout=10) and target.contenders() == ["node1", "node2"]
    assert acquired == []
    source.lock.release()
    got.join(10)
    assert acquired == [True] and target.contenders() == ["node2"]
    target.lock.release()


def test_wait_for_gives_up_at_its_deadline_or_when_the_other_znode_changes(
        zk: ZkClient, keyspace: Keyspace) -> None:
    target = sync(zk, keyspace, "node2")
    assert target.wait_for("node1", timeout=0.3) is False
    lease = keyspace.vm_lease(VM)
    zk.create(lease, b"{}", makepath=True)
    version = zk.get(lease)[1].version
    waiter, out = in_thread(lambda: target.wait_for("node1", timeout=30, also=lease,
                                                    seen_version=version))
    zk.set(lease, b'{"holder": null}')  # before or after the watch is armed: either wakes it
    waiter.join(10)
    assert out == [False]
    assert target.wait_for("node1", timeout=30, also=lease, seen_version=version) is False


def test_a_queued_target_gets_the_lock_when_the_source_session_ends(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace,
        expire: Callable[[ZkClient], None]) -> None:
    source_zk = zk_factory()
    source, target = sync(source_zk, keyspace, "node1"), sync(zk_factory(), keyspace, "node2")
    assert source.lock.acquire(timeout=5)
    got, acquired = in_thread(lambda: target.lock.acquire(timeout=30))
    assert target.wait_for("node2", timeout=10)
    expire(source_zk)  # a dead source: its ephemeral contender goes with its session
    got.join(10)
    assert acquired == [True] and target.contenders() == ["node2"]
    target.lock.release()
