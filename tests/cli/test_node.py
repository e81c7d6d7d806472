"""``pvc node ...`` and ``pvc cluster status`` through the real executable."""

from __future__ import annotations

from pathlib import Path

from pvc_core.store import Store
from tests.cli.conftest import Pvc, wait_for, write_xml


def test_node_list(pvc: Pvc) -> None:
    nodes = pvc("node", "list", "-f", "json").ok().json
    assert [n["name"] for n in nodes] == ["node1", "node2", "node3"]
    assert all(n["daemon_state"] == "run" and n["alive"] is True for n in nodes)
    assert all(n["domain_state"] == "ready" for n in nodes)
    roles = {n["name"]: n["coordinator_state"] for n in nodes}
    assert roles["node3"] == "client"
    assert sorted([roles["node1"], roles["node2"]]) == ["primary", "secondary"]
    clients = pvc("node", "list", "--coordinator-state", "client", "-f", "json").ok().json
    assert [n["name"] for n in clients] == ["node3"]
    bad = pvc("node", "list", "--daemon-state", "sleeping").one_error()
    assert "(field: daemon_state)" in bad


def test_node_info(pvc: Pvc) -> None:
    node = pvc("node", "info", "node2", "-f", "json").ok().json
    assert node["name"] == "node2" and node["daemon_state"] == "run"
    assert node["coordinator_state"] in ("primary", "secondary")
    assert isinstance(node["info"], dict) and node["info"]
    assert "node9" in pvc("node", "info", "node9").one_error()


def test_flush_dry_run_changes_nothing(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, vm_uuid = write_xml(tmp_path, "cli-fl1")
    pvc("vm", "define", path, "--target", "node3", "-f", "json").ok()
    pvc("vm", "start", "cli-fl1", "--wait", "--timeout", "30", "-f", "json").ok()
    jobs_before = len(pvc("job", "list", "-f", "json").ok().json)
    shown = pvc("node", "flush", "node3", "--dry-run", "-f", "json").ok().json
    assert shown["dry_run"] is True
    item = next(i for i in shown["plan"] if i["name"] == "cli-fl1")
    assert item["target"] in ("node1", "node2")
    assert pvc("node", "info", "node3", "-f", "json").ok().json["domain_state"] == "ready"
    assert pvc("vm", "info", vm_uuid, "-f", "json").ok().json["node"] == "node3"
    assert len(pvc("job", "list", "-f", "json").ok().json) == jobs_before  # no job made


def test_flush_and_ready_with_wait(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, _ = write_xml(tmp_path, "cli-fl2")
    pvc("vm", "define", path, "--target", "node3", "--start", "-f", "json").ok()
    wait_for(lambda: pvc("vm", "info", "cli-fl2", "-f", "json").ok().json["running"], 30,
             "cli-fl2 running")
    flushed = pvc("node", "flush", "node3", "--wait", "--timeout", "90", "-f", "json").ok()
    job = flushed.json
    assert job["kind"] == "flush" and job["state"] == "succeeded", flushed
    assert job["progress"]["done"] == job["progress"]["total"] >= 1
    assert f"job {job['id']}" in flushed.err and "succeeded" in flushed.err  # plain progress
    assert pvc("node", "info", "node3", "-f", "json").ok().json["domain_state"] == "flushed"
    assert pvc("vm", "info", "cli-fl2", "-f", "json").ok().json["node"] in ("node1", "node2")
    assert "node3" in pvc("node", "flush", "node3").one_error()  # already flushed: 409
    readied = pvc("node", "ready", "node3", "--wait", "--timeout", "90", "-f", "json").ok()
    assert readied.json["kind"] == "ready" and readied.json["state"] == "succeeded", readied
    assert pvc("node", "info", "node3", "-f", "json").ok().json["domain_state"] == "ready"
    wait_for(lambda: pvc("vm", "info", "cli-fl2", "-f", "json").ok().json["node"] == "node3",
             60, "cli-fl2 back on node3")


def test_primary_and_secondary_with_wait(pvc: Pvc) -> None:
    current = pvc("cluster", "status", "-f", "json").ok().json["primary"]
    assert current in ("node1", "node2")
    other = "node2" if current == "node1" else "node1"
    moved = pvc("node", "primary", other, "--wait", "--timeout", "60", "-f", "json").ok()
    assert moved.json["primary"] == other and "waiting for" in moved.err
    assert pvc("cluster", "status", "-f", "json").ok().json["primary"] == other
    roles = {n["name"]: n["coordinator_state"]
             for n in pvc("node", "list", "-f", "json").ok().json}
    assert roles[other] == "primary"
    back = pvc("node", "secondary", other, "--wait", "--timeout", "60", "-f", "json").ok()
    assert back.json["primary"] == current
    assert pvc("cluster", "status", "-f", "json").ok().json["primary"] == current
    assert pvc("node", "primary", "node3").one_error()  # not a coordinator: 409


def test_cluster_status_and_maintenance(pvc: Pvc, store: Store) -> None:
    status = pvc("cluster", "status", "-f", "json").ok().json
    assert status["nodes"]["total"] == 3 and status["nodes"]["by_daemon_state"] == {"run": 3}
    assert status["maintenance"] is False
    try:
        on = pvc("cluster", "maintenance", "on", "-f", "json").ok().json
        assert on["maintenance"] is True
        assert pvc("cluster", "status", "-f", "json").ok().json["maintenance"] is True
        assert store.cluster.maintenance() is True
        wait_for(lambda: pvc("cluster", "status", "-f", "json").ok().json["health"]
                 == "maintenance", 10, "health maintenance")
        off = pvc("cluster", "maintenance", "off", "-f", "json").ok().json
        assert off["maintenance"] is False
    finally:
        if store.cluster.maintenance():  # the test failed half-way: leave it off
            store.cluster.set_maintenance(False)
    assert pvc("cluster", "status", "-f", "json").ok().json["maintenance"] is False
    assert pvc("cluster", "maintenance", "maybe").code == 2  # argparse choices
