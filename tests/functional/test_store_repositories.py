"""Repositories against a real ZooKeeper: CAS, transactions, bad input."""

from __future__ import annotations

import threading
import uuid

import pytest

from pvc_core.errors import AlreadyExists, InvalidInput, NotFound, VersionConflict
from pvc_core.states import DaemonState, DomainState, VMState
from pvc_core.store import Store
from pvc_core.store.records import Placement, VmMeta
from pvc_core.store.zk import Op
from tests.helpers import snapshot

XML = "<domain type='test'><name>{n}</name></domain>"


def define(store: Store, name: str, **kw: object):  # type: ignore[no-untyped-def]
    return store.vms.define(str(uuid.uuid4()), name, XML.format(n=name), **kw)  # type: ignore[arg-type]


def test_define_read_change_remove(store: Store) -> None:
    vm = define(store, "web1", meta=VmMeta(node_limit=("node1", "node2"), autostart=True),
                node="node1", state=VMState.START)
    got = store.vms.get("web1")
    assert got.uuid == vm.uuid and got.name == "web1"
    assert got.meta.node_limit == ("node1", "node2") and got.meta.autostart
    assert got.state.state is VMState.START and got.placement.node == "node1"
    assert store.vms.resolve(vm.uuid.upper()) == vm.uuid
    store.vms.set_state("web1", VMState.STOP, reason="test")
    store.vms.update_placement("web1", lambda p: Placement("node2", p.node))
    meta = store.vms.update_meta("web1", selector="memprov", tags=["db"])
    assert meta.selector == "memprov" and meta.tags == ("db",) and meta.autostart
    got = store.vms.get(vm.uuid)
    assert got.state.state is VMState.STOP and got.placement == Placement("node2", "node1")
    assert store.vms.get_xml("web1").value.startswith("<domain")
    store.vms.remove("web1")
    with pytest.raises(NotFound):
        store.vms.get("web1")
    assert store.zk.exists(store.ks.vm_name("web1")) is None
    assert store.zk.exists(store.ks.vm(vm.uuid)) is None


def test_failed_define_leaves_nothing(store: Store) -> None:
    define(store, "taken")
    before = snapshot(store.zk, store.ks.root)
    new_uuid = str(uuid.uuid4())
    with pytest.raises(AlreadyExists, match="name 'taken' is already taken"):
        store.vms.define(new_uuid, "taken", XML.format(n="x"))
    assert snapshot(store.zk, store.ks.root) == before
    assert store.zk.exists(store.ks.vm(new_uuid)) is None


@pytest.mark.parametrize("call, field", [
    (lambda s: s.vms.define("not-a-uuid", "ok", "<domain/>"), "uuid"),
    (lambda s: s.vms.define(str(uuid.uuid4()), "bad name!", "<domain/>"), "name"),
    (lambda s: s.vms.define(str(uuid.uuid4()), "ok", "   "), "xml"),
    (lambda s: s.vms.define(str(uuid.uuid4()), "ok", "<domain/>",
                            meta=VmMeta.from_dict({"node_limit": ["Bad_Node"]})),
     "meta.node_limit[0]"),
    (lambda s: s.vms.update_meta("existing", selector="fastest"), "meta.selector"),
    (lambda s: s.vms.update_meta("existing", colour="blue"), "meta.colour"),
    (lambda s: s.vms.update_meta("existing", max_downtime_ms=0), "meta.max_downtime_ms"),
    (lambda s: s.nodes.register("Node_1", {}), "node"),
    (lambda s: s.jobs.get("../etc"), "job"),
])
def test_bad_input_is_rejected_and_changes_nothing(store: Store, call, field) -> None:  # type: ignore[no-untyped-def]
    define(store, "existing")
    before = snapshot(store.zk, store.ks.root)
    with pytest.raises(InvalidInput) as err:
        call(store)
    assert str(err.value).startswith(f"{field}:"), str(err.value)
    assert snapshot(store.zk, store.ks.root) == before


