"""Observer staleness on its own clock, on an in-memory store."""

from __future__ import annotations

import json
from typing import Any, cast

from pvc_core.clock import FakeClock
from pvc_core.coordination.liveness import LivenessObserver
from pvc_core.keyspace import Keyspace

from .fakes import MemoryZk, Stat

KS = Keyspace("/pvc")


def put(zk: MemoryZk, name: str, seq: Any, wall: float = 0.0) -> None:
    doc = {"seq": seq, "stats": {"wall": wall}}
    zk.nodes[KS.node_keepalive(name)] = (json.dumps(doc).encode(), Stat())


def test_stale_for_follows_observer_clock_not_written_time() -> None:
    zk, clock = MemoryZk(), FakeClock()
    obs = LivenessObserver(cast(Any, zk), KS, clock=clock)
    zk.nodes[KS.node_alive("hv1")] = (b"", Stat(0, 99))
    put(zk, "hv1", 5, wall=1e12)  # a wildly wrong node clock changes nothing
    first = obs.observe(["hv1"])["hv1"]
    assert (first.session_alive, first.seq, first.stale_for, first.session_id) == \
        (True, 5, 0.0, 99)
    clock.advance(4)
    put(zk, "hv1", 5, wall=0.0)
    assert obs.observe(["hv1"])["hv1"].stale_for == 4.0
    put(zk, "hv1", 6)
    assert obs.observe(["hv1"])["hv1"].stale_for == 0.0
    clock.advance(1)
    assert obs.observe(["hv1"])["hv1"].stale_for == 1.0


def test_missing_and_garbage_keepalive_count_as_seq_zero() -> None:
    zk, clock = MemoryZk(), FakeClock()
    obs = LivenessObserver(cast(Any, zk), KS, clock=clock)
    seen = obs.observe(["hv1"])["hv1"]
    assert (seen.session_alive, seen.seq, seen.stats) == (False, 0, {})
    zk.nodes[KS.node_keepalive("hv1")] = (b"{not json", Stat())
    clock.advance(2)
    assert obs.observe(["hv1"])["hv1"].stale_for == 2.0
    put(zk, "hv1", True)  # a bool is not a sequence number
    assert obs.observe(["hv1"])["hv1"].seq == 0


def test_own_disconnection_and_forget_restart_baselines() -> None:
    zk, clock = MemoryZk(), FakeClock()
    obs = LivenessObserver(cast(Any, zk), KS, clock=clock)
    put(zk, "hv1", 1)
    put(zk, "hv2", 1)
    obs.observe(["hv1", "hv2"])
    clock.advance(10)
    zk.emit("SUSPENDED")
    zk.emit("CONNECTED")
    seen = obs.observe(["hv1", "hv2"])
    assert seen["hv1"].stale_for == 0.0 and seen["hv2"].stale_for == 0.0
    clock.advance(3)
    obs.forget("hv1")
    seen = obs.observe(["hv1", "hv2"])
    assert seen["hv1"].stale_for == 0.0 and seen["hv2"].stale_for == 3.0
    obs.close()
    assert zk.listeners == []
