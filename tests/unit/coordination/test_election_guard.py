"""The coordinator's guard logic (dropping floating services), without ZooKeeper."""

from __future__ import annotations

import threading

import pytest

from pvc_core.clock import FakeClock
from pvc_core.config import parse_config
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.coordinator import Coordinator, _Interrupted
from pvc_core.errors import PVCError
from pvc_core.hooks.manager import HookManager
from pvc_core.hooks.specs import hookimpl
from pvc_core.keyspace import Keyspace
from pvc_core.states import CoordinatorState
from pvc_core.store import Store
from tests.unit.coordination.fakes import MemoryZk

C = CoordinatorState


class Services:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    @hookimpl
    def pvc_became_primary(self, node: str) -> None:
        self.calls.append(("up", node, threading.current_thread().name))

    @hookimpl
    def pvc_relinquishing_primary(self, node: str) -> None:
        self.calls.append(("down", node, threading.current_thread().name))


def make(name: str = "hv1", coordinators: tuple[str, ...] = ("hv1", "hv2")
         ) -> tuple[Coordinator, Services]:
    config = parse_config({
        "node": {"name": name}, "cluster": {"nodes": ["hv1", "hv2", "cl1"],
                                            "coordinators": list(coordinators)},
        "zookeeper": {"hosts": ["127.0.0.1:1"], "session_timeout": 8},
        "fencing": {"enabled": False}, "hypervisor": {"driver": "fake"}})
    hooks = HookManager()
    services = Services()
    hooks.register(services, "services")
    store = Store(MemoryZk(), Keyspace("/pvc"))  # type: ignore[arg-type]
    ctx = NodeContext(name, config, store, None, hooks, FakeClock())  # type: ignore[arg-type]
    return Coordinator(ctx), services


def test_roles_and_defaults() -> None:
    c, _ = make()
    assert c.is_coordinator and c.state is C.SECONDARY
    assert c.drop_deadline == 2.0  # a quarter of the session timeout, at most 2 s
    assert c.lock_wait == 30.0
    client, _ = make("cl1")
    assert not client.is_coordinator and client.state is C.CLIENT
    assert not (client.is_primary() or client.acts_as_primary() or client.holds_primary())


@pytest.mark.parametrize(("state", "answers"), [
    (C.SECONDARY, (False, False, False)),
    (C.TAKEOVER, (False, True, True)),
    (C.PRIMARY, (True, True, True)),
    (C.RELINQUISH, (False, False, True)),
])
def test_what_each_state_answers(state: C, answers: tuple[bool, bool, bool]) -> None:
    c, _ = make()
    c._state = state
    assert (c.is_primary(), c.acts_as_primary(), c.holds_primary()) == answers


@pytest.mark.parametrize("state", [C.TAKEOVER, C.PRIMARY, C.RELINQUISH])
def test_a_session_event_drops_the_services_at_once(state: C) -> None:
    c, services = make()
    c._state = state
    c._on_state("SUSPENDED")  # kazoo's thread: only queues the event
    assert services.calls == [] and c.state is state
    epoch, what = c._events.get_nowait()  # type: ignore[misc]
    assert what == "SUSPENDED"
    assert c._drop("ZooKeeper connection suspended", epoch)
    assert c.state is C.SECONDARY and not c.holds_primary()
    assert services.calls and services.calls[0][:2] == ("down", "hv1")
    assert c._record_dirty and c._gen == 1
    assert c._decisions[-1][0] == "secondary"
    assert [(t.old, t.new) for t in c.history] == [(state, C.SECONDARY)]
    assert not c._drop("again", None)  # idempotent: nothing left to drop
    assert len(services.calls) == 1


def test_a_session_event_older_than_the_takeover_is_ignored() -> None:
    c, services = make()
    c._on_state("SUSPENDED")
    c._on_state("CONNECTED")
    stale = c._events.get_nowait()
    assert stale is not None
    c._state, c._claim_epoch = C.PRIMARY, c._epoch  # took over after that event
    assert not c._drop("ZooKeeper connection suspended", stale[0])
    assert c.state is C.PRIMARY and services.calls == []
    c._on_state("LOST")
    fresh = c._events.get_nowait()
    assert fresh is not None and fresh[0] > c._claim_epoch and c._lost.is_set()
    assert c._drop("ZooKeeper session lost", fresh[0])
    assert c.state is C.SECONDARY


def test_a_secondary_or_client_has_nothing_to_drop() -> None:
    for name in ("hv1", "cl1"):
        c, services = make(name)
        c._on_state("LOST")
        assert not c._drop("ZooKeeper session lost", c._epoch)
        assert services.calls == []


def test_the_guard_thread_drops_and_stops() -> None:
    c, services = make()
    c._state = C.PRIMARY
    c._guard.start()
    c._on_state("SUSPENDED")
    assert c.wait_state(C.SECONDARY, timeout=5)
    c._halt.set()
    c._events.put(None)
    c._guard.join(5)  # it finishes the drop under way first
    assert not c._guard.is_alive()
    assert [call[:2] for call in services.calls] == [("down", "hv1")]


def test_a_drop_interrupts_the_step_under_way() -> None:
    c, _ = make()
    gen = c._gen
    c._state = C.PRIMARY
    c._drop("ZooKeeper connection suspended")
    with pytest.raises(_Interrupted):
        c._check(gen)
    with pytest.raises(_Interrupted):
        c._set(C.PRIMARY, gen, "too late", guarded=True)


def test_an_illegal_move_is_a_defect_not_a_silent_write() -> None:
    c, _ = make()
    with pytest.raises(PVCError, match="secondary cannot change to primary"):
        c._set(C.PRIMARY, c._gen, "skipping takeover", guarded=True)
    assert c.state is C.SECONDARY


def test_stop_before_start_and_client_stop_are_no_ops() -> None:
    c, services = make()
    zk = c.ctx.store.zk
    c.stop(0.1)
    assert c.state is C.SECONDARY and not c.holds_primary()
    assert not c._halt.is_set()  # not halted: a later start still contends
    assert not c._main.is_alive() and not c._guard.is_alive()
    assert services.calls == [] and list(c.history) == []
    assert zk.writes == 0 and zk.nodes == {}  # type: ignore[attr-defined]

    client, client_services = make("cl1")
    client.ctx.store.nodes.register("cl1", {})
    client.start()
    zk = client.ctx.store.zk
    before = dict(zk.nodes)  # type: ignore[attr-defined]
    writes = zk.writes  # type: ignore[attr-defined]
    client.stop(0.1)
    assert client.state is C.CLIENT
    assert not client._halt.is_set()
    assert not client._main.is_alive() and not client._guard.is_alive()
    assert client_services.calls == []
    assert zk.writes == writes and zk.nodes == before  # type: ignore[attr-defined]
