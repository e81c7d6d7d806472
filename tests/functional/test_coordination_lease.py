"""The VM run-lease against a real ZooKeeper: the race, release, break, session loss."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from pvc_core.coordination.lease import RunLease
from pvc_core.errors import Conflict, LeaseHeld
from pvc_core.keyspace import Keyspace
from pvc_core.store.zk import ZkClient

pytestmark = pytest.mark.zookeeper

VM = "6f1c2b9e-8d1a-4c1e-9d4e-0a1b2c3d4e5f"
CLIENTS = 10
ROUNDS = 100


@pytest.fixture
def lease_path(keyspace: Keyspace) -> str:
    return keyspace.vm_lease(VM)


def test_lease_race_exactly_one_winner_and_epochs_never_repeat(
        zk_factory: Callable[..., ZkClient], lease_path: str) -> None:
    leases = [RunLease(zk_factory(), lease_path, f"hv{i}") for i in range(CLIENTS)]
    results: list[list[int | None]] = [[None] * CLIENTS for _ in range(ROUNDS)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(CLIENTS, timeout=30)

    def contender(i: int) -> None:
        lease = leases[i]
        try:
            for rnd in range(ROUNDS):
                barrier.wait()  # everyone starts the round together
                try:
                    results[rnd][i] = lease.acquire()
                except LeaseHeld:
                    pass
                barrier.wait()  # every contender has tried
                if results[rnd][i] is not None:
                    lease.release()
                barrier.wait()  # the winner released: next round
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            barrier.abort()

    started = time.monotonic()
    threads = [threading.Thread(target=contender, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    epochs = []
    for rnd, row in enumerate(results):
        winners = [e for e in row if e is not None]
        assert len(winners) == 1, f"round {rnd}: winners {row}"
        epochs.append(winners[0])
    assert len(set(epochs)) == ROUNDS
    assert all(a < b for a, b in zip(epochs, epochs[1:], strict=False))
    assert epochs == list(range(1, ROUNDS + 1))  # only acquire bumps the epoch
    info = leases[0].read()
    assert info.holder is None and info.epoch == ROUNDS
    print(f"lease race: {ROUNDS} rounds x {CLIENTS} clients in {elapsed:.2f}s")


def test_acquire_is_idempotent_and_names_the_holder(
        zk_factory: Callable[..., ZkClient], lease_path: str) -> None:
    a = RunLease(zk_factory(), lease_path, "hv1")
    b = RunLease(zk_factory(), lease_path, "hv2")
    assert a.read().version == -1 and a.read().free
    assert a.acquire() == 1
    assert a.acquire() == 1 and a.valid and a.holds()
    with pytest.raises(LeaseHeld, match="held by hv1"):
        b.acquire()
    assert not b.holds() and not b.valid
    a.release()
    a.release()  # idempotent
    assert not a.valid
    assert b.acquire() == 2


def test_release_by_non_holder_changes_nothing(
        zk_factory: Callable[..., ZkClient], lease_path: str) -> None:
    a = RunLease(zk_factory(), lease_path, "hv1")
    b = RunLease(zk_factory(), lease_path, "hv2")
    b.release()  # missing lease: nothing to do
    a.acquire()
    before = a.read()
    b.release()
    after = a.read()
    assert after == before and after.holder == "hv1"


def test_break_after_fencing_bumps_epoch_and_frees_the_lease(
        zk_factory: Callable[..., ZkClient], lease_path: str) -> None:
    dead = RunLease(zk_factory(), lease_path, "hv1")
    primary = RunLease(zk_factory(), lease_path, "hv2")
    other = RunLease(zk_factory(), lease_path, "hv3")
    assert dead.acquire() == 1
    with pytest.raises(Conflict, match="held by hv1"):
        primary.break_("hv3")
    assert primary.break_("hv1") == 2
    assert primary.break_("hv1") == 2  # repeating our own break is idempotent
    info = primary.read()
    assert (info.holder, info.epoch, info.broken_from, info.changed_by) == \
        (None, 2, "hv1", "hv2")
    assert not dead.holds()
    dead.release()  # the fenced node coming back cannot take it back by releasing
    assert other.acquire() == 3
    with pytest.raises(Conflict, match="held by hv3"):
        primary.break_("hv1")
    stored = json.loads(other.client.get(lease_path)[0])
    assert stored == {"holder": "hv3", "epoch": 3, "changed_by": "hv3", "broken_from": None}


def test_session_loss_invalidates_until_reverified(
        zk_factory: Callable[..., ZkClient], lease_path: str,
        expire: Callable[[ZkClient], None]) -> None:
    client = zk_factory()
    lease = RunLease(client, lease_path, "hv1")
    lease.acquire()
    assert lease.valid
    expire(client)
    deadline = time.monotonic() + 10
    while lease.valid and time.monotonic() < deadline:
        threading.Event().wait(0.02)
    assert not lease.valid
    assert client.wait_connected(10)
    assert lease.holds()  # the lease is persistent: still ours after re-verification
    assert lease.valid
    lease.close()


def test_hand_over_moves_the_lease_without_freeing_it(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace) -> None:
    path = keyspace.vm_lease("12345678-1234-1234-1234-123456789abc")
    src = RunLease(zk_factory(), path, "hv1")
    dst = RunLease(zk_factory(), path, "hv2")
    first = src.acquire()
    assert src.hand_over("hv2") == first + 1
    assert src.hand_over("hv2") == first + 1  # a repeated hand-over is idempotent
    info = dst.read()
    assert info.holder == "hv2" and info.epoch == first + 1
    assert dst.holds() and not src.valid
    with pytest.raises(Conflict):
        src.hand_over("hv3")
