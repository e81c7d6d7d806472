"""The keepalive is written on time whatever its collectors do.

A hung collector (a driver call or a keepalive-stats plugin) costs at most
its deadline: the beat is written while the collector still hangs, the
next beats skip it at once, and the loop keeps beating. Paused and stopped
VMs are never asked for their stats. The fake hypervisor and plugins here
are in-process stand-ins; the liveness records the beats.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pvc_core.clock import SystemClock
from pvc_core.config import parse_config
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.keepalive import Keepalive
from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.hypervisor import DomainInfo, DomainState, DomainStats, HostStats
from pvc_core.hooks.manager import HookManager, HookResults
from pvc_core.hooks.specs import hookimpl
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver

#: Generous bound on waits for something that must happen (never a timing assertion).
WAIT = 10.0
UUIDS = {name: f"00000000-0000-0000-0000-00000000000{i}"
         for i, name in enumerate(("running", "paused", "stopped", "crashed"), start=1)}


def xml(name: str, memory_mib: int = 256) -> str:
    return (f"<domain type='test'><name>{name}</name><uuid>{UUIDS[name]}</uuid>"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>1</vcpu></domain>")


class Gate:
    """What hung collectors wait on; opened when the test ends."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()

    def hang(self) -> None:
        self.entered.set()
        self.open.wait(60)


class SlowHypervisor(FakeHypervisorDriver):
    """The fake hypervisor, with calls that hang on the gate when told to."""

    def __init__(self, gate: Gate, hang: set[str]) -> None:
        super().__init__({"memory_mib": 8192}, DriverContext(node="node1"))
        self.gate, self.hang = gate, hang
        self.stats_asked: list[str] = []

    def host_stats(self) -> HostStats:
        if "host_stats" in self.hang:
            self.gate.hang()
        return super().host_stats()

    def list_domains(self) -> list[DomainInfo]:
        if "list_domains" in self.hang:
            self.gate.hang()
        return super().list_domains()

    def domain_stats(self, uuid: str) -> DomainStats:
        self.stats_asked.append(uuid)
        if "domain_stats" in self.hang or self.domain_info(uuid).state is not DomainState.RUNNING:
            self.gate.hang()  # asking a guest that does not run would hang here
        return super().domain_stats(uuid)


class HungStats:
    """A keepalive-stats plugin that never answers (until the gate opens)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    @hookimpl
    def pvc_collect_keepalive_stats(self) -> dict[str, Any]:
        self.gate.hang()
        return {"late": True}


class GoodStats:
    @hookimpl
    def pvc_collect_keepalive_stats(self, node: str) -> dict[str, Any]:
        return {"fans": 3, "node": node}


class Beats:
    """Stands in for Liveness: records every beat's stats."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.cond = threading.Condition()

    def beat(self, stats: dict[str, Any]) -> int:
        with self.cond:
            self.written.append(dict(stats))
            self.cond.notify_all()
            return len(self.written)

    def wait_for(self, count: int, timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.written) >= count, timeout)


