"""ReserveMonitor: when the N-1 fault is raised, updated and cleared (store stand-ins)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from pvc_core.daemon import reserve
from pvc_core.daemon.reserve import FAULT_KIND, FAULT_SUBJECT, ReserveMonitor
from pvc_core.errors import NotFound
from pvc_core.placement import NodeView
from pvc_core.store.faults import fault_id


@dataclass
class Faults:
    """Records what the monitor asks of the fault repository."""

    present: set[str] = field(default_factory=set)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def raise_fault(self, kind: str, subject: str, message: str, severity: str) -> None:
        self.calls.append(("raise", kind, subject, message, severity))
        self.present.add(fault_id(kind, subject))

    def delete(self, fid: str) -> None:
        self.calls.append(("delete", fid))
        if fid not in self.present:
            raise NotFound(fid)
        self.present.discard(fid)


class World:
    """The cluster the monitor sees: nodes of 4096 MiB with some memory allocated."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.allocated = {"node1": 0, "node2": 0, "node3": 0}
        self.primary = True
        self.faults = Faults()
        self.decisions: list[tuple[str, str]] = []
        monkeypatch.setattr(reserve, "reported_node_views", lambda _store: [
            NodeView(n, memory_total_mib=4096, memory_allocated_mib=a)
            for n, a in self.allocated.items()])
        ctx: Any = SimpleNamespace(
            config=SimpleNamespace(timers=SimpleNamespace(keepalive_interval=1.0)),
            store=SimpleNamespace(faults=self.faults),
            log=lambda _sub: logging.getLogger("test.reserve"),
            decide=lambda kind, outcome, **_kw: self.decisions.append((kind, outcome)))
        self.monitor = ReserveMonitor(ctx, lambda: self.primary)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch)


FID = fault_id(FAULT_KIND, FAULT_SUBJECT)


def test_raised_once_updated_when_the_numbers_change_and_cleared(world: World) -> None:
    check = world.monitor.tick()
    assert check is not None and check.ok
    assert world.faults.calls == [("delete", FID)]  # a new primary clears what it finds
    world.faults.calls.clear()

    world.allocated.update(node1=3000, node2=3000, node3=3000)
    check = world.monitor.tick()
    assert check is not None and not check.ok
    assert world.faults.calls == [("raise", FAULT_KIND, FAULT_SUBJECT, check.message(),
                                   "warning")]
    assert "need 9000 MiB, the other nodes have 8192 MiB" in check.message()
    world.monitor.tick()  # nothing changed: nothing written
    assert len(world.faults.calls) == 1

    world.allocated["node3"] = 3500
    world.monitor.tick()  # other numbers: the message is updated, no new decision
    assert [c[0] for c in world.faults.calls] == ["raise", "raise"]
    assert "need 9500 MiB" in world.faults.calls[-1][3]
    assert world.decisions == [("n-minus-one", "reserve lost")]

    world.allocated["node3"] = 0
    world.monitor.tick()
    assert world.faults.calls[-1] == ("delete", FID) and world.faults.present == set()
    world.monitor.tick()  # still fine: nothing more written
    assert len(world.faults.calls) == 3
    assert world.decisions == [("n-minus-one", "reserve lost"),
                               ("n-minus-one", "reserve restored")]


def test_only_the_primary_checks_and_a_new_term_starts_afresh(world: World) -> None:
    world.allocated.update(node1=3000, node2=3000, node3=3000)
    world.primary = False
    assert world.monitor.tick() is None and world.faults.calls == []
    world.primary = True
    world.monitor.tick()
    world.primary = False
    world.monitor.tick()
    world.primary = True
    world.monitor.tick()  # primary again: what the store holds is refreshed once
    assert [c[0] for c in world.faults.calls] == ["raise", "raise"]
