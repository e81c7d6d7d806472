"""Flush jobs that need a hand inside the source node's hypervisor: the parallel
limit and the per-VM timeout.

The daemons here are NodeDaemon objects in the test process (real ZooKeeper,
real daemon code, the in-memory ``fake`` hypervisor), because only there can a
test hold a guest's shutdown, and so a shutdown migration, for as long as it
likes (``hang_shutdown``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.hypervisor import DomainState as HvState
from pvc_core.ops.flush import request_flush, request_ready
from pvc_core.ops.vms import define_vm
from pvc_core.states import DomainState, VMState
from pvc_core.store import Store
from tests.cluster.conftest import domain_xml, wait_for
from tests.cluster.flushing import finished, job, messages
from tests.helpers import fake_hv as hv
from tests.helpers import local_state

pytestmark = pytest.mark.zookeeper
T = 30
Make = Callable[..., tuple[list[NodeDaemon], Store]]


def migrating(store: Store, uuids: set[str]) -> set[str]:
    """Those of ``uuids`` whose state says a migration is in flight."""
    return {vm.uuid for vm in store.vms.all(sorted(uuids))
            if vm.state.state is VMState.MIGRATE}


def exactly(count: int, found: set[str]) -> set[str] | None:
    """``found`` when it has ``count`` members (for wait_for), else None."""
    return found if len(found) == count else None


@contextmanager
def sampler(store: Store, uuids: set[str]) -> Iterator[list[int]]:
    """Sample how many of ``uuids`` are migrating, as fast as the store answers."""
    counts: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            counts.append(len(migrating(store, uuids)))

    thread = threading.Thread(target=run, name="migration-sampler", daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join(10)


def test_a_flush_never_runs_more_than_parallel_limit_migrations(daemons: Make) -> None:
    limit = 2
    (n1, n2), store = daemons(2, migration={"parallel_limit": limit, "vm_timeout": 120},
                              vm_shutdown_timeout=120)
    vms = [define_vm(store, domain_xml(f"pl{i}", 128), node="node1", start=True)
           for i in range(5)]
    uuids = {vm.uuid for vm in vms}
    for vm in vms:
        wait_for(lambda v=vm: local_state(n1, v.uuid) is HvState.RUNNING, T, f"{vm.name} up")
        hv(n1).hang_shutdown.add(vm.uuid)  # each shutdown migration waits for the test

    with sampler(store, uuids) as counts:
        flush = request_flush(store, "node1")
        remaining = set(uuids)
        while remaining:
            want = min(limit, len(remaining))
            # exactly `want` in flight: the limit is reached, and a third waits for room
            inflight = wait_for(lambda w=want: exactly(w, migrating(store, remaining)), T,
                                f"{want} migrations in flight")
            hung = wait_for(lambda i=inflight: sorted(u for u in i if local_state(n1, u)
                                                      is HvState.SHUTDOWN), T,
                            "a guest shutting down")
            hv(n1).finish_shutdown(hung[0])
            wait_for(lambda u=hung[0]: local_state(n2, u) is HvState.RUNNING, T,
                     "it arrived on node2")
            remaining.discard(hung[0])
        wait_for(lambda: finished(store, flush["id"]), T, "flush finished")
    assert counts, "the sampler never ran"
    assert max(counts) == limit, f"at most {limit} migrations at once, saw {max(counts)}"
    done = job(store, flush["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"] == {"done": 5, "total": 5}
    moved = [m for m in messages(done) if " moved to node2 (shutdown) " in m]
    assert sorted(m.split(":")[0] for m in moved) == sorted(vm.name for vm in vms)
    assert [m.rsplit("(", 1)[1] for m in moved] == [f"{i}/5)" for i in range(1, 6)]
    assert store.nodes.get("node1").value.domain_state is DomainState.FLUSHED


def test_a_migration_past_the_vm_timeout_is_aborted_and_the_flush_goes_on(
        daemons: Make) -> None:
    (n1, n2), store = daemons(2, migration={"parallel_limit": 1, "vm_timeout": 2},
                              vm_shutdown_timeout=120)
    # name order is plan order: with one migration at a time, the hung VM goes first
    hung, *others = [define_vm(store, domain_xml(name, 128), node="node1", start=True)
                     for name in ("to-a-hung", "to-b", "to-c")]
    for vm in (hung, *others):
        wait_for(lambda v=vm: local_state(n1, v.uuid) is HvState.RUNNING, T, f"{vm.name} up")
    hv(n1).hang_shutdown.add(hung.uuid)  # its shutdown migration never ends

    flush = request_flush(store, "node1")
    wait_for(lambda: finished(store, flush["id"]), T, "flush finished")
    done = job(store, flush["id"])
    why = "timed out after 2s: migration to node2 aborted, stays on node1"
    assert done["state"] == "failed", done
    assert done["result"] == {"to-a-hung": why, "to-b": "ok", "to-c": "ok"}
    assert messages(done)[1:] == [
        f"to-a-hung: {why} (1/3)",
        "to-b: moved to node2 (shutdown) (2/3)",
        "to-c: moved to node2 (shutdown) (3/3)",
        "flush failed: 1 of 3 VMs not moved (to-a-hung); node1 stays flushing"]
    assert done["message"] == messages(done)[-1]
    assert store.nodes.get("node1").value.domain_state is DomainState.FLUSHING

    # the aborted VM: back as it was, running on node1 (its shutdown was given up,
    # not forced), never on node2
    rec = store.vms.get(hung.uuid)
    assert (rec.state.state, rec.placement.node, rec.placement.last_node) == (
        VMState.START, "node1", None)
    assert rec.state.reason == f"flush of node1: {why}"
    assert local_state(n1, hung.uuid) is HvState.SHUTDOWN  # still the hung guest
    assert (hung.uuid,) not in hv(n1).calls_to("destroy")
    assert local_state(n2, hung.uuid) is None
    assert any(d.outcome.startswith("aborted: migration to node2 timed out")
               for d in store.decisions.query(vm=hung.uuid))
    for vm in others:
        wait_for(lambda v=vm: local_state(n2, v.uuid) is HvState.RUNNING, T,
                 f"{vm.name} on node2")

    # ready brings the two moved VMs back; the aborted one never left
    ready = request_ready(store, "node1")
    wait_for(lambda: finished(store, ready["id"]), T, "ready finished")
    assert job(store, ready["id"])["state"] == "succeeded"
    assert [i["name"] for i in job(store, ready["id"])["plan"]] == ["to-b", "to-c"]
    # the failed flush job was not run again meanwhile
    assert job(store, flush["id"])["log"] == done["log"]