class DeadlineSpy(HookManager):
    """A hook manager that remembers the deadline of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.deadlines: list[tuple[str, float]] = []

    def call_with_deadline(self, hook: str, deadline_s: float, **kwargs: Any) -> HookResults:
        self.deadlines.append((hook, deadline_s))
        return super().call_with_deadline(hook, deadline_s, **kwargs)


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open.set()


def keepalive(hv: FakeHypervisorDriver, hooks: HookManager, beats: Beats,
              interval: float = 0.5) -> Keepalive:
    config = parse_config({"cluster": {"nodes": ["node1"]}, "node": {"name": "node1"},
                           "hypervisor": {"driver": "fake"},
                           "timers": {"keepalive_interval": interval}})
    ctx = NodeContext("node1", config, None, hv, hooks, SystemClock())  # type: ignore[arg-type]
    return Keepalive(ctx, beats, assigned=list)  # type: ignore[arg-type]


def beat_in_thread(ka: Keepalive) -> threading.Event:
    done = threading.Event()

    def run() -> None:
        ka.beat()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def test_a_hung_stats_plugin_does_not_hold_the_keepalive(gate: Gate) -> None:
    hooks = DeadlineSpy()
    hooks.register(HungStats(gate), "hung")
    hooks.register(GoodStats(), "good")
    beats = Beats()
    ka = keepalive(SlowHypervisor(gate, set()), hooks, beats)

    assert beat_in_thread(ka).wait(WAIT), "the beat waited for the hung plugin"
    assert gate.entered.is_set() and not gate.open.is_set()  # it hangs still
    first = beats.written[0]
    assert first["plugins"] == {"good": {"fans": 3, "node": "node1"}}
    assert "hung: did not answer before the deadline" in first["errors"]
    assert first["memory_total_mib"] == 8192  # the other collectors are all there
    # every hook call was given at most the beat's budget (0.8 of the interval)
    assert hooks.deadlines and all(0 < d <= 0.8 * ka.interval for _h, d in hooks.deadlines)

    assert beat_in_thread(ka).wait(WAIT)  # the next beat skips it: still busy
    assert "hung: still busy with a previous call" in beats.written[1]["errors"]
    assert beats.written[1]["plugins"] == first["plugins"]


def test_the_keepalive_loop_beats_on_while_a_plugin_hangs(gate: Gate) -> None:
    hooks = HookManager()
    hooks.register(HungStats(gate), "hung")
    beats = Beats()
    ka = keepalive(SlowHypervisor(gate, set()), hooks, beats, interval=0.2)
    ka.start()
    try:
        assert beats.wait_for(4), f"only {len(beats.written)} beats"
        assert not gate.open.is_set()
    finally:
        ka.stop()
    assert all(any(e.startswith("hung: ") for e in b["errors"]) for b in beats.written)


@pytest.mark.parametrize("call, error, missing", [
    ("host_stats", "host: ", "memory_total_mib"),
    ("list_domains", "domains: ", "vms_running"),
    ("domain_stats", "vm-stats: ", None),
])
def test_a_hung_driver_call_does_not_hold_the_keepalive(gate: Gate, call: str, error: str,
                                                        missing: str | None) -> None:
    hv = SlowHypervisor(gate, {call})
    hv.define(xml("running"))
    hv.start(UUIDS["running"])
    beats = Beats()
    ka = keepalive(hv, HookManager(), beats)

    assert beat_in_thread(ka).wait(WAIT), f"the beat waited for {call}"
    assert gate.entered.is_set() and not gate.open.is_set()
    stats = beats.written[0]
    assert any(e.startswith(error) for e in stats["errors"]), stats["errors"]
    if missing:
        assert missing not in stats
    assert stats["vms_assigned"] == 0 and stats["memory_provisioned_mib"] == 0
    assert beat_in_thread(ka).wait(WAIT)  # skipped at once the next time
    assert any(error in e and "still running" in e for e in beats.written[1]["errors"])


def test_paused_and_stopped_vms_are_not_asked_for_stats(gate: Gate) -> None:
    hv = SlowHypervisor(gate, set())  # asking a VM that does not run would hang
    for name in UUIDS:
        hv.define(xml(name, memory_mib=512))
    for name in ("running", "paused", "crashed"):
        hv.start(UUIDS[name])
    hv.pause(UUIDS["paused"])
    hv.crash(UUIDS["crashed"])
    beats = Beats()
    ka = keepalive(hv, HookManager(), beats)

    assert beat_in_thread(ka).wait(WAIT)
    stats = beats.written[0]
    assert hv.stats_asked == [UUIDS["running"]]
    assert not gate.entered.is_set()
    assert stats["errors"] == []
    assert set(stats["vm_stats"]) == {UUIDS["running"]}
    assert stats["vms_running"] == 1
    # a paused guest still holds its memory; stopped and crashed ones do not
    assert stats["memory_allocated_mib"] == 1024 and stats["vcpus_allocated"] == 2
