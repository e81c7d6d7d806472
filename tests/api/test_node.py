"""/node: list, show, flush (dry run and real), ready, primary, secondary."""

from __future__ import annotations

from pvc_core.coordination.lock import Lock
from pvc_core.store import Store
from tests.api.client import Http
from tests.api.test_vm import define
from tests.cluster.conftest import wait_for

API = "/api/v1"


def test_list_and_filters(viewer: Http) -> None:
    nodes = viewer.get(f"{API}/node").body
    assert [n["name"] for n in nodes] == ["node1", "node2", "node3"]
    assert all(n["daemon_state"] == "run" and n["alive"] for n in nodes)
    assert all(n["memory_total_mib"] and n["memory_total_mib"] > 0 for n in nodes)
    clients = viewer.get(f"{API}/node", coordinator_state="client").body
    assert [n["name"] for n in clients] == ["node3"]
    ready = viewer.get(f"{API}/node", domain_state="ready").body
    assert ready and {n["domain_state"] for n in ready} == {"ready"}
    bad = viewer.get(f"{API}/node", daemon_state="sleeping")
    assert bad.status == 400 and bad.body["field"] == "daemon_state"


def test_one_node(viewer: Http) -> None:
    node = viewer.get(f"{API}/node/node2").body
    assert node["name"] == "node2" and node["info"]
    assert viewer.get(f"{API}/node/node9").status == 404
    assert viewer.get(f"{API}/node/Not_A_Node").status in (400, 404)


def test_flush_dry_run_changes_nothing(admin: Http, store: Store) -> None:
    define(admin, "api-fl1", target="node2")
    admin.post(f"{API}/vm/api-fl1/start", wait=True, timeout=30)
    plan = admin.post(f"{API}/node/node2/flush", dry_run=True)
    assert plan.status == 200 and plan.body["dry_run"] is True
    item = next(i for i in plan.body["plan"] if i["name"] == "api-fl1")
    assert item["target"] in ("node1", "node3")
    assert store.nodes.get("node2").value.domain_state.value == "ready"
    assert store.vms.get("api-fl1").placement.node == "node2"
    assert admin.post(f"{API}/node/node9/flush", dry_run=True).status == 404


def test_flush_and_ready_with_wait(admin: Http, viewer: Http, store: Store) -> None:
    define(admin, "api-fl2", target="node3")
    admin.post(f"{API}/vm/api-fl2/start", wait=True, timeout=30)
    job = admin.post(f"{API}/node/node3/flush", wait=True, timeout=90)
    assert job.status == 200 and job.body["done"] is True, job.body
    assert job.body["state"] == "succeeded" and job.body["kind"] == "flush"
    assert viewer.get(f"{API}/node/node3").body["domain_state"] == "flushed"
    assert viewer.get(f"{API}/vm/api-fl2").body["node"] != "node3"
    again = admin.post(f"{API}/node/node3/flush")
    assert again.status == 409
    shown = viewer.get(f"{API}/job/{job.body['id']}").body
    assert shown["progress"]["done"] == shown["progress"]["total"] >= 1
    ready = admin.post(f"{API}/node/node3/ready", wait=True, timeout=90)
    assert ready.status == 200 and ready.body["state"] == "succeeded", ready.body
    assert viewer.get(f"{API}/node/node3").body["domain_state"] == "ready"
    wait_for(lambda: store.vms.get("api-fl2").placement.node == "node3", 60,
             "api-fl2 back on node3")
    assert admin.post(f"{API}/node/node3/ready").status == 409  # already ready
    assert admin.post(f"{API}/node/node9/ready").status == 404


def test_cancel_a_queued_flush(admin: Http, viewer: Http, store: Store) -> None:
    blocker = Lock(store.zk, store.ks.flush_lock(), "test")
    blocker.acquire(timeout=10)
    try:
        job = admin.post(f"{API}/node/node2/flush").body
        assert job["state"] == "queued"
        cancelled = admin.post(f"{API}/job/{job['id']}/cancel")
        assert cancelled.status == 200, cancelled.body
        ready_job = cancelled.body["cancelled_by_job"]
    finally:
        blocker.release()
    wait_for(lambda: viewer.get(f"{API}/job/{job['id']}").body["state"] == "cancelled", 60,
             "flush cancelled")
    wait_for(lambda: viewer.get(f"{API}/job/{ready_job}").body["state"] == "succeeded", 60,
             "ready done")
    assert viewer.get(f"{API}/node/node2").body["domain_state"] == "ready"
    ended = admin.post(f"{API}/job/{job['id']}/cancel")
    assert ended.status == 409 and "ended" in ended.body["message"]
    assert admin.post(f"{API}/job/{ready_job}/cancel").status == 409
    assert admin.post(f"{API}/job/nosuchjob/cancel").status == 404


def test_primary_and_secondary(admin: Http, viewer: Http) -> None:
    current = viewer.get(f"{API}/cluster").body["primary"]
    other = "node2" if current == "node1" else "node1"
    moved = admin.post(f"{API}/node/{other}/primary", wait=True, timeout=60)
    assert moved.status == 200 and moved.body["done"] is True, moved.body
    assert moved.body["primary"] == other
    same = admin.post(f"{API}/node/{other}/primary")
    assert same.status == 200 and same.body["changed"] is False
    back = admin.post(f"{API}/node/{other}/secondary", wait=True, timeout=60)
    assert back.status == 200 and back.body["primary"] == current, back.body
    assert admin.post(f"{API}/node/node3/primary").status == 409  # not a coordinator
    assert admin.post(f"{API}/node/node3/secondary").status == 409
    assert admin.post(f"{API}/node/node9/primary").status == 404
