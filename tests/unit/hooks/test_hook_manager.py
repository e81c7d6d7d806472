"""The hook manager: isolation of plugins, deadlines, refusals."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

from pvc_core.errors import Conflict
from pvc_core.hooks.manager import HookManager, HookRefused
from pvc_core.hooks.specs import hookimpl

DEADLINE = 0.2
MARGIN = 0.5  # generous for a loaded CI machine; the point is "not stalled"


class Stats:
    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    @hookimpl
    def pvc_collect_keepalive_stats(self, node: str) -> dict[str, Any]:
        return {**self.value, "node": node}


class Blocked:
    """A plugin that blocks until released (never by sleeping)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def pvc_collect_keepalive_stats(self, node: str) -> dict[str, Any]:
        self.entered.set()
        self.release.wait(30)
        return {"late": True}


class Failing:
    @hookimpl
    def pvc_collect_keepalive_stats(self, node: str) -> dict[str, Any]:
        raise RuntimeError("sensor exploded")


class Refusing:
    @hookimpl
    def pvc_vm_about_to_start(self, vm_uuid: str, node: str) -> None:
        raise Conflict(f"volume of {vm_uuid} is locked elsewhere")


@pytest.fixture
def hooks() -> HookManager:
    return HookManager(logger=logging.getLogger("test.hooks"))


@pytest.fixture
def blocked(hooks: HookManager) -> Iterator[Blocked]:
    plugin = Blocked()
    hooks.register(plugin, "slow")
    yield plugin
    plugin.release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("pvc-hook-") and thread.name.endswith("-slow"):
            thread.join(5)


def test_call_with_deadline_collects_values_by_plugin(hooks: HookManager) -> None:
    hooks.register(Stats({"a": 1}), "one")
    hooks.register(Stats({"b": 2}), "two")
    results = hooks.call_with_deadline("pvc_collect_keepalive_stats", 5.0, node="hv1")
    assert results.ok
    assert results.by_plugin() == {"one": {"a": 1, "node": "hv1"},
                                   "two": {"b": 2, "node": "hv1"}}
    # pluggy's call order: last registered first
    assert [v.plugin for v in results.values] == ["two", "one"]


def test_overrunning_plugin_is_skipped_and_caller_not_stalled(
        hooks: HookManager, blocked: Blocked, caplog: pytest.LogCaptureFixture) -> None:
    hooks.register(Stats({"a": 1}), "fast")
    start = time.monotonic()
    results = hooks.call_with_deadline("pvc_collect_keepalive_stats", DEADLINE, node="hv1")
    elapsed = time.monotonic() - start
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + MARGIN
    assert blocked.entered.is_set()
    assert results.overran == ("slow",)
    assert results.by_plugin() == {"fast": {"a": 1, "node": "hv1"}}
    assert not results.ok
    assert "plugin 'slow' overran" in caplog.text


def test_plugin_still_running_is_busy_on_next_call(
        hooks: HookManager, blocked: Blocked, caplog: pytest.LogCaptureFixture) -> None:
    hooks.call_with_deadline("pvc_collect_keepalive_stats", DEADLINE, node="hv1")
    assert hooks.busy() == [("pvc_collect_keepalive_stats", "slow")]
    start = time.monotonic()
    results = hooks.call_with_deadline("pvc_collect_keepalive_stats", 10.0, node="hv1")
    assert time.monotonic() - start < MARGIN  # nothing else to wait for
    assert results.busy == ("slow",) and results.overran == ()
    assert "plugin 'slow' is still running" in caplog.text
    # once it returns, it is called again
    blocked.release.set()
    for thread in threading.enumerate():
        if thread.name == "pvc-hook-pvc_collect_keepalive_stats-slow":
            thread.join(5)
    assert hooks.busy() == []
    assert "returned" in caplog.text and "after its call gave up" in caplog.text
    results = hooks.call_with_deadline("pvc_collect_keepalive_stats", 5.0, node="hv1")
    assert results.by_plugin() == {"slow": {"late": True}}


def test_failing_plugin_is_logged_and_skipped(
        hooks: HookManager, caplog: pytest.LogCaptureFixture) -> None:
    hooks.register(Stats({"a": 1}), "good")
    hooks.register(Failing(), "bad")
    results = hooks.call_with_deadline("pvc_collect_keepalive_stats", 5.0, node="hv1")
    assert results.by_plugin() == {"good": {"a": 1, "node": "hv1"}}
    assert [f.plugin for f in results.failed] == ["bad"]
    assert isinstance(results.failed[0].error, RuntimeError)
    assert "plugin 'bad' raised RuntimeError: sensor exploded" in caplog.text
    assert results.problems() == ["bad: RuntimeError: sensor exploded"]


def test_system_exit_in_a_plugin_thread_is_contained(hooks: HookManager) -> None:
    class Exits:
        @hookimpl
        def pvc_node_started(self, node: str) -> None:
            raise SystemExit(3)

    hooks.register(Exits(), "exits")
    results = hooks.call_with_deadline("pvc_node_started", 5.0, node="hv1")
    assert isinstance(results.failed[0].error, SystemExit)


