"""The auth matrix over every operation of the OpenAPI document: no key or a
bad key is 401, a read-only key on a mutating operation is 403, and an admin
key gets past authentication. Nothing is changed by a refused request."""

from __future__ import annotations

import re

import pytest

from tests.api.client import Http

API = "/api/v1"


def _operations(anonymous: Http) -> list[tuple[str, str]]:
    doc = anonymous.get(f"{API}/openapi.json").body
    ops = []
    for path, item in doc["paths"].items():
        for method in item:
            concrete = re.sub(r"{[a-z_]+}", "nosuchthing", path)
            ops.append((method.upper(), concrete))
    return sorted(ops)


def test_openapi_needs_no_key(anonymous: Http) -> None:
    answer = anonymous.get(f"{API}/openapi.json")
    assert answer.status == 200 and answer.body["openapi"].startswith("3.")
    assert len(answer.body["paths"]) >= 20


def test_every_operation_without_a_key_is_401(anonymous: Http) -> None:
    ops = _operations(anonymous)
    refused = {(m, p): anonymous.call(m, p).status for m, p in ops}
    assert set(refused.values()) == {401}, refused


def test_a_wrong_key_is_401(admin: Http) -> None:
    bad = admin.with_key("not-a-key")
    for method, path in [("GET", f"{API}/vm"), ("POST", f"{API}/cluster/maintenance"),
                         ("GET", "/metrics")]:
        answer = bad.call(method, path, {"enabled": True} if method == "POST" else None)
        assert answer.status == 401 and answer.body["message"] == "the API key is not valid"


def test_read_only_key_on_every_mutating_operation_is_403(anonymous: Http, viewer: Http,
                                                          store) -> None:  # type: ignore[no-untyped-def]
    maintenance = store.cluster.maintenance()
    ops = [(m, p) for m, p in _operations(anonymous) if m != "GET"]
    assert len(ops) >= 15
    refused = {(m, p): viewer.call(m, p, {}).status for m, p in ops}
    assert set(refused.values()) == {403}, refused
    assert store.cluster.maintenance() == maintenance


def test_read_only_key_reads(viewer: Http, anonymous: Http) -> None:
    reads = [p for m, p in _operations(anonymous) if m == "GET" and "nosuchthing" not in p]
    assert {viewer.get(p).status for p in reads} == {200}


@pytest.mark.parametrize("method,path", [("GET", f"{API}/vm/nosuchthing"),
                                          ("POST", f"{API}/vm/nosuchthing/start")])
def test_admin_key_passes_authentication(admin: Http, method: str, path: str) -> None:
    assert admin.call(method, path).status == 404


def test_metrics_need_a_key(anonymous: Http, viewer: Http) -> None:
    assert anonymous.get("/metrics").status == 401
    answer = viewer.get("/metrics")
    assert answer.status == 200 and "pvc_node_daemon_state" in answer.body
