"""Liveness (alive znode + keepalive sequence) against a real ZooKeeper."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from pvc_core.clock import FakeClock
from pvc_core.coordination.liveness import Liveness, LivenessObserver
from pvc_core.errors import Conflict, InvalidInput
from pvc_core.keyspace import Keyspace
from pvc_core.store.zk import ZkClient

pytestmark = pytest.mark.zookeeper


def test_announce_and_beat(zk: ZkClient, keyspace: Keyspace) -> None:
    live = Liveness(zk, keyspace, "hv1")
    live.announce(b"v1")
    live.announce(b"v1")  # idempotent
    stat = zk.exists(keyspace.node_alive("hv1"))
    assert stat is not None and stat.ephemeralOwner == zk.session_id[0]  # type: ignore[index]
    assert live.beat({"mem": 1}) == 1
    assert live.beat({"mem": 2}) == 2
    raw, _ = zk.get(keyspace.node_keepalive("hv1"))
    assert json.loads(raw) == {"seq": 2, "stats": {"mem": 2}}
    with pytest.raises(InvalidInput):
        live.beat({"bad": object()})
    live.withdraw()
    live.withdraw()
    assert zk.exists(keyspace.node_alive("hv1")) is None


def test_sequence_continues_after_restart(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace) -> None:
    first = zk_factory()
    live = Liveness(first, keyspace, "hv1")
    live.announce()
    for _ in range(3):
        live.beat({})
    first.stop()
    again = Liveness(zk_factory(), keyspace, "hv1")
    again.announce()
    assert again.beat({}) == 4


def test_announce_waits_for_previous_session(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace) -> None:
    old_client = zk_factory()
    Liveness(old_client, keyspace, "hv1").announce()
    new = Liveness(zk_factory(), keyspace, "hv1")
    with pytest.raises(Conflict, match="owned by session"):
        new.announce()
    stopper = threading.Timer(0.3, old_client.stop)
    stopper.start()
    new.announce(wait=10)
    stopper.join()
    stat = new.client.exists(keyspace.node_alive("hv1"))
    assert stat is not None and stat.ephemeralOwner == new.client.session_id[0]  # type: ignore[index]


def test_observer_staleness_on_its_own_clock(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace) -> None:
    node = Liveness(zk_factory(), keyspace, "hv1")
    clock = FakeClock()
    observer = LivenessObserver(zk_factory(), keyspace, clock=clock)
    both = observer.observe(["hv1", "hv2"])
    assert not both["hv1"].session_alive and both["hv1"].seq == 0
    assert both["hv2"].stale_for == 0.0
    node.announce()
    node.beat({"load": 0.5})
    seen = observer.observe(["hv1"])["hv1"]
    assert seen.session_alive and seen.seq == 1 and seen.stale_for == 0.0
    assert seen.stats == {"load": 0.5}
    clock.advance(3)
    assert observer.observe(["hv1"])["hv1"].stale_for == 3.0
    clock.advance(2)
    assert observer.observe(["hv1"])["hv1"].stale_for == 5.0
    node.beat({})
    seen = observer.observe(["hv1"])["hv1"]
    assert seen.seq == 2 and seen.stale_for == 0.0
    clock.advance(1)
    assert observer.observe(["hv1", "hv2"])["hv2"].stale_for == 6.0
    observer.close()


def test_expired_session_is_seen_and_beat_reannounces(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace,
        expire: Callable[[ZkClient], None]) -> None:
    client = zk_factory()
    node = Liveness(client, keyspace, "hv1")
    node.announce()
    node.beat({})
    observer = LivenessObserver(zk_factory(), keyspace, clock=FakeClock())
    assert observer.observe(["hv1"])["hv1"].session_alive
    expire(client)
    assert node.lost.wait(10)
    seen = observer.observe(["hv1"])["hv1"]
    assert not seen.session_alive and seen.seq == 1
    assert client.wait_connected(10)
    assert node.beat({}) == 2  # announces again on the new session first
    seen = observer.observe(["hv1"])["hv1"]
    assert seen.session_alive and seen.session_id == client.session_id[0]  # type: ignore[index]
    observer.close()


def test_observer_disconnection_restarts_baselines(
        zk_factory: Callable[..., ZkClient], keyspace: Keyspace,
        expire: Callable[[ZkClient], None]) -> None:
    node = Liveness(zk_factory(), keyspace, "hv1")
    node.announce()
    node.beat({})
    clock = FakeClock()
    obs_client = zk_factory()
    observer = LivenessObserver(obs_client, keyspace, clock=clock)
    observer.observe(["hv1"])
    clock.advance(30)
    assert observer.observe(["hv1"])["hv1"].stale_for == 30.0
    lost = threading.Event()
    obs_client.add_listener(lambda state: lost.set() if state == "LOST" else None)
    expire(obs_client)  # the observer itself is cut off: its view restarts
    assert lost.wait(10)  # listeners run in order: the observer's flag is set by now
    assert obs_client.wait_connected(10)
    clock.advance(5)
    assert observer.observe(["hv1"])["hv1"].stale_for == 0.0
    observer.close()
