"""Every /vm endpoint, success and failure, against real daemons."""

from __future__ import annotations

import re
import uuid

from pvc_core.store import Store
from tests.api.client import Http
from tests.cluster.conftest import domain_xml

API = "/api/v1"


def define(admin: Http, name: str, **extra: object) -> dict:  # type: ignore[type-arg]
    answer = admin.post(f"{API}/vm", {"xml": domain_xml(name), **extra})
    assert answer.status == 201, answer.body
    return answer.body  # type: ignore[no-any-return]


def test_define_with_metadata_and_start(admin: Http, store: Store) -> None:
    vm = define(admin, "api-def", node_limit=["node1", "node2"], selector="vms",
                autostart=True, migration_method="shutdown", max_downtime_ms=500,
                tags=["web", "prod"], anti_affinity="webs", target="node2", start=True)
    assert vm["node"] == "node2" and vm["state"] == "start"
    assert vm["meta"] == {"node_limit": ["node1", "node2"], "selector": "vms",
                          "autostart": True, "migration_method": "shutdown",
                          "max_downtime_ms": 500, "tags": ["web", "prod"],
                          "anti_affinity": "webs"}
    stored = store.vms.get("api-def")
    assert stored.meta.tags == ("web", "prod") and stored.placement.node == "node2"


def test_define_failures_write_nothing(admin: Http, store: Store) -> None:
    define(admin, "api-dup")
    before = sorted(store.vms.uuids())
    cases = [
        ({"xml": domain_xml("api-dup")}, 409, None),
        ({"xml": "<domain>"}, 400, "xml"),
        ({}, 400, "xml"),
        ({"xml": domain_xml("api-x"), "selector": "fastest"}, 400, "selector"),
        ({"xml": domain_xml("api-x"), "colour": "red"}, 400, "colour"),
        ({"xml": domain_xml("api-x"), "node_limit": ["nodeX"]}, 400, "node_limit[0]"),
        ({"xml": domain_xml("api-x"), "node_limit": ["node9"]}, 400, "node_limit[0]"),
        ({"xml": domain_xml("api-x"), "target": "node9"}, 404, None),
        ({"xml": domain_xml("api-x"), "max_downtime_ms": -1}, 400, "max_downtime_ms"),
        ({"xml": domain_xml("api x")}, 400, None),
    ]
    for body, status, field in cases:
        answer = admin.post(f"{API}/vm", body)
        assert answer.status == status, (body, answer.body)
        assert set(answer.body) == {"message", "field"} and answer.body["message"]
        if field:
            assert answer.body["field"] == field, (body, answer.body)
    for raw in (b"not json", b"[1, 2]", b"\xff\xfe"):
        answer = admin.call("POST", f"{API}/vm", raw=raw)
        assert answer.status == 400 and answer.body["field"] == "body", (raw, answer.body)
    assert sorted(store.vms.uuids()) == before


def test_list_and_filters(admin: Http, viewer: Http) -> None:
    define(admin, "api-l1", tags=["blue"], target="node1")
    define(admin, "api-l2", tags=["green"], target="node2")
    names = {v["name"] for v in viewer.get(f"{API}/vm").body}
    assert {"api-l1", "api-l2"} <= names
    assert {v["name"] for v in viewer.get(f"{API}/vm", tag="blue").body} == {"api-l1"}
    on2 = viewer.get(f"{API}/vm", node="node2").body
    assert "api-l2" in {v["name"] for v in on2} and all(v["node"] == "node2" for v in on2)
    assert all(v["state"] == "stop" for v in viewer.get(f"{API}/vm", state="stop").body)
    for params, field in [({"state": "sleeping"}, "state"), ({"node": "Node 1"}, "node"),
                          ({"colour": "red"}, "colour")]:
        answer = viewer.get(f"{API}/vm", **params)
        assert answer.status == 400 and answer.body["field"] == field