def test_unknown_vm_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="'ghost' does not exist"):
        store.vms.get("ghost")
    with pytest.raises(NotFound):
        store.vms.set_state(str(uuid.uuid4()), VMState.START)


def test_compare_and_set_conflict_is_detected(store: Store) -> None:
    vm = define(store, "cas1")
    version = store.vms.get("cas1").versions["state"]
    store.vms.set_state("cas1", VMState.START, expected_version=version)
    with pytest.raises(VersionConflict):
        store.vms.set_state("cas1", VMState.STOP, expected_version=version)
    assert store.vms.get(vm.uuid).state.state is VMState.START

    primary = store.cluster.get_primary()
    store.cluster.set_primary("node1", primary.version)
    with pytest.raises(VersionConflict):
        store.cluster.set_primary("node2", primary.version)
    assert store.cluster.get_primary().value == "node1"


def test_concurrent_updates_lose_nothing(store: Store) -> None:
    store.nodes.register("node1", {"counter": 0})
    done: list[int] = []

    def bump() -> None:
        for _ in range(10):
            store.nodes.update("node1", lambda r: type(r)(
                r.name, r.daemon_state, r.coordinator_state, r.domain_state,
                {"counter": r.info["counter"] + 1}))
            done.append(1)

    threads = [threading.Thread(target=bump) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 50
    assert store.nodes.get("node1").value.info["counter"] == 50


def test_transaction_is_all_or_nothing(store: Store) -> None:
    base = store.ks.jobs()
    before = snapshot(store.zk, store.ks.root)
    with pytest.raises(AlreadyExists):
        store.zk.transaction([Op.create(f"{base}/a"), Op.create(f"{base}/b"),
                              Op.create(store.ks.primary())])
    assert snapshot(store.zk, store.ks.root) == before


def test_node_register_keeps_states(store: Store) -> None:
    store.nodes.register("node1", {"v": 1})
    store.nodes.set_states("node1", domain_state=DomainState.FLUSHED,
                           daemon_state=DaemonState.RUN)
    rec = store.nodes.register("node1", {"v": 2})
    assert rec.domain_state is DomainState.FLUSHED and rec.info == {"v": 2}
    # a registering daemon is starting: never its new info with the old run
    assert rec.daemon_state is DaemonState.INIT
    assert [n.name for n in store.nodes.all()] == ["node1"]


def test_jobs_faults_decisions(store: Store) -> None:
    job = store.jobs.create("flush", {"node": "node1"})
    store.jobs.update(job["id"], lambda j: {**j, "state": "running"})
    with pytest.raises(InvalidInput):
        store.jobs.update(job["id"], lambda j: {**j, "state": "exploded"})
    assert store.jobs.get(job["id"]).value["state"] == "running"
    assert [j["id"] for j in store.jobs.all()] == [job["id"]]

    f1 = store.faults.raise_fault("n1-reserve", "cluster", "cannot lose a node")
    f2 = store.faults.raise_fault("n1-reserve", "cluster", "still cannot")
    assert f1["id"] == f2["id"] and f2["count"] == 2
    store.faults.acknowledge(f1["id"])
    assert store.faults.get(f1["id"])["acknowledged"] is True
    store.faults.delete(f1["id"])
    assert store.faults.all() == []

    store.decisions.max_records = 5
    for i in range(8):
        store.decisions.append("suspect", f"n{i}", node="node2" if i % 2 else "node3")
    records = store.decisions.query()
    assert len(records) == 5 and [r.outcome for r in records] == [f"n{i}" for i in range(3, 8)]
    assert [r.outcome for r in store.decisions.query(node="node2")] == ["n3", "n5", "n7"]
    assert [r.outcome for r in store.decisions.query(limit=2)] == ["n6", "n7"]


def test_register_after_liveness_created_an_empty_node(store: Store) -> None:
    store.zk.create(store.ks.node_alive("node9"), b"", ephemeral=True, makepath=True)
    rec = store.nodes.register("node9", {"cpus": 4})
    assert rec.name == "node9" and rec.info == {"cpus": 4}
    assert store.nodes.get("node9").value.daemon_state.value == "init"
