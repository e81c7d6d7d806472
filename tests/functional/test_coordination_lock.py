"""Exclusive and read/write locks against a real ZooKeeper."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pvc_core.coordination.lock import Lock, ReadWriteLock, node_prefix
from pvc_core.errors import LockTimeout
from pvc_core.keyspace import Keyspace
from pvc_core.store.zk import ZkClient

pytestmark = pytest.mark.zookeeper


def eventually(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``pred`` (test helper only) until true or ``timeout``."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        threading.Event().wait(0.02)
    return True


def start(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``fn`` in a thread; its result or exception lands in the returned list."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


@pytest.fixture
def path(keyspace: Keyspace) -> str:
    return keyspace.flush_lock()


def test_mutual_exclusion(zk_factory: Callable[..., ZkClient], path: str) -> None:
    workers, loops = 5, 10
    counter = [0]
    inside = [0]
    overlap: list[int] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        lock = Lock(zk_factory(), path, f"hv{i}", timeout=30)
        try:
            for _ in range(loops):
                with lock:
                    inside[0] += 1
                    if inside[0] != 1:
                        overlap.append(inside[0])
                    value = counter[0]
                    time.sleep(0.001)  # widen the race window on purpose (not sync)
                    counter[0] = value + 1
                    inside[0] -= 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not overlap
    assert counter[0] == workers * loops


def test_timeout_names_holder_and_leaves_no_node(
        zk_factory: Callable[..., ZkClient], path: str) -> None:
    holder = Lock(zk_factory(), path, "hv1")
    waiter = Lock(zk_factory(), path, "hv2", timeout=0.3)
    assert holder.acquire()
    assert holder.is_held and holder.holders() == ["hv1"]
    t0 = time.monotonic()
    with pytest.raises(LockTimeout) as info, waiter:
        pass
    assert 0.25 < time.monotonic() - t0 < 3
    assert path in str(info.value) and "held by hv1" in str(info.value)
    assert waiter.acquire(blocking=False) is False
    assert holder.client.children(path) == [holder.node.rsplit("/", 1)[-1]]  # type: ignore[union-attr]
    assert holder.contenders() == ["hv1"] and not waiter.is_held
    holder.release()
    holder.release()  # idempotent
    assert waiter.acquire(timeout=1)
    waiter.release()
    assert holder.client.children(path) == []


def test_contenders_queue_in_order(zk_factory: Callable[..., ZkClient], path: str) -> None:
    a = Lock(zk_factory(), path, "hv-a")
    b = Lock(zk_factory(), path, "hv-b")
    c = Lock(zk_factory(), path, "hv-c")
    assert a.acquire()
    tb, rb = start(lambda: b.acquire(timeout=10))
    assert eventually(lambda: a.contenders() == ["hv-a", "hv-b"])
    tc, rc = start(lambda: c.acquire(timeout=10))
    assert eventually(lambda: a.contenders() == ["hv-a", "hv-b", "hv-c"])
    a.release()
    tb.join(10)
    assert rb == [True] and b.is_held and not c.is_held
    assert c.holders() == ["hv-b"]
    b.release()
    tc.join(10)
    assert rc == [True] and c.is_held
    c.release()


def test_cancel_pending_acquire(zk_factory: Callable[..., ZkClient], path: str) -> None:
    a = Lock(zk_factory(), path, "hv1")
    b = Lock(zk_factory(), path, "hv2")
    a.acquire()
    tb, rb = start(lambda: b.acquire())
    assert eventually(lambda: len(a.contenders()) == 2)
    b.cancel()
    tb.join(10)
    assert rb == [False]
    assert a.contenders() == ["hv1"]
    a.release()


def test_own_node_found_after_lost_create_reply(zk: ZkClient, path: str) -> None:
    lock = Lock(zk, path, "hv1")
    # Simulate creates applied on the server whose replies never arrived,
    # twice (the client retried): the lock adopts the first and drops the other.
    prefix = node_prefix("write", "hv1", lock._token)
    first = zk.create(f"{path}/{prefix}", b"hv1", ephemeral=True, sequence=True,
                      makepath=True)
    zk.create(f"{path}/{prefix}", b"hv1", ephemeral=True, sequence=True)
    assert lock.acquire(timeout=1)
    assert lock.node == first
    assert zk.children(path) == [first.rsplit("/", 1)[-1]]
    lock.release()


def test_readers_share_writer_excludes(zk_factory: Callable[..., ZkClient], path: str) -> None:
    r1 = ReadWriteLock(zk_factory(), path, "hv1").read_lock()
    r2 = ReadWriteLock(zk_factory(), path, "hv2").read_lock()
    w = ReadWriteLock(zk_factory(), path, "hv3").write_lock()
    r3 = ReadWriteLock(zk_factory(), path, "hv4").read_lock()
    assert r1.acquire(timeout=2) and r2.acquire(timeout=2)
    assert r1.is_held and r2.is_held
    assert sorted(r1.holders()) == ["hv1", "hv2"]
    with pytest.raises(LockTimeout, match="held by hv1, hv2"):
        w.acquire(timeout=0.2)
    tw, rw = start(lambda: w.acquire(timeout=10))
    assert eventually(lambda: r1.contenders() == ["hv1", "hv2", "hv3"])
    # A reader arriving after a waiting writer queues behind it (no writer starvation).
    assert r3.acquire(blocking=False) is False
    r1.release()
    assert not w.is_held
    r2.release()
    tw.join(10)
    assert rw == [True] and w.is_held
    with pytest.raises(LockTimeout, match="held by hv3"):
        r3.acquire(timeout=0.2)
    tr, rr = start(lambda: r3.acquire(timeout=10))
    assert eventually(lambda: w.contenders() == ["hv3", "hv4"])
    w.release()
    tr.join(10)
    assert rr == [True] and r3.is_held
    r3.release()


def test_exclusive_lock_excludes_readers(zk_factory: Callable[..., ZkClient], path: str) -> None:
    lock = Lock(zk_factory(), path, "hv1")
    reader = ReadWriteLock(zk_factory(), path, "hv2").read_lock()
    assert lock.acquire()
    assert reader.acquire(blocking=False) is False
    lock.release()
    assert reader.acquire(blocking=False) is True
    reader.release()


def test_session_expiry_hands_lock_to_next_and_sets_lost(
        zk_factory: Callable[..., ZkClient], path: str,
        expire: Callable[[ZkClient], None]) -> None:
    old_client = zk_factory()
    old = Lock(old_client, path, "hv1")
    nxt = Lock(zk_factory(), path, "hv2")
    assert old.acquire()
    tn, rn = start(lambda: nxt.acquire(timeout=20))
    assert eventually(lambda: nxt.contenders() == ["hv1", "hv2"])
    expire(old_client)
    assert old.lost.wait(10)
    assert not old.is_held
    tn.join(20)
    assert rn == [True] and nxt.is_held
    assert nxt.holders() == ["hv2"]
    assert old_client.wait_connected(10)
    old.release()  # idempotent after loss: the node is already gone
    assert nxt.contenders() == ["hv2"]
    # The old holder can queue again on its new session.
    tr, rr = start(lambda: old.acquire(timeout=10))
    assert eventually(lambda: nxt.contenders() == ["hv2", "hv1"])
    nxt.release()
    tr.join(10)
    assert rr == [True] and old.is_held and not old.lost.is_set()
    old.release()
