"""Commands against a canned API: what they send, what they print, how they fail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.cli.conftest import KEY, FakeApi, Result

NODE = {"name": "node1", "daemon_state": "run", "coordinator_state": "primary",
        "domain_state": "ready", "alive": True, "job": None, "memory_total_mib": 8192,
        "memory_used_mib": 2048, "memory_free_mib": 6144, "memory_allocated_mib": 1024,
        "memory_provisioned_mib": 2048, "vcpus_allocated": 2, "cpus": 8, "load": 0.5,
        "vms_running": 1, "vms_assigned": 2,
        "info": {"version": "0.1.0", "hypervisor": "libvirt",
                 "capabilities": {"live_migration": True}}}
META = {"node_limit": ["node1", "node2"], "selector": "mem", "autostart": True,
        "migration_method": "live", "max_downtime_ms": 300, "tags": ["web", "prod"],
        "anti_affinity": "webs"}
VM = {"uuid": "5d7e6c1a-0000-4000-8000-000000000001", "name": "web1", "state": "start",
      "state_reason": "requested", "state_by": "api:ops", "node": "node1", "last_node": None,
      "wait_for": None, "memory_mib": 1024, "vcpus": 2, "running": True, "meta": META}
JOB = {"id": "j1", "kind": "flush", "params": {"node": "node1"}, "state": "queued",
       "by": "api:ops", "created": 1700000000.0, "updated": 1700000000.0, "plan": None,
       "progress": {"done": 0, "total": 0}, "result": None, "log": []}
XML = "<domain type='kvm'><name>web1</name></domain>"

Run = Callable[..., Result]


def job(**changes: object) -> dict[str, object]:
    return {**JOB, **changes}


# -- reading -------------------------------------------------------------------------


def test_vm_list_json_and_filters(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/vm", (200, [VM, {**VM, "name": "db1", "meta": {**META, "tags": []}}]))
    r = pvc("vm", "list", "--node", "node1", "--tag", "web", "-f", "json")
    assert r.code == 0, r.err
    assert r.json() == [
        {"name": "web1", "state": "start", "node": "node1", "running": True, "memory_mib": 1024,
         "vcpus": 2, "tags": ["web", "prod"], "uuid": VM["uuid"]},
        {"name": "db1", "state": "start", "node": "node1", "running": True, "memory_mib": 1024,
         "vcpus": 2, "tags": [], "uuid": VM["uuid"]}]
    seen = api.only()
    assert (seen.method, seen.path) == ("GET", "/api/v1/vm")
    assert seen.query == {"node": ["node1"], "tag": ["web"]}  # no state: not sent
    assert seen.headers["X-Api-Key"] == KEY


def test_vm_info_keeps_the_structure_in_json_and_flattens_in_a_table(api: FakeApi,
                                                                     pvc: Run) -> None:
    api.route("GET", "/vm/web1", (200, VM))
    r = pvc("vm", "info", "web1", "-f", "json")
    assert r.code == 0, r.err
    assert r.json() == VM
    r = pvc("vm", "info", "web1")
    assert r.code == 0, r.err
    assert "tags: web, prod" in r.out and "node_limit: node1, node2" in r.out
    r = pvc("vm", "info", "web1", "-f", "value", "-c", "state", "-c", "node")
    assert r.out.split() == ["start", "node1"]


def test_node_list_and_info(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/node", (200, [NODE]))
    api.route("GET", "/node/node1", (200, NODE))
    r = pvc("node", "list", "--daemon-state", "run", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()[0]["name"] == "node1" and r.json()[0]["memory_free_mib"] == 6144
    assert api.requests[0].query == {"daemon_state": ["run"]}
    r = pvc("node", "info", "node1", "-f", "yaml")
    assert r.code == 0, r.err
    assert "live_migration: true" in r.out
    r = pvc("node", "info", "node1")
    assert "capabilities.live_migration: true" in r.out  # flattened for a table


def test_list_sorting_and_columns_come_from_cliff(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/vm", (200, [VM, {**VM, "name": "app1"}]))
    r = pvc("vm", "list", "-f", "value", "-c", "name", "--sort-column", "name")
    assert r.out.split() == ["app1", "web1"]
    r = pvc("vm", "list", "-f", "csv", "-c", "name", "-c", "tags")
    assert r.out.splitlines()[0] == '"name","tags"'


def test_cluster_status(api: FakeApi, pvc: Run) -> None:
    status = {"name": "c1", "health": "ok", "primary": "node1", "maintenance": False,
              "nodes": {"total": 3, "by_daemon_state": {"run": 3}}, "faults": 0, "jobs": 0}
    api.route("GET", "/cluster", (200, status))
    r = pvc("cluster", "status", "-f", "json")
    assert r.json() == status


def test_job_list_and_decisions(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/job", (200, [job(state="running", progress={"done": 3, "total": 6})]))
    r = pvc("job", "list", "--state", "running", "-f", "json")
    assert r.json()[0]["progress"] == {"done": 3, "total": 6}
    r = pvc("job", "list")
    assert "3/6" in r.out
    decision = {"kind": "fence", "outcome": "fenced", "node": "node2", "vm": None,
                "inputs": {"attempt": 1}, "by": "node1", "time": 1700000000.5, "seq": 7}
    api.route("GET", "/decision", (200, [decision]))
    r = pvc("decision", "list", "--node", "node2", "--since", "1700000000", "--limit", "5",
            "-f", "json")
    assert r.code == 0, r.err
    assert r.json() == [{k: decision[k] for k in ("seq", "time", "kind", "outcome", "node",
                                                   "vm", "by", "inputs")}]
    assert api.requests[-1].query == {"node": ["node2"], "since": ["1700000000"],
                                      "limit": ["5"]}


def test_fault_list_and_ack(api: FakeApi, pvc: Run) -> None:
    fault = {"id": "reserve-abc", "kind": "reserve", "subject": "cluster", "message": "N-1 lost",
             "severity": "warning", "first_seen": 1.0, "last_seen": 2.0, "count": 2,
             "acknowledged": False}
    api.route("GET", "/fault", (200, [fault]))
    api.route("POST", "/fault/reserve-abc/ack", (200, {**fault, "acknowledged": True}))
    r = pvc("fault", "list", "-f", "json")
    assert r.json()[0]["message"] == "N-1 lost"
    r = pvc("fault", "ack", "reserve-abc", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["acknowledged"] is True
    assert (api.requests[-1].method, api.requests[-1].path) == ("POST",
                                                                "/api/v1/fault/reserve-abc/ack")


# -- what is sent ------------------------------------------------------------------------


def test_vm_define_with_every_option(api: FakeApi, pvc: Run, tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(XML)
    api.route("POST", "/vm", (201, VM))
    r = pvc("vm", "define", str(xml), "--node-limit", "node1,node2", "--node-selector", "mem",
            "--autostart", "--migration-method", "live", "--max-downtime", "300",
            "--tag", "web", "--tag", "prod", "--anti-affinity", "webs", "--target", "node1",
            "--start", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["name"] == "web1"
    seen = api.only()
    assert (seen.method, seen.path, seen.query) == ("POST", "/api/v1/vm", {})
    assert seen.body == {"xml": XML, "node_limit": ["node1", "node2"], "selector": "mem",
                         "autostart": True, "migration_method": "live", "max_downtime_ms": 300,
                         "tags": ["web", "prod"], "anti_affinity": "webs", "target": "node1",
                         "start": True}
    assert seen.headers["X-Api-Key"] == KEY
    assert seen.headers["Content-Type"] == "application/json"


def test_vm_define_minimal_sends_only_the_xml(api: FakeApi, pvc: Run, tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(XML)
    api.route("POST", "/vm", (201, VM))
    assert pvc("vm", "define", str(xml), "--no-autostart").code == 0
    assert api.only().body == {"xml": XML, "autostart": False}


def test_vm_define_missing_file_is_one_line(api: FakeApi, pvc: Run, tmp_path: Path) -> None:
    r = pvc("vm", "define", str(tmp_path / "nope.xml"))
    assert r.code == 1
    assert r.err_lines == [f"Error: cannot read XML file {tmp_path / 'nope.xml'}: "
                           f"No such file or directory"]
    assert api.requests == []


def test_vm_migrate_target_force_live(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/vm/web1/migrate", (202, {**VM, "state": "migrate-live"}))
    r = pvc("vm", "migrate", "web1", "--target", "node2", "--force-live", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["state"] == "migrate-live"
    seen = api.only()
    assert (seen.method, seen.path, seen.query) == ("POST", "/api/v1/vm/web1/migrate", {})
    assert seen.body == {"target": "node2", "force_live": True}


@pytest.mark.parametrize("action", ["start", "stop", "shutdown", "restart", "disable"])
def test_vm_state_actions(api: FakeApi, pvc: Run, action: str) -> None:
    api.route("POST", f"/vm/web1/{action}", (202, VM))
    assert pvc("vm", action, "web1", "--force").code == 0
    seen = api.only()
    assert (seen.method, seen.path, seen.body) == ("POST", f"/api/v1/vm/web1/{action}",
                                                   {"force": True})


def test_vm_names_are_quoted_in_paths(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/vm/a%2Fb%20c", (200, VM))
    assert pvc("vm", "info", "a/b c").code == 0
    assert api.only().path == "/api/v1/vm/a%2Fb%20c"


def test_vm_move_and_unmigrate(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/vm/web1/move", (202, VM))
    api.route("POST", "/vm/web1/unmigrate", (202, VM))
    assert pvc("vm", "move", "web1", "--target", "node3").code == 0
    assert pvc("vm", "unmigrate", "web1").code == 0
    assert [(s.path, s.body) for s in api.requests] == [
        ("/api/v1/vm/web1/move", {"target": "node3"}), ("/api/v1/vm/web1/unmigrate", None)]


def test_vm_meta_shows_or_sets(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/vm/web1/meta", (200, META))
    api.route("POST", "/vm/web1", (200, {**META, "tags": []}))  # the new metadata
    r = pvc("vm", "meta", "web1", "-f", "json")
    assert r.json() == META
    assert api.requests[-1].method == "GET"
    r = pvc("vm", "meta", "web1", "--tag", "", "--node-limit", "", "--anti-affinity", "",
            "--max-downtime", "", "--node-selector", "", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["tags"] == []
    assert api.requests[-1].body == {"node_limit": [], "selector": None,
                                     "max_downtime_ms": None, "tags": [], "anti_affinity": None}
    assert pvc("vm", "meta", "web1", "--max-downtime", "750").code == 0
    assert api.requests[-1].body == {"max_downtime_ms": 750}


def test_vm_modify_puts_the_xml(api: FakeApi, pvc: Run, tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(XML)
    api.route("PUT", "/vm/web1/xml", (200, VM))
    assert pvc("vm", "modify", "web1", str(xml)).code == 0
    seen = api.only()
    assert (seen.method, seen.path, seen.body) == ("PUT", "/api/v1/vm/web1/xml", {"xml": XML})


def test_node_flush_dry_run(api: FakeApi, pvc: Run) -> None:
    plan = [{"vm": VM["uuid"], "name": "web1", "target": "node2", "method": "live",
             "live_only": False, "reason": "node2 has the most free memory (mem)"}]
    api.route("POST", "/node/node1/flush", (200, {"node": "node1", "plan": plan}))
    r = pvc("node", "flush", "node1", "--dry-run", "-f", "json")
    assert r.code == 0, r.err
    assert r.json() == {"node": "node1", "plan": plan}
    seen = api.only()
    assert (seen.method, seen.path, seen.query) == ("POST", "/api/v1/node/node1/flush",
                                                    {"dry_run": ["true"]})
    assert seen.body is None  # the endpoint takes no body
    r = pvc("node", "flush", "node1", "--dry-run")
    assert "web1 -> node2 (live): node2 has the most free memory (mem)" in r.out


def test_cluster_maintenance_on_and_off(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/cluster/maintenance", (200, {"name": "c1", "maintenance": True}))
    assert pvc("cluster", "maintenance", "on").code == 0
    assert pvc("cluster", "maintenance", "off").code == 0
    assert [(s.method, s.path, s.body) for s in api.requests] == [
        ("POST", "/api/v1/cluster/maintenance", {"enabled": True}),
        ("POST", "/api/v1/cluster/maintenance", {"enabled": False})]
    assert pvc("cluster", "maintenance", "maybe").code == 2


def test_vm_log_lines(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/vm/web1/log", (200, {"lines": ["boot", "login:"]}))
    r = pvc("vm", "log", "web1", "--lines", "5")
    assert r.code == 0, r.err
    assert r.out == "boot\nlogin:\n"
    seen = api.only()
    assert (seen.method, seen.path, seen.query) == ("GET", "/api/v1/vm/web1/log",
                                                    {"lines": ["5"]})
    assert pvc("vm", "log", "web1", "--lines", "0").code == 2
    assert pvc("vm", "log", "web1", "--lines", "10001").code == 2


def test_vm_log_follow_prints_only_new_lines(api: FakeApi, pvc: Run,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    api.route("GET", "/vm/web1/log", (200, {"lines": ["a", "b"]}),
              (200, {"lines": ["a", "b", "c"]}), (200, {"lines": ["b", "c", "d", "e"]}))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt  # the user presses Ctrl-C

    monkeypatch.setattr("pvc_cli.commands.vm.time.sleep", sleep)
    r = pvc("vm", "log", "web1", "--follow")
    assert r.code == 0, r.err
    assert r.out == "a\nb\nc\nd\ne\n"
    assert [s.query["lines"] for s in api.requests] == [["100"], ["1000"], ["1000"]]


# -- destructive commands ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [["vm", "undefine", "web1"], ["vm", "remove", "web1"],
                                  ["job", "cancel", "j1"], ["fault", "delete", "f1"]])
def test_destructive_without_yes_and_terminal_refuses(api: FakeApi, pvc: Run,
                                                      argv: list[str]) -> None:
    r = pvc(*argv)
    assert r.code == 1
    assert len(r.err_lines) == 1
    assert r.err_lines[0].startswith("Error: refusing to ")
    assert r.err_lines[0].endswith("without confirmation (no terminal): add --yes")
    assert api.requests == []


def test_destructive_with_yes(api: FakeApi, pvc: Run) -> None:
    api.route("DELETE", "/vm/web1", (204, None))
    api.route("POST", "/job/j1/cancel", (200, job(state="cancelled")))
    api.route("DELETE", "/fault/f1", (200, {}))
    assert pvc("vm", "undefine", "web1", "--yes").code == 0
    assert pvc("vm", "remove", "web1", "--yes").code == 0
    r = pvc("job", "cancel", "j1", "--yes", "-f", "json")
    assert r.json()["state"] == "cancelled"
    assert pvc("fault", "delete", "f1", "-y").code == 0
    assert [(s.method, s.path, s.query, s.body) for s in api.requests] == [
        ("DELETE", "/api/v1/vm/web1", {}, None),
        ("DELETE", "/api/v1/vm/web1", {"disks": ["true"]}, None),
        ("POST", "/api/v1/job/j1/cancel", {}, None), ("DELETE", "/api/v1/fault/f1", {}, None)]


class FakeTty:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


@pytest.mark.parametrize(("answer", "sent"), [("y\n", 1), ("yes\n", 1), ("\n", 0), ("n\n", 0)])
def test_destructive_on_a_terminal_asks(api: FakeApi, pvc: Run,
                                        monkeypatch: pytest.MonkeyPatch, answer: str,
                                        sent: int) -> None:
    api.route("DELETE", "/vm/web1", (204, None))
    monkeypatch.setattr("sys.stdin", FakeTty(answer))
    r = pvc("vm", "remove", "web1")
    assert "Really remove vm web1 and delete its disks? [y/N]" in r.err
    assert len(api.requests) == sent
    assert r.code == (0 if sent else 1)


# -- --wait -------------------------------------------------------------------------------


def test_node_flush_wait_polls_the_job(api: FakeApi, pvc: Run,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pvc_cli.progress.time.sleep", lambda s: None)
    api.route("POST", "/node/node1/flush", (202, job()))
    api.route("GET", "/job/j1",
              (200, job(state="running", progress={"done": 0, "total": 2})),
              (200, job(state="running", progress={"done": 1, "total": 2})),
              (200, job(state="running", progress={"done": 1, "total": 2})),
              (200, job(state="succeeded", progress={"done": 2, "total": 2})))
    r = pvc("node", "flush", "node1", "--wait", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["state"] == "succeeded"
    assert r.err_lines == ["job j1 flush node1: 0/0 queued", "job j1 flush node1: 0/2",
                           "job j1 flush node1: 1/2", "job j1 flush node1: 2/2 succeeded"]
    assert (api.requests[0].query, api.requests[0].body) == ({}, None)  # the client polls
    assert len(api.requests) == 5


def test_failed_job_prints_the_job_then_fails(api: FakeApi, pvc: Run,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pvc_cli.progress.time.sleep", lambda s: None)
    api.route("POST", "/node/node1/ready", (202, job(kind="ready")))
    api.route("GET", "/job/j1", (200, job(kind="ready", state="failed",
                                          result="node2 has no room")))
    r = pvc("node", "ready", "node1", "--wait", "-f", "json")
    assert r.code == 1
    assert r.json()["state"] == "failed"
    assert r.err_lines[-1] == "Error: job j1 ready node1 failed: node2 has no room"


def test_job_wait_gives_up_after_the_timeout(api: FakeApi, pvc: Run,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 5))
    monkeypatch.setattr("pvc_cli.progress.time.sleep", lambda s: None)
    monkeypatch.setattr("pvc_cli.progress.time.monotonic", lambda: float(next(clock)))
    api.route("POST", "/node/node1/flush", (202, job(state="running")))
    api.route("GET", "/job/j1", (200, job(state="running")))
    r = pvc("node", "flush", "node1", "--wait", "--timeout", "12")
    assert r.code == 1
    assert r.err_lines[-1] == ("Error: gave up waiting after 12 s: job j1 flush node1 is "
                               "running and goes on (see 'pvc job show j1')")


def test_vm_start_wait_asks_the_api_to_wait(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/vm/web1/start", (200, {**VM, "done": True}))
    r = pvc("vm", "start", "web1", "--wait", "--timeout", "90", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["done"] is True
    seen = api.only()
    assert seen.query == {"wait": ["true"], "timeout": ["90"]}
    assert seen.body == {"force": False}
    assert r.err_lines == ["waiting for start of vm web1 (at most 90 s)"]


def test_vm_wait_not_done_shows_the_vm_and_fails(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/vm/web1/migrate", (202, {**VM, "state": "migrate", "done": False}))
    r = pvc("vm", "migrate", "web1", "--wait", "--timeout", "7200", "-f", "json")
    assert r.code == 1
    assert r.json()["state"] == "migrate"  # the result is still shown
    assert api.only().query == {"wait": ["true"], "timeout": ["3600"]}  # the API's maximum
    assert r.err_lines[-1] == ("Error: gave up waiting after 3600 s: migration of vm web1 is "
                               "not done yet and goes on")


def test_node_primary_wait(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/node/node2/primary", (200, {**NODE, "name": "node2", "done": True}))
    r = pvc("node", "primary", "node2", "--wait", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["coordinator_state"] == "primary"
    assert api.only().query == {"wait": ["true"], "timeout": ["600"]}


# -- failures ---------------------------------------------------------------------------


def test_api_conflict_is_one_line_and_exit_1(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/vm/web1/start", (409, {"message": "vm web1 is already starting",
                                               "field": None}))
    r = pvc("vm", "start", "web1")
    assert r.code == 1
    assert r.err_lines == ["Error: vm web1 is already starting"]
    assert r.out == ""


def test_api_field_is_named(api: FakeApi, pvc: Run, tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(XML)
    api.route("POST", "/vm", (400, {"message": "must be one of: auto, live, shutdown",
                                    "field": "migration_method"}))
    r = pvc("vm", "define", str(xml), "--migration-method", "teleport")
    assert r.code == 1
    assert r.err_lines == ["Error: must be one of: auto, live, shutdown "
                           "(field: migration_method)"]


def test_error_without_the_api_shape(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/cluster", (502, b"<html>bad gateway</html>"))
    r = pvc("cluster", "status")
    assert r.code == 1
    assert r.err_lines == ["Error: HTTP 502 Bad Gateway"]


def test_debug_shows_a_traceback(api: FakeApi, pvc: Run) -> None:
    api.route("POST", "/vm/web1/start", (409, {"message": "no", "field": None}))
    r = pvc("--debug", "vm", "start", "web1")
    assert r.code == 1
    assert r.err.startswith("Traceback (most recent call last):")
    assert "pvc_cli.errors.ApiError: no" in r.err
    assert r.err_lines[-1] == "Error: no"
    r = pvc("vm", "start", "web1", "--debug")  # also accepted after the command
    assert "Traceback" in r.err


def test_unreachable_server_is_one_line(client_config: Path, pvc: Run) -> None:
    import socket

    from pvc_cli import connections

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    connections.add_connection("gone", "127.0.0.1", port, KEY)
    r = pvc("vm", "list")
    assert r.code == 1
    assert r.err_lines == [f"Error: cannot reach http://127.0.0.1:{port}: Connection refused"]
    assert KEY not in r.err
    r = pvc("--debug", "vm", "list")
    assert "Traceback" in r.err and KEY not in r.err


def test_usage_error_is_one_line_exit_2(api: FakeApi, pvc: Run) -> None:
    r = pvc("vm", "define", "x.xml", "--max-downtime", "soon")
    assert r.code == 2
    assert r.err_lines == ["Error: argument --max-downtime: not an integer: 'soon' "
                           "(see 'pvc vm define --help')"]
    r = pvc("vm", "info")
    assert r.code == 2
    assert r.err_lines == ["Error: the following arguments are required: VM "
                           "(see 'pvc vm info --help')"]
    assert api.requests == []