def test_one_vm_by_name_or_uuid(admin: Http, viewer: Http) -> None:
    vm = define(admin, "api-one")
    assert viewer.get(f"{API}/vm/api-one").body["uuid"] == vm["uuid"]
    assert viewer.get(f"{API}/vm/{vm['uuid']}").body["name"] == "api-one"
    assert viewer.get(f"{API}/vm/nope").status == 404
    assert viewer.get(f"{API}/vm/{uuid.uuid4()}").status == 404
    assert viewer.get(f"{API}/vm/api-one/extra/segments").status == 404


def test_state_changes_with_wait(admin: Http, viewer: Http) -> None:
    define(admin, "api-st")
    started = admin.post(f"{API}/vm/api-st/start", wait=True, timeout=30)
    assert started.status == 200 and started.body["done"] is True
    assert started.body["running"] is True and started.body["state"] == "start"
    restarted = admin.post(f"{API}/vm/api-st/restart", wait=True, timeout=30)
    assert restarted.status == 200 and restarted.body["running"] is True
    shut = admin.post(f"{API}/vm/api-st/shutdown", wait=True, timeout=60)
    assert shut.status == 200 and shut.body["running"] is False
    assert admin.post(f"{API}/vm/api-st/start", wait=True, timeout=30).body["running"]
    stopped = admin.post(f"{API}/vm/api-st/stop", wait=True, timeout=30)
    assert stopped.body["state"] == "stop" and stopped.body["running"] is False
    disabled = admin.post(f"{API}/vm/api-st/disable", wait=True, timeout=30)
    assert disabled.body["state"] == "disable"
    assert viewer.get(f"{API}/vm/api-st").body["state"] == "disable"


def test_state_change_without_wait_is_202(admin: Http) -> None:
    define(admin, "api-nowait")
    answer = admin.post(f"{API}/vm/api-nowait/start")
    assert answer.status == 202 and answer.body["done"] is False
    assert answer.body["state"] == "start"


def test_state_change_refusals(admin: Http, store: Store) -> None:
    define(admin, "api-ref")
    answer = admin.post(f"{API}/vm/api-ref/restart")  # a stopped VM cannot restart
    assert answer.status == 409 and "api-ref" in answer.body["message"]
    assert store.vms.get("api-ref").state.state.value == "stop"
    assert admin.post(f"{API}/vm/nope/start").status == 404
    assert admin.post(f"{API}/vm/api-ref/start", {"force": "yes"}).body["field"] == "force"
    assert admin.post(f"{API}/vm/api-ref/start", timeout=0).body["field"] == "timeout"
    assert admin.post(f"{API}/vm/api-ref/start", wait="maybe").body["field"] == "wait"


def test_force_overrides_the_state_table(admin: Http) -> None:
    define(admin, "api-force")
    assert admin.post(f"{API}/vm/api-force/shutdown").status == 409  # stop -> shutdown
    forced = admin.post(f"{API}/vm/api-force/shutdown", {"force": True})
    assert forced.status in (200, 202), forced.body
    # written, then settled by the VM's node (a stopped guest has nothing to shut down)
    assert forced.body["state"] in ("shutdown", "stop")


def test_migrate_unmigrate_move(admin: Http, viewer: Http) -> None:
    define(admin, "api-mig", target="node1")
    admin.post(f"{API}/vm/api-mig/start", wait=True, timeout=30)
    moved = admin.post(f"{API}/vm/api-mig/migrate", {"target": "node2"}, wait=True, timeout=60)
    assert moved.status == 200, moved.body
    assert moved.body["node"] == "node2" and moved.body["last_node"] == "node1"
    assert moved.body["running"] is True
    back = admin.post(f"{API}/vm/api-mig/unmigrate", wait=True, timeout=60)
    assert back.body["node"] == "node1" and back.body["last_node"] is None
    assert back.body["running"] is True
    perm = admin.post(f"{API}/vm/api-mig/move", {"target": "node3"}, wait=True, timeout=60)
    assert perm.body["node"] == "node3" and perm.body["last_node"] is None
    failures = [
        (admin.post(f"{API}/vm/api-mig/migrate", {"target": "node3"}), 409),  # already there
        (admin.post(f"{API}/vm/api-mig/migrate", {"target": "node9"}), 404),
        (admin.post(f"{API}/vm/api-mig/migrate", {"target": "NODE"}), 400),
        (admin.post(f"{API}/vm/api-mig/migrate", {"force_live": 1}), 400),
        (admin.post(f"{API}/vm/api-mig/unmigrate"), 409),  # no previous node
        (admin.post(f"{API}/vm/nope/move"), 404),
    ]
    assert [a.status for a, _ in failures] == [s for _, s in failures], \
        [a.body for a, _ in failures]
    assert viewer.get(f"{API}/vm/api-mig").body["node"] == "node3"