def test_refusal(hooks: HookManager) -> None:
    hooks.register(Refusing(), "storage")
    results = hooks.call_with_deadline("pvc_vm_about_to_start", 5.0, vm_uuid="u1", node="hv1")
    with pytest.raises(HookRefused, match="pvc_vm_about_to_start refused: storage: Conflict: "
                                          "volume of u1 is locked elsewhere") as err:
        results.raise_if_refused()
    assert err.value.status == 409
    assert err.value.results is results


def test_overrun_refuses_unless_told_otherwise(hooks: HookManager) -> None:
    release = threading.Event()

    class Slow:
        @hookimpl
        def pvc_vm_about_to_start(self, vm_uuid: str, node: str) -> None:
            release.wait(30)

    hooks.register(Slow(), "slowstorage")
    try:
        results = hooks.call_with_deadline("pvc_vm_about_to_start", 0.05,
                                           vm_uuid="u1", node="hv1")
        with pytest.raises(HookRefused, match="did not answer before the deadline"):
            results.raise_if_refused()
        results.raise_if_refused(overrun_refuses=False)
    finally:
        release.set()


def test_no_plugins_no_refusal(hooks: HookManager) -> None:
    results = hooks.call_with_deadline("pvc_vm_about_to_start", 0.0, vm_uuid="u1", node="hv1")
    assert results.ok and results.values == ()
    results.raise_if_refused()


def test_plugin_may_take_a_subset_of_arguments(hooks: HookManager) -> None:
    seen: list[str] = []

    class Partial:
        @hookimpl
        def pvc_vm_stopped(self, vm_uuid: str) -> None:
            seen.append(vm_uuid)

    hooks.register(Partial(), "partial")
    assert hooks.call_with_deadline("pvc_vm_stopped", 5.0, vm_uuid="u9", node="hv1").ok
    assert seen == ["u9"]


def test_non_blocking_call(hooks: HookManager, caplog: pytest.LogCaptureFixture) -> None:
    class Api:
        @hookimpl
        def pvc_api_controllers(self) -> dict[str, Any]:
            return {"/storage": "controller"}

    class BadApi:
        @hookimpl
        def pvc_api_controllers(self) -> dict[str, Any]:
            raise KeyError("x")

    hooks.register(Api(), "api")
    hooks.register(BadApi(), "badapi")
    results = hooks.call("pvc_api_controllers")
    assert results.by_plugin() == {"api": {"/storage": "controller"}}
    assert [f.plugin for f in results.failed] == ["badapi"]
    assert "plugin 'badapi' raised KeyError" in caplog.text


def test_blocking_hook_refuses_a_plain_call(hooks: HookManager) -> None:
    assert hooks.may_block("pvc_collect_keepalive_stats")
    assert not hooks.may_block("pvc_api_controllers")
    with pytest.raises(TypeError, match="may block: use call_with_deadline"):
        hooks.call("pvc_collect_keepalive_stats", node="hv1")


def test_wrong_arguments_and_unknown_hooks(hooks: HookManager) -> None:
    with pytest.raises(TypeError, match="takes \\['node'\\], got \\['nod'\\]"):
        hooks.call_with_deadline("pvc_node_started", 1.0, nod="hv1")
    with pytest.raises(TypeError, match="unknown hook 'pvc_nope'"):
        hooks.call_with_deadline("pvc_nope", 1.0)
    with pytest.raises(TypeError, match="unknown hook"):
        hooks.call("register")


def test_register_validates_implementations(hooks: HookManager) -> None:
    class Typo:
        @hookimpl
        def pvc_node_startd(self, node: str) -> None: ...

    class BadArg:
        @hookimpl
        def pvc_node_started(self, host: str) -> None: ...

    class Wrapper:
        @hookimpl(wrapper=True)
        def pvc_node_started(self, node: str) -> Any:
            return (yield)

    for plugin, name in ((Typo(), "typo"), (BadArg(), "badarg"), (Wrapper(), "wrapper")):
        with pytest.raises(pluggy.PluginValidationError):
            hooks.register(plugin, name)
        assert name not in hooks.plugin_names()


def test_register_unregister(hooks: HookManager) -> None:
    plugin = Stats({})
    hooks.register(plugin, "stats")
    with pytest.raises(ValueError):
        hooks.register(Stats({}), "stats")
    assert hooks.plugin_names() == ["stats"]
    assert hooks.unregister("stats") is plugin
    assert hooks.unregister("stats") is None
    assert hooks.call_with_deadline("pvc_collect_keepalive_stats", 1.0, node="n").values == ()


def test_managers_are_independent() -> None:
    first, second = HookManager(), HookManager()
    first.register(Stats({"a": 1}), "stats")
    assert second.call_with_deadline("pvc_collect_keepalive_stats", 1.0, node="n").values == ()
    assert len(first.call_with_deadline("pvc_collect_keepalive_stats", 1.0,
                                        node="n").values) == 1


def test_no_thread_available_fails_that_plugin_only(
        hooks: HookManager, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks.register(Stats({"a": 1}), "stats")

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    results = hooks.call_with_deadline("pvc_collect_keepalive_stats", 5.0, node="hv1")
    assert [f.plugin for f in results.failed] == ["stats"]
    assert hooks.busy() == []
