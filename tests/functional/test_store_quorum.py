"""Quorum loss: every store call fails within its deadline, then recovers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pvc_core.errors import StoreUnavailable
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_core.store.zk import Op
from pvc_local.zookeeper import ZooKeeperEnsemble

OP_TIMEOUT = 2.0
#: Slack over the deadline for thread scheduling on a loaded 2-core machine.
SLACK = 3.0

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


def store_calls(store: Store, vm_uuid: str) -> dict[str, Callable[[], Any]]:
    return {
        "vms.get": lambda: store.vms.get(vm_uuid),
        "vms.all": store.vms.all,
        "vms.set_state": lambda: store.vms.set_state(vm_uuid, VMState.STOP),
        "vms.define": lambda: store.vms.define(str(uuid.uuid4()), "new", "<domain/>"),
        "nodes.register": lambda: store.nodes.register("node1", {}),
        "nodes.all": store.nodes.all,
        "cluster.get_primary": store.cluster.get_primary,
        "cluster.set_maintenance": lambda: store.cluster.set_maintenance(True),
        "jobs.create": lambda: store.jobs.create("flush", {}),
        "decisions.append": lambda: store.decisions.append("test", "x"),
        "faults.raise_fault": lambda: store.faults.raise_fault("k", "s", "m"),
        "schema.version": store.schema.version,
        "transaction": lambda: store.zk.transaction([Op.create(f"{store.ks.jobs()}/t")]),
    }


def test_quorum_loss_bounded_and_recovers(zk_ensemble: ZooKeeperEnsemble) -> None:
    store = Store.connect(zk_ensemble.hosts, session_timeout=4.0, op_timeout=OP_TIMEOUT)
    try:
        store.schema.initialise()
        vm = store.vms.define(str(uuid.uuid4()), "survivor", "<domain/>", state=VMState.START)

        stopped = zk_ensemble.members[:2]
        for member in stopped:
            member.stop()
        survivor = zk_ensemble.members[2]
        deadline = time.monotonic() + 30
        while survivor.serving():  # it notices the lost quorum within a few ticks
            assert time.monotonic() < deadline, "the last member still serves without quorum"
            time.sleep(0.05)

        results = run_all_bounded(store_calls(store, vm.uuid), OP_TIMEOUT + SLACK)
        for name, (exc, took) in sorted(results.items()):
            assert isinstance(exc, StoreUnavailable), f"{name}: raised {exc!r}"
            assert took <= OP_TIMEOUT + SLACK, f"{name}: took {took:.2f}s"

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
        store.vms.set_state(vm.uuid, VMState.STOP, reason="after recovery")
        assert store.vms.get(vm.uuid).state.state is VMState.STOP
    finally:
        store.close()
