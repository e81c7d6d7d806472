"""Quorum loss: every store and recipe call fails within its deadline, then recovers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pvc_core.coordination.lease import RunLease
from pvc_core.coordination.liveness import Liveness, LivenessObserver
from pvc_core.coordination.lock import Lock, ReadLock
from pvc_core.errors import StoreUnavailable
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_core.store.zk import Op
from pvc_local.zookeeper import ZooKeeperEnsemble

OP_TIMEOUT = 2.0
#: The lock-acquire deadline: shorter than OP_TIMEOUT, so it is the store call
#: inside acquire, not the wait for a holder, that must end the attempt.
LOCK_TIMEOUT = 1.0
#: Over the deadline: measured overrun is a few milliseconds (every call took
#: 2.00 s); the rest is headroom for scheduling 19 threads on a loaded 2-core
#: machine. A second bounded round trip (4 s) must not fit.
SLACK = 1.0
BOUND = OP_TIMEOUT + SLACK

pytestmark = pytest.mark.ensemble


def run_all_bounded(calls: dict[str, Callable[[], Any]],
                    limit: float) -> dict[str, tuple[BaseException | None, float]]:
    """Run every call in its own thread at once; return name -> (exception, seconds).

    A call whose thread is still running after ``limit`` fails the test: it hung.
    """
    results: dict[str, tuple[BaseException | None, float]] = {}
    lock = threading.Lock()

    def target(name: str, call: Callable[[], Any]) -> None:
        start = time.monotonic()
        exc: BaseException | None = None
        try:
            call()
        except BaseException as err:  # noqa: BLE001 - reported to the test
            exc = err
        with lock:
            results[name] = (exc, time.monotonic() - start)

    threads = [threading.Thread(target=target, args=item, daemon=True) for item in calls.items()]
    for t in threads:
        t.start()
    end = time.monotonic() + limit
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    hung = sorted(set(calls) - set(results))
    assert not hung, f"store calls still blocked after {limit:.1f}s: {hung}"
    return results


def store_calls(store: Store, vm_uuid: str, tag: str) -> dict[str, Callable[[], Any]]:
    """The repository calls; ``tag`` keeps the names they create apart between rounds."""
    return {
        "vms.get": lambda: store.vms.get(vm_uuid),
        "vms.all": store.vms.all,
        "vms.set_state": lambda: store.vms.set_state(vm_uuid, VMState.STOP),
        "vms.define": lambda: store.vms.define(str(uuid.uuid4()), f"new-{tag}", "<domain/>"),
        "nodes.register": lambda: store.nodes.register("node1", {}),
        "nodes.all": store.nodes.all,
        "cluster.get_primary": store.cluster.get_primary,
        "cluster.set_maintenance": lambda: store.cluster.set_maintenance(True),
        "jobs.create": lambda: store.jobs.create("flush", {}),
        "decisions.append": lambda: store.decisions.append("test", "x"),
        "faults.raise_fault": lambda: store.faults.raise_fault("k", "s", "m"),
        "schema.version": store.schema.version,
        "transaction": lambda: store.zk.transaction([Op.create(store.ks.job(f"t-{tag}"))]),
    }


def recipe_calls(store: Store, vm_uuid: str, liveness: Liveness) -> dict[str, Callable[[], Any]]:
    """The coordination recipes, each a fresh object as a daemon would make it.

    ``liveness`` is the node's long-lived announcer (it beats through the loss).
    """
    observer = LivenessObserver(store.zk, store.ks)
    return {
        "lock.acquire": lambda: Lock(store.zk, store.ks.flush_lock(), "node1").acquire(
            timeout=LOCK_TIMEOUT),
        "read_lock.acquire": lambda: ReadLock(store.zk, store.ks.fence_lock(), "node1").acquire(
            timeout=LOCK_TIMEOUT),
        "lease.acquire": lambda: RunLease(store.zk, store.ks.vm_lease(vm_uuid), "node1").acquire(),
        "lease.holds": lambda: RunLease(store.zk, store.ks.vm_lease(vm_uuid), "node1").holds(),
        "liveness.observe": lambda: observer.observe(["node1"]),
        "liveness.beat": lambda: liveness.beat({"round": 1}),
    }


def test_quorum_loss_bounded_and_recovers(zk_ensemble: ZooKeeperEnsemble) -> None:
    store = Store.connect(zk_ensemble.hosts, session_timeout=4.0, op_timeout=OP_TIMEOUT)
    try:
        store.schema.initialise()
        vm = store.vms.define(str(uuid.uuid4()), "survivor", "<domain/>", state=VMState.START)
        liveness = Liveness(store.zk, store.ks, "node1")
        liveness.announce()
        first_seq = liveness.beat()

        stopped = zk_ensemble.members[:2]
        for member in stopped:
            member.stop()
        survivor = zk_ensemble.members[2]
        deadline = time.monotonic() + 30
        while survivor.serving():  # it notices the lost quorum within a few ticks
            assert time.monotonic() < deadline, "the last member still serves without quorum"
            time.sleep(0.05)

        calls = {**store_calls(store, vm.uuid, "loss"),
                 **recipe_calls(store, vm.uuid, liveness)}
        results = run_all_bounded(calls, BOUND)
        assert set(results) == set(calls)
        for name, (exc, took) in sorted(results.items()):
            assert isinstance(exc, StoreUnavailable), f"{name}: raised {exc!r}"
            assert took <= BOUND, f"{name}: took {took:.2f}s"

        for member in stopped:
            member.start(wait=False)
        for member in stopped:
            member.wait_serving(60)

        deadline = time.monotonic() + 30
        while True:
            try:
                got = store.vms.get("survivor")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "store did not recover after quorum returned"
        assert got.uuid == vm.uuid

        # Every call works again, on the same client, without a restart.
        calls = {**store_calls(store, vm.uuid, "after"),
                 **recipe_calls(store, vm.uuid, liveness)}
        results = run_all_bounded(calls, BOUND)
        failed = {name: exc for name, (exc, _) in results.items() if exc is not None}
        assert not failed, f"calls still failing after recovery: {failed}"
        assert store.vms.get(vm.uuid).state.state is VMState.STOP
        assert store.cluster.maintenance() is True
        assert RunLease(store.zk, store.ks.vm_lease(vm.uuid), "node1").holds()
        seen = LivenessObserver(store.zk, store.ks).observe(["node1"])["node1"]
        assert seen.session_alive and seen.seq > first_seq
        assert Lock(store.zk, store.ks.flush_lock(), "node1").holders() == ["node1"]
    finally:
        store.close()
