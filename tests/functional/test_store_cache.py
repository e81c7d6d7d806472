"""ClusterCache against a real ZooKeeper: initial load, every kind of change,
session loss, connection loss, periodic resync, and a 2000-VM load."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from pvc_core.errors import NotFound, StoreUnavailable
from pvc_core.keyspace import Keyspace
from pvc_core.ops.view import read_view
from pvc_core.states import DaemonState, DomainState, VMState
from pvc_core.store import Store
from pvc_core.store.cache import ClusterCache
from pvc_core.store.codec import encode
from pvc_core.store.records import Placement, VmMeta, VmRecord, VmStateRecord
from pvc_core.store.zk import Op, ZkClient
from tests.functional.test_election import Proxy

pytestmark = pytest.mark.zookeeper

XML = "<domain type='test'><name>{n}</name></domain>"
WAIT = 15.0

CacheFactory = Callable[..., ClusterCache]


@pytest.fixture
def cache_factory(zk_factory: Callable[..., ZkClient], keyspace: Keyspace,
                  store: Store) -> Iterator[CacheFactory]:
    """Start ClusterCaches, each on its own session (as the API has); stopped afterwards."""
    made: list[ClusterCache] = []

    def make(zk: ZkClient | None = None, resync_interval: float = 600.0) -> ClusterCache:
        cache = ClusterCache(zk or zk_factory(), keyspace, resync_interval=resync_interval)
        made.append(cache)
        cache.start(timeout=WAIT)
        return cache

    yield make
    for cache in made:
        cache.stop()


def define(store: Store, name: str, **kw: object) -> VmRecord:
    return store.vms.define(str(uuid.uuid4()), name, XML.format(n=name),  # type: ignore[arg-type]
                            **kw)


def by_name(records: list[VmRecord]) -> list[VmRecord]:
    return sorted(records, key=lambda v: (v.name, v.uuid))


def is_fresh(cache: ClusterCache) -> bool:
    try:
        cache.check_fresh()
    except StoreUnavailable:
        return False
    return True


def shows(cache: ClusterCache, check: Callable[[], bool]) -> bool:
    """Wait until ``check`` holds, treating a missing record as "not yet"."""
    def safe() -> bool:
        try:
            return check()
        except NotFound:
            return False
    return cache.wait_for(safe, WAIT)


def keepalive(store: Store, node: str, seq: int, stats: dict[str, object]) -> None:
    path = store.ks.node_keepalive(node)
    data = encode({"seq": seq, "stats": stats})
    if store.zk.exists(path) is None:
        store.zk.create(path, data)
    else:
        store.zk.set(path, data)


# -- initial load -----------------------------------------------------------------


def populate(store: Store, alive_client: ZkClient) -> dict[str, VmRecord]:
    store.nodes.register("hv1", {"memory_total_mib": 8192, "live_migration": True})
    store.nodes.register("hv2", {"memory_total_mib": 4096})
    store.nodes.set_states("hv1", daemon_state=DaemonState.RUN)
    keepalive(store, "hv1", 1, {"load": 0.5, "memory_total_mib": 8000, "vm_stats": {}})
    alive_client.create(store.ks.node_alive("hv1"), b"", ephemeral=True)
    vms = {
        "web1": define(store, "web1", node="hv1", state=VMState.START, memory_mib=1024, vcpus=2,
                       meta=VmMeta(node_limit=("hv1", "hv2"), autostart=True, tags=("web",))),
        "db1": define(store, "db1", node="hv2", memory_mib=2048, vcpus=4,
                      meta=VmMeta(selector="mem", anti_affinity="db")),
        "idle": define(store, "idle"),
    }
    store.vms.set_state("web1", VMState.START, reason="again")  # versions differ per znode
    store.jobs.create("flush", {"node": "hv2"}, by="test")
    store.jobs.create("ready", {"node": "hv2"})
    store.faults.raise_fault("reserve", "cluster", "N-1 reserve lost", "critical")
    store.faults.raise_fault("fence", "hv2", "fence failed")
    store.cluster.set_maintenance(True)
    store.cluster.set_primary("hv1", store.cluster.get_primary().version)
    return vms


def test_initial_load_matches_the_store(store: Store, cache_factory: CacheFactory,
                                        zk_factory: Callable[..., ZkClient]) -> None:
    vms = populate(store, zk_factory())
    cache = cache_factory()
    cache.check_fresh()

    expected = by_name(store.vms.all())
    assert len(expected) == 3
    assert cache.vms() == expected
    for record in expected:
        got = cache.vm(record.name)
        assert got == store.vms.get(record.name)
        assert got.versions == store.vms.get(record.uuid).versions
        assert cache.vm(record.uuid) == got
        assert cache.vm(record.uuid.upper()) == got
    assert cache.vm("web1").versions == {"meta": 0, "state": 1, "placement": 0}
    assert cache.vm("web1").uuid == vms["web1"].uuid

    assert [n.record for n in cache.nodes()] == store.nodes.all()
    assert cache.node("hv1").stats == {"load": 0.5, "memory_total_mib": 8000, "vm_stats": {}}
    assert cache.node("hv1").alive and cache.node("hv1").record.daemon_state is DaemonState.RUN
    assert cache.node("hv2").stats == {} and not cache.node("hv2").alive

    assert cache.jobs() == store.jobs.all() and len(cache.jobs()) == 2
    job = store.jobs.all()[0]
    assert cache.job(job["id"]) == store.jobs.get(job["id"]).value
    assert cache.faults() == store.faults.all() and len(cache.faults()) == 2
    assert cache.cluster_config() == store.cluster.get_config().value
    assert cache.cluster_config()["maintenance"] is True
    assert cache.primary() == "hv1"

    view, direct = cache.view(), read_view(store)
    assert view.nodes == direct.nodes and view.stats == direct.stats
    assert by_name(view.vms) == by_name(direct.vms)
    assert view.node_views() == direct.node_views()


def test_unknown_names_are_not_found(store: Store, cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    with pytest.raises(NotFound, match="VM 'ghost' does not exist"):
        cache.vm("ghost")
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"VM '{missing}' does not exist"):
        cache.vm(missing)
    with pytest.raises(NotFound, match="node 'hv9' does not exist"):
        cache.node("hv9")
    with pytest.raises(NotFound, match="job 'nope' does not exist"):
        cache.job("nope")
    assert cache.vms() == [] and cache.nodes() == [] and cache.primary() is None
    assert cache.cluster_config() == {"maintenance": False}


def test_callers_cannot_change_the_cache(store: Store, cache_factory: CacheFactory,
                                         zk_factory: Callable[..., ZkClient]) -> None:
    populate(store, zk_factory())
    cache = cache_factory()
    vm = cache.vm("web1")
    with pytest.raises(TypeError):
        vm.versions["state"] = 99
    with pytest.raises(TypeError):
        vm.versions.update(state=99)
    with pytest.raises(dataclasses.FrozenInstanceError):
        vm.name = "other"  # type: ignore[misc]
    assert dataclasses.replace(vm).versions == vm.versions  # copies stay usable
    node = cache.node("hv1")
    node.stats["load"] = 99
    node.record.info["memory_total_mib"] = 1
    job = cache.jobs()[0]
    job["state"] = "failed"
    cache.cluster_config()["maintenance"] = False
    cache.view().stats["hv1"]["load"] = 99
    assert cache.vm("web1").versions == store.vms.get("web1").versions
    assert cache.node("hv1").stats["load"] == 0.5
    assert cache.node("hv1").record.info["memory_total_mib"] == 8192
    assert cache.job(job["id"])["state"] == "queued"
    assert cache.cluster_config()["maintenance"] is True


# -- changes after start -------------------------------------------------------------


def test_vm_changes_show_up(store: Store, cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    gen = cache.generation

    vm = define(store, "web1", node="hv1", memory_mib=512)
    assert shows(cache, lambda: cache.vm("web1") == store.vms.get("web1"))
    assert cache.generation > gen
    gen = cache.generation

    store.vms.set_state("web1", VMState.START, reason="test", by="me")
    assert shows(cache, lambda: cache.vm("web1").state == VmStateRecord(VMState.START, "test",
                                                                        "me"))
    assert cache.vm("web1").versions == store.vms.get("web1").versions == {
        "meta": 0, "state": 1, "placement": 0}
    assert cache.generation > gen
    gen = cache.generation

    store.vms.update_placement("web1", lambda p: Placement("hv2", p.node))
    assert shows(cache, lambda: cache.vm(vm.uuid).placement == Placement("hv2", "hv1"))
    assert cache.generation > gen

    store.vms.update_meta("web1", selector="memprov", tags=["db"])
    assert shows(cache, lambda: cache.vm("web1").meta.tags == ("db",))
    assert cache.vm("web1") == store.vms.get("web1")

    store.vms.set_xml("web1", XML.format(n="web1"), memory_mib=2048, vcpus=3)
    assert shows(cache, lambda: cache.vm("web1").memory_mib == 2048)
    assert cache.vm("web1") == store.vms.get("web1")
    assert cache.vms() == by_name(store.vms.all())

    gen = cache.generation
    store.vms.remove("web1")
    assert cache.wait_for(lambda: cache.vms() == [], WAIT)
    assert cache.generation > gen
    with pytest.raises(NotFound):
        cache.vm("web1")
    with pytest.raises(NotFound):
        cache.vm(vm.uuid)

    define(store, "web1", node="hv3")  # the name again, a new UUID
    assert shows(cache, lambda: cache.vm("web1").placement.node == "hv3")
    assert cache.vm("web1").uuid != vm.uuid


def test_node_changes_show_up(store: Store, cache_factory: CacheFactory,
                              zk_factory: Callable[..., ZkClient]) -> None:
    cache = cache_factory()
    store.nodes.register("hv1", {"memory_total_mib": 4096})
    assert shows(cache, lambda: cache.node("hv1").record == store.nodes.get("hv1").value)
    assert cache.node("hv1").stats == {} and not cache.node("hv1").alive

    store.nodes.set_states("hv1", daemon_state=DaemonState.RUN, domain_state=DomainState.FLUSH)
    assert shows(cache, lambda: cache.node("hv1").record.domain_state is DomainState.FLUSH)
    assert cache.node("hv1").record == store.nodes.get("hv1").value

    keepalive(store, "hv1", 1, {"load": 1.5})
    assert shows(cache, lambda: cache.node("hv1").stats == {"load": 1.5})
    keepalive(store, "hv1", 2, {"load": 2.5, "vm_stats": {"x": {}}})
    assert shows(cache, lambda: cache.node("hv1").stats.get("load") == 2.5)

    other = zk_factory()
    other.create(store.ks.node_alive("hv1"), b"", ephemeral=True)
    assert shows(cache, lambda: cache.node("hv1").alive)
    other.delete(store.ks.node_alive("hv1"))
    assert shows(cache, lambda: not cache.node("hv1").alive)
    other.create(store.ks.node_alive("hv1"), b"", ephemeral=True)
    assert shows(cache, lambda: cache.node("hv1").alive)
    other.stop()  # the session ends: the ephemeral znode goes with it
    assert shows(cache, lambda: not cache.node("hv1").alive)

    store.nodes.register("hv2", {})
    assert shows(cache, lambda: [n.record.name for n in cache.nodes()] == ["hv1", "hv2"])
    view, direct = cache.view(), read_view(store)
    assert view.nodes == direct.nodes and view.stats == direct.stats


def test_job_fault_and_cluster_changes_show_up(store: Store,
                                               cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    job = store.jobs.create("flush", {"node": "hv1"})
    assert shows(cache, lambda: cache.job(job["id"]) == job)
    store.jobs.update(job["id"], lambda j: {**j, "state": "running"})
    assert shows(cache, lambda: cache.job(job["id"])["state"] == "running")
    assert cache.jobs() == store.jobs.all()
    store.jobs.delete(job["id"])
    assert cache.wait_for(lambda: cache.jobs() == [], WAIT)

    fault = store.faults.raise_fault("reserve", "cluster", "lost")
    assert shows(cache, lambda: cache.faults() == [fault])
    store.faults.raise_fault("reserve", "cluster", "lost again")
    assert cache.wait_for(lambda: [f["count"] for f in cache.faults()] == [2], WAIT)
    store.faults.acknowledge(fault["id"])
    assert cache.wait_for(lambda: cache.faults()[0]["acknowledged"] is True, WAIT)
    assert cache.faults() == store.faults.all()
    store.faults.delete(fault["id"])
    assert cache.wait_for(lambda: cache.faults() == [], WAIT)
    again = store.faults.raise_fault("reserve", "cluster", "back")  # same id as before
    assert cache.wait_for(lambda: cache.faults() == [again], WAIT)

    store.cluster.set_maintenance(True)
    assert cache.wait_for(lambda: cache.cluster_config()["maintenance"] is True, WAIT)
    store.cluster.set_maintenance(False)
    assert cache.wait_for(lambda: cache.cluster_config()["maintenance"] is False, WAIT)

    store.cluster.set_primary("hv1", store.cluster.get_primary().version)
    assert cache.wait_for(lambda: cache.primary() == "hv1", WAIT)
    store.cluster.set_primary("hv2", store.cluster.get_primary().version)
    assert cache.wait_for(lambda: cache.primary() == "hv2", WAIT)
    store.cluster.set_primary(None, store.cluster.get_primary().version)
    assert cache.wait_for(lambda: cache.primary() is None, WAIT)


def test_a_vm_is_skipped_until_its_znodes_are_complete(store: Store,
                                                       cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    vm_uuid = str(uuid.uuid4())
    ks = store.ks
    store.zk.create(ks.vm(vm_uuid), encode({"name": "half", "meta": {}}))
    # Once a later change shows, the half VM has been read (events apply in order).
    job = store.jobs.create("marker", {})
    assert shows(cache, lambda: cache.job(job["id"]) == job)
    assert cache.vms() == []
    with pytest.raises(NotFound):
        cache.vm("half")
    store.zk.transaction([
        Op.create(ks.vm_state(vm_uuid), encode(VmStateRecord(VMState.STOP).to_dict())),
        Op.create(ks.vm_placement(vm_uuid), encode(Placement("hv1").to_dict())),
    ])
    assert shows(cache, lambda: cache.vm("half").placement.node == "hv1")
    assert cache.vm(vm_uuid) == store.vms.by_uuid(vm_uuid)


def test_a_record_deleted_and_recreated_between_listings_shows_up(
        store: Store, cache_factory: CacheFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault's own watch reports the deletion in one batch, its directory's
    watch in a later one, after the fault was raised again under the same id."""
    fault = store.faults.raise_fault("reserve", "cluster", "lost")
    cache = cache_factory()
    held: list[str] = []
    forward = cache._request

    def delaying(*, full: bool = False, paths: tuple[str, ...] = (),
                 dirs: tuple[str, ...] = ()) -> None:
        held.extend(d for d in dirs if d == store.ks.faults())
        forward(full=full, paths=paths, dirs=[d for d in dirs if d != store.ks.faults()])

    monkeypatch.setattr(cache, "_request", delaying)
    store.faults.delete(fault["id"])
    assert cache.wait_for(lambda: cache.faults() == [] and held == [store.ks.faults()], WAIT)
    again = store.faults.raise_fault("reserve", "cluster", "back")
    assert again["id"] == fault["id"]
    monkeypatch.undo()
    cache._request(dirs=held)
    assert cache.wait_for(lambda: cache.faults() == [again], WAIT)


