"""/cluster, /job, /decision, /fault and /metrics."""

from __future__ import annotations

import time

from pvc_core.store import Store
from tests.api.client import Http
from tests.api.conftest import AuditCapture
from tests.api.test_vm import define
from tests.cluster.conftest import wait_for

API = "/api/v1"


def test_root(viewer: Http) -> None:
    root = viewer.get(f"{API}/").body
    assert root["api"] == "v1" and root["cluster"] and root["version"]


def test_status(viewer: Http) -> None:
    st = viewer.get(f"{API}/cluster").body
    assert st["nodes"]["total"] == 3 and st["nodes"]["by_daemon_state"] == {"run": 3}
    assert st["primary"] in ("node1", "node2") and st["maintenance"] is False
    assert st["resources"]["memory_total_mib"] > 0
    assert st["health"] in ("ok", "degraded")


def test_maintenance_on_and_off(admin: Http, viewer: Http, store: Store,
                                audit: AuditCapture) -> None:
    on = admin.post(f"{API}/cluster/maintenance", {"enabled": True})
    assert on.status == 200 and on.body == {"maintenance": True}
    assert store.cluster.maintenance() is True
    wait_for(lambda: viewer.get(f"{API}/cluster").body["health"] == "maintenance", 10,
             "health maintenance")
    assert admin.post(f"{API}/cluster/maintenance", {"enabled": False}).body == {
        "maintenance": False}
    assert store.cluster.maintenance() is False
    for body, field in [({}, "enabled"), ({"enabled": "on"}, "enabled"),
                        ({"enabled": True, "why": "x"}, "why")]:
        answer = admin.post(f"{API}/cluster/maintenance", body)
        assert answer.status == 400 and answer.body["field"] == field
    assert store.cluster.maintenance() is False
    records = [r for r in audit.lines if '"/api/v1/cluster/maintenance"' in r]
    assert any('"who": "admin"' in r and '"status": 200' in r for r in records)
    assert any('"status": 400' in r for r in records)


def test_audit_omits_xml(admin: Http, audit: AuditCapture) -> None:
    define(admin, "api-audit")
    line = next(r for r in reversed(audit.lines) if '"path": "/api/v1/vm"' in r)
    assert '"xml": "<omitted>"' in line and "<domain" not in line and '"status": 201' in line


def test_jobs(admin: Http, viewer: Http) -> None:
    job = admin.post(f"{API}/node/node1/flush", wait=True, timeout=90).body
    admin.post(f"{API}/node/node1/ready", wait=True, timeout=90)
    listed = viewer.get(f"{API}/job", kind="flush").body
    assert job["id"] in {j["id"] for j in listed} and all(j["kind"] == "flush" for j in listed)
    assert viewer.get(f"{API}/job", state="succeeded").status == 200
    assert viewer.get(f"{API}/job", state="paused").body["field"] == "state"
    assert viewer.get(f"{API}/job/{job['id']}").body["plan"] is not None
    assert viewer.get(f"{API}/job/nosuchjob").status == 404
    assert viewer.get(f"{API}/job/bad%20id").status in (400, 404)


def test_decisions(admin: Http, viewer: Http, store: Store) -> None:
    since = time.time() - 1
    store.decisions.append("test-kind", "recorded", node="node2", inputs={"n": 1}, by="test")
    got = viewer.get(f"{API}/decision", node="node2", kind="test-kind", since=since).body
    assert [d["outcome"] for d in got] == ["recorded"] and got[0]["inputs"] == {"n": 1}
    assert viewer.get(f"{API}/decision", kind="test-kind", until=since).body == []
    assert len(viewer.get(f"{API}/decision", limit=1).body) == 1
    assert viewer.get(f"{API}/decision", since="yesterday").body["field"] == "since"
    assert viewer.get(f"{API}/decision", limit=0).body["field"] == "limit"
    assert viewer.get(f"{API}/decision", vm="no-such-vm").status == 404


def test_faults(admin: Http, viewer: Http, store: Store) -> None:
    fault = store.faults.raise_fault("test", "node2", "something to see")
    wait_for(lambda: fault["id"] in {f["id"] for f in viewer.get(f"{API}/fault").body}, 10,
             "fault listed")
    assert viewer.get(f"{API}/fault/{fault['id']}").body["message"] == "something to see"
    acked = admin.post(f"{API}/fault/{fault['id']}/ack")
    assert acked.status == 200 and acked.body["acknowledged"] is True
    deleted = admin.delete(f"{API}/fault/{fault['id']}")
    assert deleted.status == 200 and deleted.body["id"] == fault["id"]
    assert admin.delete(f"{API}/fault/{fault['id']}").status == 404
    assert admin.post(f"{API}/fault/nosuch/ack").status == 404
    assert viewer.get(f"{API}/fault/nosuch").status == 404


def test_metrics(viewer: Http) -> None:
    text = viewer.get("/metrics").body
    for family in ("pvc_cluster_healthy", "pvc_cluster_maintenance", "pvc_node_alive",
                   "pvc_node_memory_total_mib", "pvc_vms", "pvc_faults", "pvc_jobs",
                   "pvc_fences_total", "pvc_node_domain_state"):
        assert f"# TYPE {family} " in text or f"# TYPE {family.removesuffix('_total')} " \
            in text, family
    assert 'pvc_node_alive{node="node1"} 1.0' in text


def test_unknown_paths_and_methods(admin: Http) -> None:
    assert admin.get(f"{API}/nothing").status == 404
    assert admin.get(f"{API}/nothing").body["field"] is None
    wrong = admin.call("PATCH", f"{API}/vm")
    assert wrong.status in (404, 405) and "message" in wrong.body
    assert admin.call("DELETE", f"{API}/cluster").status in (404, 405)


def test_any_accept_header_gets_json(viewer: Http) -> None:
    import urllib.request

    for accept in ("application/json", "text/html", "application/xml", "*/*"):
        request = urllib.request.Request(viewer.base + f"{API}/cluster",
                                         headers={"X-Api-Key": str(viewer.key),
                                                  "Accept": accept})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200 and answer.headers["Content-Type"].startswith(
                "application/json")


def test_empty_object_body_accepted_where_no_body_is_taken(admin: Http) -> None:
    assert admin.post(f"{API}/node/node9/ready", {}).status == 404  # routed, not a 400
    refused = admin.post(f"{API}/node/node1/ready", {"now": True})
    assert refused.status == 400 and refused.body["field"] == "body"
