"""Schema version, refusal of newer schemas, and migration 0 -> latest."""

from __future__ import annotations

import json
import threading

import pytest

from pvc_core.errors import Conflict, NotFound, SchemaTooNew
from pvc_core.keyspace import SCHEMA_VERSION, Keyspace
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_core.store.zk import ZkClient

U1 = "11111111-2222-3333-4444-555555555555"
U2 = "66666666-7777-8888-9999-000000000000"
U3 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def populate_v0(zk: ZkClient, ks: Keyspace) -> None:
    """The original flat layout: one JSON blob per VM, no schema znode."""
    zk.create(ks.node("node1"), json.dumps({"name": "node1"}).encode(), makepath=True)
    blobs = {
        U1: {"name": "web", "state": "start", "node": "node1", "last_node": None,
             "xml": "<domain>web</domain>", "meta": {"autostart": True}},
        U2: {"name": "db", "state": "stop", "node": "node2", "last_node": "node1",
             "xml": "<domain>db</domain>"},
        U3: {"name": "web", "state": "disable", "node": "node1", "xml": "<domain>w2</domain>"},
    }
    for u, blob in blobs.items():
        zk.create(ks.vm(u), json.dumps(blob).encode(), makepath=True)


def test_fresh_tree_is_initialised_at_latest(zk: ZkClient, keyspace: Keyspace) -> None:
    store = Store(zk, keyspace)
    assert store.schema.version() is None
    assert store.schema.initialise() == SCHEMA_VERSION
    assert store.schema.initialise() == SCHEMA_VERSION  # idempotent
    assert store.cluster.get_primary().value is None
    assert store.cluster.maintenance() is False


def test_migration_from_0_to_latest_on_populated_tree(zk: ZkClient, keyspace: Keyspace) -> None:
    populate_v0(zk, keyspace)
    store = Store(zk, keyspace)
    assert store.schema.version() == 0
    assert store.schema.migrate() == list(range(1, SCHEMA_VERSION + 1))
    assert store.schema.version() == SCHEMA_VERSION

    web = store.vms.get(U1)
    assert (web.name, web.state.state, web.placement.node) == ("web", VMState.START, "node1")
    assert web.meta.autostart is True
    assert store.vms.get_xml(U1).value == "<domain>web</domain>"
    db = store.vms.get("db")
    assert db.placement.last_node == "node1" and db.state.state is VMState.STOP
    # the duplicate name was made unique, and both are reachable by name
    dup = store.vms.get(U3)
    assert dup.name == "web-aaaaaaaa" and store.vms.resolve("web-aaaaaaaa") == U3
    assert store.vms.resolve("web") == U1
    assert sorted(v.name for v in store.vms.all()) == ["db", "web", "web-aaaaaaaa"]
    # re-running is a no-op
    assert store.schema.migrate() == []


def test_newer_schema_is_refused(zk: ZkClient, keyspace: Keyspace) -> None:
    store = Store(zk, keyspace)
    store.schema.initialise()
    zk.set(keyspace.schema(), str(SCHEMA_VERSION + 1).encode())
    with pytest.raises(SchemaTooNew, match="refusing to act"):
        store.schema.check()
    with pytest.raises(SchemaTooNew):
        store.schema.migrate()
    assert zk.get(keyspace.schema())[0] == str(SCHEMA_VERSION + 1).encode()


def test_concurrent_migration_is_refused(zk: ZkClient, keyspace: Keyspace,
                                         zk_factory) -> None:  # type: ignore[no-untyped-def]
    populate_v0(zk, keyspace)
    other = zk_factory()
    other.create(keyspace.schema_lock(), b"", ephemeral=True, makepath=True)
    with pytest.raises(Conflict, match="in progress"):
        Store(zk, keyspace).schema.migrate()
    assert Store(zk, keyspace).schema.version() == 0


def test_second_migrator_waits_for_the_first(zk: ZkClient, keyspace: Keyspace,
                                            zk_factory) -> None:  # type: ignore[no-untyped-def]
    populate_v0(zk, keyspace)
    other = zk_factory()
    other.create(keyspace.schema_lock(), b"", ephemeral=True, makepath=True)
    result: list[list[int]] = []
    waiter = threading.Thread(
        target=lambda: result.append(Store(zk, keyspace).schema.migrate(wait=30)))
    waiter.start()
    # the waiter must still be blocked on the held lock, having changed nothing
    waiter.join(0.5)
    assert waiter.is_alive() and Store(zk, keyspace).schema.version() == 0
    other.delete(keyspace.schema_lock())
    waiter.join(30)
    assert result == [list(range(1, SCHEMA_VERSION + 1))]


def test_version_read_racing_initialise_is_not_legacy(zk: ZkClient, keyspace: Keyspace) -> None:
    """The data paths and the version appear in one transaction; a reader
    that saw no version and then the data paths re-reads the version."""
    store = Store(zk, keyspace)
    real_get = zk.get
    calls = {"n": 0}

    def get_initialising_after_first_miss(path: str):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            Store(zk, keyspace).schema.initialise()  # lands between the two reads
            raise NotFound(path)
        return real_get(path)

    zk.get = get_initialising_after_first_miss  # type: ignore[method-assign]
    try:
        assert store.schema.version() == SCHEMA_VERSION
    finally:
        zk.get = real_get  # type: ignore[method-assign]