def test_generation_is_unchanged_by_a_resync_that_finds_nothing(
        store: Store, cache_factory: CacheFactory) -> None:
    define(store, "web1")
    cache = cache_factory(resync_interval=0.2)
    gen, reloads = cache.generation, cache.reloads
    assert cache.wait_for(lambda: cache.reloads >= reloads + 2, WAIT)
    assert cache.generation == gen
    store.vms.set_state("web1", VMState.START)
    assert cache.wait_for(lambda: cache.generation > gen, WAIT)
    assert cache.vm("web1").state.state is VMState.START


# -- lost notifications, sessions and connections ---------------------------------------


def test_the_periodic_resync_catches_a_lost_notification(
        store: Store, cache_factory: CacheFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    vm = define(store, "web1")
    cache = cache_factory(resync_interval=1.0)
    lost_path = store.ks.vm_state(vm.uuid)
    dropped: list[str] = []
    forward = cache._request

    def lossy(*, full: bool = False, paths: tuple[str, ...] = (),
              dirs: tuple[str, ...] = ()) -> None:
        if lost_path in paths:
            dropped.append(lost_path)
            paths = tuple(p for p in paths if p != lost_path)
        forward(full=full, paths=paths, dirs=dirs)

    monkeypatch.setattr(cache, "_request", lossy)
    reloads = cache.reloads
    store.vms.set_state("web1", VMState.START)
    assert cache.wait_for(lambda: cache.vm("web1").state.state is VMState.START, WAIT)
    assert dropped == [lost_path]  # the watch fired, and its notification was lost
    assert cache.reloads > reloads  # so it was the resync that found the change
    assert cache.vm("web1") == store.vms.get("web1")


def test_a_lost_session_makes_the_cache_stale_until_it_reloaded(
        store: Store, cache_factory: CacheFactory, zk_factory: Callable[..., ZkClient],
        expire: Callable[[ZkClient], None]) -> None:
    define(store, "web1")
    client = zk_factory()
    cache = cache_factory(client)
    cache.check_fresh()
    seen: list[tuple[str, bool]] = []
    # A listener added after the cache's runs after it, in kazoo's thread, before
    # the reconnect: the cache must already refuse to serve.
    client.add_listener(lambda state: seen.append((state, is_fresh(cache))))
    expire(client)
    store.vms.set_state("web1", VMState.START, reason="while expired")
    assert cache.wait_for(lambda: ("LOST", False) in seen and ("CONNECTED", False) in seen,
                          WAIT), seen
    # Not fresh even once connected again, until the reload (which needs kazoo's
    # thread, busy running these listeners) has completed.
    assert all(not fresh for _, fresh in seen), seen
    assert cache.wait_for(lambda: is_fresh(cache), WAIT)
    assert cache.vm("web1").state.reason == "while expired"
    # Every watch was re-armed on the new session.
    store.vms.set_state("web1", VMState.STOP, reason="after")
    define(store, "web2")
    assert shows(cache, lambda: cache.vm("web1").state.reason == "after"
                 and cache.vm("web2").name == "web2")
    assert cache.vms() == by_name(store.vms.all())


def test_a_dropped_connection_rearms_every_watch(
        store: Store, cache_factory: CacheFactory, zk_hosts: str) -> None:
    """kazoo forgets all watches when its connection drops, even if the session
    survives: the cache reloads before it serves again."""
    vm = define(store, "web1")
    server, _, chroot = zk_hosts.partition("/")
    host, port = server.rsplit(":", 1)
    proxy = Proxy(host, int(port))
    client = ZkClient(f"127.0.0.1:{proxy.port}/{chroot}", session_timeout=8.0, op_timeout=3.0)
    client.start()
    try:
        cache = cache_factory(client)
        session = client.session_id
        seen: list[tuple[str, bool]] = []
        client.add_listener(lambda state: seen.append((state, is_fresh(cache))))
        proxy.cut("refuse")
        assert cache.wait_for(lambda: not is_fresh(cache), WAIT)
        with pytest.raises(StoreUnavailable):
            cache.check_fresh()
        store.vms.set_state("web1", VMState.START, reason="while cut")
        proxy.heal()
        assert cache.wait_for(lambda: is_fresh(cache), WAIT)
        assert client.session_id == session  # the same session: not a lost one
        assert ("SUSPENDED", False) in seen and ("CONNECTED", False) in seen, seen
        assert all(not fresh for _, fresh in seen), seen
        assert cache.vm("web1").state.reason == "while cut"
        store.vms.update_placement("web1", lambda p: Placement("hv2"))
        assert shows(cache, lambda: cache.vm(vm.uuid).placement.node == "hv2")
    finally:
        client.stop()
        proxy.close()


def test_start_and_stop(store: Store, zk_factory: Callable[..., ZkClient],
                        keyspace: Keyspace) -> None:
    cache = ClusterCache(zk_factory(), keyspace)
    with pytest.raises(StoreUnavailable):
        cache.check_fresh()
    cache.start(timeout=WAIT)
    cache.check_fresh()
    cache.stop()
    cache.stop()
    with pytest.raises(StoreUnavailable, match="not running"):
        cache.check_fresh()

    gone = zk_factory()
    gone.stop()
    dead = ClusterCache(gone, keyspace)
    with pytest.raises(StoreUnavailable, match="within 1s"):
        dead.start(timeout=1.0)


# -- scale --------------------------------------------------------------------------------


def test_two_thousand_vms_load(store: Store, cache_factory: CacheFactory) -> None:
    ks = store.ks
    count, per_tx = 2000, 100
    names = [f"vm{i:04d}" for i in range(count)]
    for start in range(0, count, per_tx):
        ops = []
        for i in range(start, start + per_tx):
            vm_uuid = str(uuid.uuid4())
            ops += [
                Op.create(ks.vm(vm_uuid), encode({
                    "name": names[i], "meta": VmMeta().to_dict(),
                    "resources": {"memory_mib": 256 + i, "vcpus": 1}})),
                Op.create(ks.vm_state(vm_uuid), encode(VmStateRecord(VMState.STOP).to_dict())),
                Op.create(ks.vm_placement(vm_uuid), encode(Placement(f"hv{i % 4}").to_dict())),
                Op.create(ks.vm_xml(vm_uuid), XML.format(n=names[i]).encode()),
                Op.create(ks.vm_name(names[i]), vm_uuid.encode()),
            ]
        store.zk.transaction(ops)
    t0 = time.monotonic()
    cache = cache_factory()
    loaded = time.monotonic() - t0
    t1 = time.monotonic()
    listed = cache.vms()
    listing = time.monotonic() - t1
    print(f"\ncache start with {count} VMs: {loaded:.2f}s; vms(): {listing * 1000:.2f}ms")
    assert len(listed) == count
    assert [v.name for v in listed] == names
    assert listed == by_name(store.vms.all())
    store.vms.set_state("vm1234", VMState.START)
    assert cache.wait_for(lambda: cache.vm("vm1234").state.state is VMState.START, WAIT)
