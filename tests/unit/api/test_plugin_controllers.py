"""A third-party package adds an API resource through ``pvc.api.controllers``:
mounted at /api/v1/<name> (only while its driver is enabled), validated, and
listed in the OpenAPI document. No ZooKeeper needed: the cache is not touched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from pvc_api.app import make_app
from pvc_api.auth import KeyRing, hash_key
from pvc_api.context import ApiContext
from pvc_core.config import parse_config
from pvc_core.config.model import ApiKey
from tests.unit.fake_dist import (
    FakeDistInstaller,
    fake_dist,  # noqa: F401 - a fixture
)

KEY = "k" * 43
MODULE = '''
from pecan import rest
from pvc_api.operation import operation

class WidgetController(rest.RestController):
    @operation("GET", "/widget", summary="List widgets", tag="widget",
               query={"type": "object", "additionalProperties": False,
                      "properties": {"colour": {"type": "string", "enum": ["red"]}}},
               responses={200: {"type": "array"}})
    def get_all(self, query):
        return [{"colour": query.get("colour", "any")}]

class StorageOnly(rest.RestController):
    pvc_driver = ("storage", "ceph")

    @operation("GET", "/pool", summary="Pools", tag="storage", responses={200: None})
    def get_all(self):
        return []
'''


def _app(tmp_path: Path) -> Any:
    config = parse_config({
        "cluster": {"name": "c", "nodes": ["node1"], "coordinators": ["node1"]},
        "node": {"name": "node1"}, "zookeeper": {"hosts": ["127.0.0.1:1"]},
        "hypervisor": {"enabled": True, "driver": "fake"}})
    ctx = ApiContext(config, store=None, cache=None,  # type: ignore[arg-type]
                     keys=KeyRing([ApiKey("ops", hash_key(KEY), "admin")]))
    return make_app(ctx)


def _get(app: Any, path: str) -> tuple[int, Any]:
    request = Request.blank(path, headers={"X-Api-Key": KEY})
    response = request.get_response(app)
    return response.status_int, json.loads(response.body)


def test_plugin_controller_is_mounted_validated_and_documented(
        fake_dist: FakeDistInstaller, tmp_path: Path) -> None:  # noqa: F811
    fake_dist.install("pvc-widgets", {"pvc.api.controllers": {
        "widget": "pvc_widgets_api:WidgetController",
        "pool": "pvc_widgets_api:StorageOnly"}}, {"pvc_widgets_api": MODULE})
    app = _app(tmp_path)
    assert _get(app, "/api/v1/widget?colour=red") == (200, [{"colour": "red"}])
    status, body = _get(app, "/api/v1/widget?colour=blue")
    assert status == 400 and body["field"] == "colour"
    assert _get(app, "/api/v1/pool")[0] == 404  # its storage driver is not enabled
    status, doc = _get(app, "/api/v1/openapi.json")
    assert status == 200 and "/api/v1/widget" in doc["paths"]
    assert "/api/v1/pool" not in doc["paths"]


def test_a_plugin_cannot_take_a_core_name(fake_dist: FakeDistInstaller, tmp_path: Path,  # noqa: F811
                                          caplog: pytest.LogCaptureFixture) -> None:
    fake_dist.install("pvc-bad", {"pvc.api.controllers": {
        "vm": "pvc_widgets_api:WidgetController"}}, {"pvc_widgets_api": MODULE})
    app = _app(tmp_path)
    assert _get(app, "/api/v1/openapi.json")[1]["paths"]["/api/v1/vm"]["get"]["tags"] == ["vm"]
    assert "API controller vm ignored: the name is a core resource" in caplog.text
