"""A hook plugin enabled in ``plugins`` adds API resources through
``pvc_api_controllers``: the API server's own HookManager loads it, mounts
what it returns at /api/v1/<name> (validated, in the OpenAPI document), and
refuses to start on a name that is already taken. No ZooKeeper needed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from webob import Request

from pvc_api.app import make_app
from pvc_api.auth import KeyRing, hash_key
from pvc_api.context import ApiContext
from pvc_core.config import parse_config
from pvc_core.config.model import ApiKey
from pvc_core.errors import DriverLoadError
from pvc_core.hooks.specs import PLUGIN_GROUP
from tests.unit.fake_dist import (
    FakeDistInstaller,
    fake_dist,  # noqa: F401 - a fixture
)

KEY = "k" * 43
MODULE = '''
from pecan import rest
from pvc_api.operation import operation
from pvc_core.hooks.specs import hookimpl


class GadgetController(rest.RestController):
    @operation("GET", "/gadget", summary="List gadgets", tag="gadget",
               query={"type": "object", "additionalProperties": False,
                      "properties": {"size": {"type": "integer", "minimum": 1}}},
               responses={200: {"type": "array"}})
    def get_all(self, query):
        return [{"size": query.get("size", 0)}]


class LampController(rest.RestController):
    @operation("GET", "/lamp", summary="Lamps", tag="lamp", responses={200: None})
    def get_all(self):
        return ["on"]


class Gadgets:
    @hookimpl
    def pvc_api_controllers(self):
        return {"gadget": GadgetController(), "lamp": LampController}


class Thief:
    """Offers a resource under a core name."""
    @hookimpl
    def pvc_api_controllers(self):
        return {"vm": GadgetController()}


class Copycat:
    """Offers the same name as Gadgets."""
    @hookimpl
    def pvc_api_controllers(self):
        return {"lamp": LampController()}


class Sloppy:
    @hookimpl
    def pvc_api_controllers(self):
        return {"thing": object()}


class Reserved:
    @hookimpl
    def pvc_api_controllers(self):
        return {"openapi": GadgetController()}


class Raises:
    @hookimpl
    def pvc_api_controllers(self):
        raise RuntimeError("no licence")


class Health:
    """A plugin without API resources is loaded and changes nothing here."""
    @hookimpl
    def pvc_collect_health_checks(self):
        return []
'''
PLUGINS = {name: f"pvc_gadgets_mod:{cls}" for name, cls in (
    ("gadgets", "Gadgets"), ("thief", "Thief"), ("copycat", "Copycat"), ("sloppy", "Sloppy"),
    ("reserved", "Reserved"), ("raises", "Raises"), ("health", "Health"))}


@pytest.fixture
def plugins(fake_dist: FakeDistInstaller) -> FakeDistInstaller:  # noqa: F811
    fake_dist.install("pvc-gadgets", {PLUGIN_GROUP: PLUGINS}, {"pvc_gadgets_mod": MODULE})
    return fake_dist


def _ctx(*plugins: str) -> ApiContext:
    config = parse_config({
        "cluster": {"name": "c", "nodes": ["node1"], "coordinators": ["node1"]},
        "node": {"name": "node1"}, "zookeeper": {"hosts": ["127.0.0.1:1"]},
        "hypervisor": {"enabled": True, "driver": "fake"}, "plugins": list(plugins)})
    return ApiContext(config, store=None, cache=None,  # type: ignore[arg-type]
                      keys=KeyRing([ApiKey("ops", hash_key(KEY), "admin")]))


def _get(app: Any, path: str) -> tuple[int, Any]:
    response = Request.blank(path, headers={"X-Api-Key": KEY}).get_response(app)
    return response.status_int, json.loads(response.body)


def test_plugin_resources_are_mounted_validated_and_documented(
        plugins: FakeDistInstaller) -> None:
    ctx = _ctx("gadgets", "health")
    app = make_app(ctx)
    assert ctx.hooks.plugin_names() == ["gadgets", "health"]
    assert _get(app, "/api/v1/gadget?size=3") == (200, [{"size": 3}])
    status, body = _get(app, "/api/v1/gadget?size=0")
    assert status == 400 and body["field"] == "size"
    assert _get(app, "/api/v1/lamp") == (200, ["on"])  # a class, instantiated
    paths = _get(app, "/api/v1/openapi.json")[1]["paths"]
    assert {"/api/v1/gadget", "/api/v1/lamp", "/api/v1/vm"} <= set(paths)


def test_without_the_plugin_enabled_nothing_is_mounted(plugins: FakeDistInstaller) -> None:
    ctx = _ctx()
    app = make_app(ctx)
    assert ctx.hooks.plugin_names() == []
    assert _get(app, "/api/v1/gadget")[0] == 404


@pytest.mark.parametrize(("enabled", "message"), [
    (["thief"], "hook plugin 'thief': pvc_api_controllers: resource 'vm' is already taken "
                "by a core resource"),
    (["gadgets", "copycat"], "resource 'lamp' is already taken by hook plugin "),
    (["sloppy"], "hook plugin 'sloppy': pvc_api_controllers: resource 'thing' is <object "),
    (["reserved"], "'openapi' is not a resource name"),
    (["raises"], "hook plugin 'raises': pvc_api_controllers raised RuntimeError: no licence"),
    (["nope"], "hook plugin 'nope' is not installed (entry points in pvc.plugins: "),
])
def test_a_plugin_that_cannot_be_mounted_stops_the_start(
        plugins: FakeDistInstaller, enabled: list[str], message: str) -> None:
    with pytest.raises(DriverLoadError) as err:
        make_app(_ctx(*enabled))
    assert message in str(err.value)


def test_a_plugin_cannot_take_an_entry_point_controller_name(
        plugins: FakeDistInstaller) -> None:
    plugins.install("pvc-lamps", {"pvc.api.controllers": {
        "lamp": "pvc_gadgets_mod:LampController"}}, {})
    with pytest.raises(DriverLoadError, match="resource 'lamp' is already taken by the "
                                              "pvc.api.controllers entry point 'lamp'"):
        make_app(_ctx("gadgets"))
