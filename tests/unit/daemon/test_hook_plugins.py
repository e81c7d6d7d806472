"""Hook plugins enabled by the top-level ``plugins`` key (pvc_core.daemon.plugins).

A throwaway distribution registers plugins in ``pvc.plugins`` at test time;
the configuration names which of them a daemon loads.
"""

from __future__ import annotations

from typing import Any

import pytest

from pvc_core.config import Config, ConfigInvalid, parse_config
from pvc_core.daemon.plugins import enabled_plugins, load_hook_plugins
from pvc_core.errors import DriverLoadError
from pvc_core.hooks.manager import HookManager
from pvc_core.hooks.specs import PLUGIN_GROUP
from tests.unit.fake_dist import (
    FakeDistInstaller,
    fake_dist,  # noqa: F401 - a fixture
)

MODULE = '''
from pvc_core.hooks.specs import hookimpl


class Disk:
    @hookimpl
    def pvc_collect_health_checks(self, node):
        return [{"name": "disk", "ok": False, "message": "full on " + node}]


@hookimpl
def pvc_collect_keepalive_stats(node):
    return {"temperature": 41}
'''


def _config(**extra: Any) -> Config:
    return parse_config({"cluster": {"nodes": ["node1"]}, "node": {"name": "node1"},
                         "hypervisor": {"driver": "fake"}, **extra})


@pytest.fixture
def plugins(fake_dist: FakeDistInstaller) -> FakeDistInstaller:  # noqa: F811
    fake_dist.install("pvc-site-plugins", {PLUGIN_GROUP: {
        "disk": "pvc_site_plugins_mod:Disk",
        "thermal": "pvc_site_plugins_mod",
        "broken": "pvc_site_plugins_missing_module",
    }}, {"pvc_site_plugins_mod": MODULE})
    return fake_dist


def test_no_plugins_by_default() -> None:
    config = _config()
    assert enabled_plugins(config) == []
    hooks = HookManager()
    assert load_hook_plugins(hooks, config) == []
    assert hooks.plugin_names() == []


def test_configured_plugins_are_loaded_in_order(plugins: FakeDistInstaller) -> None:
    config = _config(plugins=["thermal", "disk"])
    hooks = HookManager()
    hooks.register(object(), "hypervisor.fake")  # drivers come first; plugins join them
    assert load_hook_plugins(hooks, config) == ["thermal", "disk"]
    assert hooks.plugin_names() == ["disk", "hypervisor.fake", "thermal"]
    health = hooks.call_with_deadline("pvc_collect_health_checks", 5.0, node="node1")
    assert health.by_plugin() == {"disk": [{"name": "disk", "ok": False,
                                            "message": "full on node1"}]}
    stats = hooks.call_with_deadline("pvc_collect_keepalive_stats", 5.0, node="node1")
    assert stats.by_plugin() == {"thermal": {"temperature": 41}}
    # A second call for the same manager (make_app twice on one context) changes nothing.
    assert load_hook_plugins(hooks, config) == []
    assert hooks.plugin_names() == ["disk", "hypervisor.fake", "thermal"]


def test_not_enabled_broken_plugin_is_ignored(plugins: FakeDistInstaller) -> None:
    assert load_hook_plugins(HookManager(), _config(plugins=["disk"])) == ["disk"]


@pytest.mark.parametrize(("names", "message"), [
    (["disk", "nope"], "hook plugin 'nope' is not installed (entry points in pvc.plugins: "
                       "broken, disk, health_basic, thermal)"),
    (["disk", "broken"], "hook plugin 'broken' (pvc.plugins) failed to import: "
                         "ModuleNotFoundError"),
])
def test_enabled_plugin_missing_or_broken_fails_clearly(
        plugins: FakeDistInstaller, names: list[str], message: str) -> None:
    hooks = HookManager()
    with pytest.raises(DriverLoadError) as err:
        load_hook_plugins(hooks, _config(plugins=names))
    assert message in str(err.value)
    assert hooks.plugin_names() == []  # "disk" loaded first, then rolled back


@pytest.mark.parametrize(("value", "message"), [
    ("health_basic", "plugins: must be a list, got \"health_basic\""),
    ([42], "plugins[0]: must be a hook plugin name: an entry point of pvc.plugins"),
    (["disk", None], "plugins[1]: must be a hook plugin name"),
    (["Disk"], "plugins[0]: must be a hook plugin name"),
    (["disk", "disk"], "plugins[1]: duplicate of plugins[0]"),
])
def test_invalid_plugins_key_names_the_key_path(value: object, message: str) -> None:
    with pytest.raises(ConfigInvalid) as err:
        _config(plugins=value)
    assert str(err.value).startswith(message), str(err.value)
