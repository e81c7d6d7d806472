"""Hook plugins enabled by name from the pvc.plugins entry-point group."""

from __future__ import annotations

import pytest

from pvc_core.errors import DriverLoadError
from pvc_core.hooks.manager import HookManager
from pvc_core.hooks.specs import PLUGIN_GROUP
from tests.unit.fake_dist import FakeDistInstaller

MODULE = '''
from pvc_core.hooks.specs import hookimpl


@hookimpl
def pvc_collect_health_checks(node):
    return [{"name": "thirdparty", "ok": True, "message": "fine on " + node}]


class Counter:
    @hookimpl
    def pvc_collect_keepalive_stats(self, node):
        return {"counter": 1}


class Unknown:
    @hookimpl
    def pvc_no_such_hook(self, node):
        return None


class Explodes:
    def __init__(self):
        raise RuntimeError("no config file")
'''


@pytest.fixture
def plugins(fake_dist: FakeDistInstaller) -> FakeDistInstaller:
    fake_dist.install("thirdparty-hooks", {PLUGIN_GROUP: {
        "health": "thirdparty_hooks_mod",
        "counter": "thirdparty_hooks_mod:Counter",
        "broken": "no_such_hooks_module",
        "unknown": "thirdparty_hooks_mod:Unknown",
        "explodes": "thirdparty_hooks_mod:Explodes",
    }}, {"thirdparty_hooks_mod": MODULE})
    return fake_dist


def test_named_plugins_are_loaded(plugins: FakeDistInstaller) -> None:
    hooks = HookManager()
    assert hooks.load_entrypoints(["health", "counter"]) == ["health", "counter"]
    assert hooks.plugin_names() == ["counter", "health"]
    checks = hooks.call_with_deadline("pvc_collect_health_checks", 5.0, node="hv1")
    assert checks.by_plugin() == {
        "health": [{"name": "thirdparty", "ok": True, "message": "fine on hv1"}]}
    stats = hooks.call_with_deadline("pvc_collect_keepalive_stats", 5.0, node="hv1")
    assert stats.by_plugin() == {"counter": {"counter": 1}}


def test_broken_plugin_enabled_fails_clearly(plugins: FakeDistInstaller) -> None:
    with pytest.raises(DriverLoadError, match="hook plugin 'broken' .pvc.plugins. failed to "
                                              "import: ModuleNotFoundError"):
        HookManager().load_entrypoints(["broken"])


def test_missing_plugin_names_known_ones(plugins: FakeDistInstaller) -> None:
    with pytest.raises(DriverLoadError, match="'nope' is not installed .*broken, counter, "
                                              "explodes, health, health_basic, unknown"):
        HookManager().load_entrypoints(["nope"])


def test_plugin_that_matches_no_spec_fails_and_rolls_back(plugins: FakeDistInstaller) -> None:
    hooks = HookManager()
    with pytest.raises(DriverLoadError, match="hook plugin 'unknown' .pvc.plugins. cannot be "
                                              "registered: .*pvc_no_such_hook"):
        hooks.load_entrypoints(["health", "unknown"])
    assert hooks.plugin_names() == []  # "health" was registered, then removed again


def test_plugin_class_that_cannot_be_instantiated(plugins: FakeDistInstaller) -> None:
    with pytest.raises(DriverLoadError, match="hook plugin 'explodes' .pvc.plugins. failed to "
                                              "initialise: RuntimeError: no config file"):
        HookManager().load_entrypoints(["explodes"])


def test_a_name_registered_twice_fails_clearly(plugins: FakeDistInstaller) -> None:
    hooks = HookManager()
    hooks.load_entrypoints(["health"])
    with pytest.raises(DriverLoadError, match="hook plugin 'health' .* cannot be registered"):
        hooks.load_entrypoints(["counter", "health"])
    assert hooks.plugin_names() == ["health"]
