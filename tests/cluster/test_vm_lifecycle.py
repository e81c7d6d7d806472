"""VM migration, memory accounting and bad input against daemons in separate processes.

Every VM state transition, crash restarts and shutdown aborts, read from
the hypervisors themselves, are in test_vm_faults_process.py.
"""

from __future__ import annotations

import json

import pytest

from pvc_core.errors import Conflict, InvalidInput, NotFound
from pvc_core.ops.vms import (
    define_vm,
    migrate_vm,
    set_vm_meta,
    set_vm_state,
    unmigrate_vm,
)
from pvc_core.states import VMState
from pvc_core.store import Store
from tests.cluster.conftest import domain_xml, running_on, wait_for
from tests.helpers import snapshot

pytestmark = pytest.mark.zookeeper
T = 30  # seconds for anything a daemon must do


def where(store: Store, vm: str) -> list[str]:
    """The nodes whose hypervisors report the VM running."""
    return [n for n in store.nodes.names() if vm in running_on(store, n)]


def state(store: Store, vm: str) -> VMState:
    return store.vms.get(vm).state.state


def test_migrate_unmigrate_move(store: Store) -> None:
    vm = define_vm(store, domain_xml("mig1"), node="node1", start=True)
    wait_for(lambda: where(store, vm.uuid) == ["node1"], T, "mig1 on node1")

    with pytest.raises(Conflict, match="already on node1"):
        migrate_vm(store, "mig1", "node1")

    migrate_vm(store, "mig1", "node2")
    wait_for(lambda: where(store, vm.uuid) == ["node2"]
             and state(store, vm.uuid) is VMState.START, T, "mig1 on node2")
    rec = store.vms.get(vm.uuid)
    assert rec.placement.last_node == "node1"
    assert "shutdown migration" in rec.state.reason  # the fake cannot live-migrate

    unmigrate_vm(store, "mig1")
    wait_for(lambda: where(store, vm.uuid) == ["node1"]
             and state(store, vm.uuid) is VMState.START, T, "mig1 back on node1")
    assert store.vms.get(vm.uuid).placement.last_node is None

    migrate_vm(store, "mig1", "node3", permanent=True)  # move
    wait_for(lambda: where(store, vm.uuid) == ["node3"]
             and state(store, vm.uuid) is VMState.START, T, "mig1 moved to node3")
    assert store.vms.get(vm.uuid).placement.last_node is None
    with pytest.raises(Conflict, match="no previous node"):
        unmigrate_vm(store, "mig1")


def test_migrate_live_without_live_support_stays_and_reports(store: Store) -> None:
    vm = define_vm(store, domain_xml("live1"), node="node2", start=True)
    wait_for(lambda: where(store, vm.uuid) == ["node2"], T, "live1 on node2")
    migrate_vm(store, "live1", "node3", live_only=True)
    wait_for(lambda: state(store, vm.uuid) is VMState.START, T, "migration settled")
    rec = store.vms.get(vm.uuid)
    assert rec.placement.node == "node2" and "cannot live-migrate" in rec.state.reason
    assert where(store, vm.uuid) == ["node2"]
    decisions = store.decisions.query(vm=vm.uuid)
    assert decisions and decisions[-1].outcome == "failed: stays on node2"


def test_allocated_and_provisioned_memory_differ_by_the_stopped_vms(store: Store) -> None:
    def stats() -> dict:  # type: ignore[type-arg]
        return json.loads(store.zk.get(store.ks.node_keepalive("node3"))[0])["stats"]

    on = define_vm(store, domain_xml("mem-on", 1024), node="node3", start=True)
    off = define_vm(store, domain_xml("mem-off", 512), node="node3")
    wait_for(lambda: on.uuid in running_on(store, "node3"), T, "mem-on running")

    def settled() -> dict | None:  # type: ignore[type-arg]
        assigned = [v for v in store.vms.all() if v.placement.node == "node3"]
        running = running_on(store, "node3")
        st = stats()
        want_prov = sum(v.memory_mib for v in assigned)
        want_alloc = sum(v.memory_mib for v in assigned if v.uuid in running)
        ok = (st["memory_provisioned_mib"], st["memory_allocated_mib"]) == (want_prov,
                                                                            want_alloc)
        return {"assigned": assigned, "running": running, **st} if ok else None

    st = wait_for(settled, T, "node3's keepalive matching its VMs")
    stopped = [v for v in st["assigned"] if v.uuid not in st["running"]]
    assert off.uuid in {v.uuid for v in stopped} and on.uuid in st["running"]
    assert st["memory_provisioned_mib"] - st["memory_allocated_mib"] == sum(
        v.memory_mib for v in stopped) >= 512


@pytest.mark.parametrize("call, error, text", [
    (lambda s: set_vm_state(s, "no-such-vm", VMState.START), NotFound, "does not exist"),
    (lambda s: define_vm(s, "<domain><name>x</name>"), InvalidInput, "malformed"),
    (lambda s: define_vm(s, domain_xml("bad-limit"), meta={"node_limit": ["node9"]}),
     InvalidInput, "meta.node_limit[0]: unknown node 'node9'"),
    (lambda s: define_vm(s, domain_xml("bad-node"), node="node9"), NotFound, "node9"),
    (lambda s: set_vm_state(s, "existing", VMState.SHUTDOWN), Conflict,
     "is stop: cannot change to shutdown"),
    (lambda s: migrate_vm(s, "existing", "node9"), NotFound, "node9"),
    (lambda s: set_vm_meta(s, "existing", node_limit=["node1", "nodeX"]), InvalidInput,
     "meta.node_limit"),
    (lambda s: set_vm_state(s, "existing", "sleep"), InvalidInput,
     "unknown VM state 'sleep'"),
])
def test_bad_input_changes_nothing(store: Store, call, error, text) -> None:  # type: ignore[no-untyped-def]
    define_vm(store, domain_xml("existing"), node="node1")
    before = snapshot(store.zk, store.ks.vms())
    with pytest.raises(error) as err:
        call(store)
    assert text in str(err.value)
    assert snapshot(store.zk, store.ks.vms()) == before
