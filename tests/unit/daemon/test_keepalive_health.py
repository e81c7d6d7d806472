"""Health checks in the keepalive: collected under a deadline, normalised, logged.

The keepalive runs with a real HookManager and the fake hypervisor; plugins
are objects registered with the manager. A hanging plugin waits on an event
the test sets afterwards (never a sleep).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pvc_core.clock import SystemClock
from pvc_core.config import parse_config
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.keepalive import (
    MAX_CHECKS_PER_PLUGIN,
    MAX_MESSAGE,
    Keepalive,
    health_checks,
)
from pvc_core.drivers.base import DriverContext
from pvc_core.errors import DriverError
from pvc_core.hooks.manager import HookManager
from pvc_core.hooks.results import HookFailure, HookResults, HookValue
from pvc_core.hooks.specs import hookimpl
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver


def _ok(name: str) -> dict[str, Any]:
    return {"name": name, "ok": True, "message": f"{name} fine"}


# -- normalisation ---------------------------------------------------------------


def test_valid_checks_are_kept_with_their_plugin() -> None:
    results = HookResults("pvc_collect_health_checks", values=(
        HookValue("disk", [_ok("root"), {"name": "var", "ok": False, "message": "full",
                                         "extra": 1}], 0.01),
        HookValue("quiet", None, 0.0)))
    assert health_checks(results, 1.0) == [
        {"plugin": "disk", "name": "root", "ok": True, "message": "root fine"},
        {"plugin": "disk", "name": "var", "ok": False, "message": "full"},
    ]


def test_failures_overruns_busy_and_nonsense_are_failed_checks() -> None:
    results = HookResults(
        "pvc_collect_health_checks",
        values=(HookValue("odd", {"name": "x"}, 0.0),
                HookValue("half", [_ok("a"), {"name": "b", "ok": "yes", "message": "m"},
                                   "text", {"ok": True, "message": "m"}], 0.0)),
        failed=(HookFailure("boom", DriverError("sensor gone"), 0.0),),
        overran=("slow",), busy=("stuck",))
    assert health_checks(results, 0.5) == [
        {"plugin": "odd", "name": "odd", "ok": False,
         "message": "plugin odd returned dict, not a list of health checks"},
        {"plugin": "half", "name": "a", "ok": True, "message": "a fine"},
        {"plugin": "half", "name": "half", "ok": False,
         "message": "plugin half: health check #1 'b': ok must be true or false"},
        {"plugin": "half", "name": "half", "ok": False,
         "message": "plugin half: health check #2 is str, not a mapping"},
        {"plugin": "half", "name": "half", "ok": False,
         "message": "plugin half: health check #3 has no name (a non-empty string)"},
        {"plugin": "boom", "name": "boom", "ok": False,
         "message": "plugin boom raised DriverError: sensor gone"},
        {"plugin": "slow", "name": "slow", "ok": False,
         "message": "plugin slow did not answer within 0.5s"},
        {"plugin": "stuck", "name": "stuck", "ok": False,
         "message": "plugin stuck is still running an earlier health check"},
    ]


def test_checks_and_messages_are_bounded() -> None:
    many = [{"name": f"c{i}", "ok": True, "message": "x" * 1000} for i in range(80)]
    out = health_checks(HookResults("pvc_collect_health_checks",
                                    values=(HookValue("chatty", many, 0.0),)), 1.0)
    assert len(out) == MAX_CHECKS_PER_PLUGIN
    assert all(len(c["message"]) == MAX_MESSAGE for c in out[:-1])
    assert out[-1] == {"plugin": "chatty", "name": "chatty", "ok": False,
                       "message": f"plugin chatty returned 80 health checks; only the first "
                                  f"{MAX_CHECKS_PER_PLUGIN - 1} are kept"}


# -- the keepalive -----------------------------------------------------------------


class Gate:
    """Plugins that block until the test opens the gate."""

    def __init__(self) -> None:
        self.open = threading.Event()


class Healthy:
    @hookimpl
    def pvc_collect_health_checks(self, node: str) -> list[dict[str, Any]]:
        return [{"name": "fans", "ok": True, "message": f"fans of {node} spin"}]


class Failing:
    def __init__(self) -> None:
        self.ok = False

    @hookimpl
    def pvc_collect_health_checks(self) -> list[dict[str, Any]]:
        return [{"name": "raid", "ok": self.ok, "message": "ok" if self.ok else "degraded"}]


class HangingHealth:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    @hookimpl
    def pvc_collect_health_checks(self) -> list[dict[str, Any]]:
        self.gate.open.wait(30)
        return []


class HangingStats:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    @hookimpl
    def pvc_collect_keepalive_stats(self) -> dict[str, Any]:
        self.gate.open.wait(30)
        return {}


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open.set()


def keepalive(hooks: HookManager, interval: float = 1.0) -> Keepalive:
    config = parse_config({"cluster": {"nodes": ["node1"]}, "node": {"name": "node1"},
                           "hypervisor": {"driver": "fake"},
                           "timers": {"keepalive_interval": interval}})
    hv = FakeHypervisorDriver({"memory_mib": 4096}, DriverContext(node="node1"))
    ctx = NodeContext("node1", config, None, hv, hooks, SystemClock())  # type: ignore[arg-type]
    return Keepalive(ctx, liveness=None, assigned=list)  # type: ignore[arg-type]


def test_no_plugins_means_no_checks() -> None:
    stats = keepalive(HookManager()).collect()
    assert stats["health"] == []
    assert stats["memory_total_mib"] == 4096


def test_checks_of_every_plugin_are_in_the_stats(gate: Gate) -> None:
    hooks = HookManager()
    hooks.register(Healthy(), "healthy")
    hooks.register(Failing(), "failing")
    hooks.register(HangingHealth(gate), "hanging")
    stats = keepalive(hooks).collect()
    by_plugin = {c["plugin"]: c for c in stats["health"]}
    assert by_plugin["healthy"] == {"plugin": "healthy", "name": "fans", "ok": True,
                                    "message": "fans of node1 spin"}
    assert by_plugin["failing"] == {"plugin": "failing", "name": "raid", "ok": False,
                                    "message": "degraded"}
    overran = by_plugin["hanging"]
    assert overran["name"] == "hanging" and overran["ok"] is False
    assert overran["message"].startswith("plugin hanging did not answer within ")
    assert len(stats["health"]) == 3


def test_a_hung_plugin_is_busy_at_the_next_beat(gate: Gate) -> None:
    hooks = HookManager()
    hooks.register(HangingHealth(gate), "hanging")
    ka = keepalive(hooks)
    ka.collect()
    assert ka.collect()["health"] == [{
        "plugin": "hanging", "name": "hanging", "ok": False,
        "message": "plugin hanging is still running an earlier health check"}]


def test_hung_statistics_leave_time_for_health_checks(gate: Gate) -> None:
    hooks = HookManager()
    hooks.register(HangingStats(gate), "stats")
    hooks.register(Healthy(), "healthy")
    stats = keepalive(hooks).collect()
    assert stats["errors"] == ["stats: did not answer before the deadline"]
    assert [c["ok"] for c in stats["health"]] == [True]


def test_changes_of_a_check_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    hooks = HookManager()
    failing = Failing()
    hooks.register(failing, "failing")
    ka = keepalive(hooks)
    with caplog.at_level("INFO", logger="pvc"):
        ka.collect()
        ka.collect()
        failing.ok = True
        ka.collect()
        ka.collect()
    lines = [r.getMessage() for r in caplog.records if "health check" in r.getMessage()]
    assert lines == ["health check failing/raid failing: degraded",
                     "health check failing/raid no longer failing"]