def test_metadata_get_and_set(admin: Http, viewer: Http, store: Store) -> None:
    define(admin, "api-meta")
    changed = admin.post(f"{API}/vm/api-meta", {"tags": ["a"], "autostart": True,
                                                 "node_limit": ["node3"]})
    assert changed.status == 200 and changed.body["tags"] == ["a"]
    assert viewer.get(f"{API}/vm/api-meta/meta").body["node_limit"] == ["node3"]
    for body, field in [({"node_limit": ["node9"]}, "node_limit[0]"), ({"size": 3}, "size"),
                        ({"migration_method": "teleport"}, "migration_method")]:
        answer = admin.post(f"{API}/vm/api-meta", body)
        assert answer.status == 400 and answer.body["field"] == field, answer.body
    assert store.vms.get("api-meta").meta.node_limit == ("node3",)
    assert viewer.get(f"{API}/vm/nope/meta").status == 404


def test_xml_get_and_modify(admin: Http, viewer: Http) -> None:
    vm = define(admin, "api-xml")
    xml = viewer.get(f"{API}/vm/api-xml/xml").body["xml"]
    assert vm["uuid"] in xml
    bigger = re.sub(r"<memory unit=.MiB.>256</memory>", "<memory unit='MiB'>512</memory>", xml)
    assert bigger != xml
    changed = admin.put(f"{API}/vm/api-xml/xml", {"xml": bigger})
    assert changed.status == 200 and changed.body["memory_mib"] == 512
    other = admin.put(f"{API}/vm/api-xml/xml", {"xml": domain_xml("api-xml")})
    assert other.status == 400 and other.body["field"] == "xml"  # another UUID
    assert admin.put(f"{API}/vm/api-xml/xml", {}).body["field"] == "xml"
    assert viewer.get(f"{API}/vm/nope/xml").status == 404
    assert viewer.get(f"{API}/vm/api-xml").body["memory_mib"] == 512


def test_console_log(admin: Http, viewer: Http, store: Store) -> None:
    vm = define(admin, "api-log")
    assert viewer.get(f"{API}/vm/api-log/log").body == {"lines": []}
    store.vms.set_console(vm["uuid"], "".join(f"line {i}\n" for i in range(300)))
    assert viewer.get(f"{API}/vm/api-log/log", lines=3).body["lines"] == [
        "line 297", "line 298", "line 299"]
    assert len(viewer.get(f"{API}/vm/api-log/log").body["lines"]) == 100
    assert viewer.get(f"{API}/vm/api-log/log", lines=0).body["field"] == "lines"
    assert viewer.get(f"{API}/vm/nope/log").status == 404


def test_undefine_and_remove(admin: Http, store: Store) -> None:
    vm = define(admin, "api-del")
    admin.post(f"{API}/vm/api-del/start")
    assert admin.delete(f"{API}/vm/api-del").status == 409  # running
    admin.post(f"{API}/vm/api-del/stop", wait=True, timeout=30)
    refused = admin.delete(f"{API}/vm/api-del", disks=True)
    assert refused.status == 409 and "storage" in refused.body["message"]
    gone = admin.delete(f"{API}/vm/api-del")
    assert gone.status == 200 and gone.body["uuid"] == vm["uuid"]
    assert vm["uuid"] not in store.vms.uuids()
    assert admin.delete(f"{API}/vm/api-del").status == 404
