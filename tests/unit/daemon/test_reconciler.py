"""The reconciler runs each VM's steps one at a time and different VMs in parallel."""

from __future__ import annotations

import logging
import threading

from pvc_core.clock import SystemClock
from pvc_core.daemon.reconciler import Reconciler


def test_one_vm_serialized_many_vms_parallel() -> None:
    lock = threading.Lock()
    active: dict[str, int] = {}
    peak = {"same": 0, "total": 0}
    calls: list[str] = []
    gate = threading.Event()

    def work(uuid: str) -> None:
        with lock:
            active[uuid] = active.get(uuid, 0) + 1
            peak["same"] = max(peak["same"], active[uuid])
            peak["total"] = max(peak["total"], sum(active.values()))
            calls.append(uuid)
        gate.wait(5)
        with lock:
            active[uuid] -= 1

    r = Reconciler(work, workers=4, clock=SystemClock(), log=logging.getLogger("t"))
    r.start()
    for _ in range(3):
        for vm in ("a", "b", "c"):
            r.enqueue(vm)
    gate.set()
    assert r.wait_idle(10)
    r.stop(5)
    assert peak["same"] == 1
    # each VM ran once, plus at most one re-run for all the repeats made meanwhile
    assert all(1 <= calls.count(c) <= 2 for c in "abc"), calls


def test_requested_delay_re_runs_the_vm_and_errors_are_contained() -> None:
    runs: list[str] = []
    failed, done = threading.Event(), threading.Event()

    def work(uuid: str) -> float | None:
        runs.append(uuid)
        if len(runs) == 1:
            return 0.05  # asks to be looked at again shortly
        if len(runs) == 2:
            failed.set()
            raise RuntimeError("boom")  # contained; would be retried after 5 s
        done.set()
        return None

    r = Reconciler(work, workers=1, clock=SystemClock(), log=logging.getLogger("t"))
    r.start()
    r.enqueue("x")
    assert failed.wait(10)
    assert r.wait_idle(10)
    r.enqueue("x")  # a change arrives: no need to wait for the retry timer
    assert done.wait(10)
    r.stop(5)
    assert runs == ["x", "x", "x"]
