"""Failures through the real executable: one ``Error:`` line on stderr and exit 1
(2 for a bad command line), a traceback only with ``--debug``, nothing changed."""

from __future__ import annotations

from pathlib import Path

from pvc_core.store import Store
from tests.cli.conftest import Pvc, write_xml


def test_conflict_is_one_line(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, vm_uuid = write_xml(tmp_path, "cli-dup")
    pvc("vm", "define", path, "-f", "json").ok()
    line = pvc("vm", "define", path, "-f", "json").one_error()  # 409
    assert "already defined" in line and vm_uuid in line
    assert [v for v in pvc("vm", "list", "-f", "json").ok().json
            if v["name"] == "cli-dup"] != []


def test_unknown_vm_is_one_line(pvc: Pvc) -> None:
    assert "cli-nope" in pvc("vm", "info", "cli-nope").one_error()
    assert "cli-nope" in pvc("vm", "start", "cli-nope").one_error()
    waited = pvc("vm", "start", "cli-nope", "--wait")  # the note, then the one error line
    assert waited.code == 1 and waited.out == "" and "Traceback" not in waited.err
    assert waited.err_lines == ["waiting for start of vm cli-nope (at most 600 s)",
                                "Error: VM 'cli-nope' does not exist"], str(waited)
    assert "cli-nope" in pvc("vm", "meta", "cli-nope").one_error()


def test_debug_prints_the_traceback(pvc: Pvc, keys: dict[str, str]) -> None:
    for argv in (("--debug", "vm", "info", "cli-nope"), ("vm", "info", "cli-nope", "--debug")):
        failed = pvc(*argv)
        assert failed.code == 1 and failed.out == ""
        assert failed.err.startswith("Traceback (most recent call last):"), str(failed)
        assert "ApiError" in failed.err
        assert failed.err_lines[-1].startswith("Error: ") and "cli-nope" in failed.err_lines[-1]
        assert keys["admin"] not in failed.err


def test_read_only_connection(pvc: Pvc, store: Store, tmp_path: Path,
                              keys: dict[str, str]) -> None:
    path, _ = write_xml(tmp_path, "cli-ro")
    line = pvc("vm", "define", path, connection="viewer").one_error()
    assert "read-only" in line and keys["viewer"] not in line
    assert pvc("vm", "info", "cli-ro").code == 1  # not defined
    maintenance = store.cluster.maintenance()
    assert "read-only" in pvc("cluster", "maintenance", "on", connection="viewer").one_error()
    assert store.cluster.maintenance() == maintenance
    assert "read-only" in pvc("node", "flush", "node3", connection="viewer").one_error()
    assert pvc("node", "info", "node3", "-f", "json").ok().json["domain_state"] == "ready"
    # Reading works.
    assert len(pvc("node", "list", "-f", "json", connection="viewer").ok().json) == 3
    assert pvc("cluster", "status", "-f", "json", connection="viewer").ok().json["nodes"]


def test_destructive_command_without_yes_refuses(pvc: Pvc, store: Store,
                                                 tmp_path: Path) -> None:
    path, vm_uuid = write_xml(tmp_path, "cli-keep")
    pvc("vm", "define", path, "-f", "json").ok()
    for action in ("undefine", "remove"):
        line = pvc("vm", action, "cli-keep").one_error()
        assert line == (f"Error: refusing to {action} vm cli-keep"
                        f"{' and delete its disks' if action == 'remove' else ''} "
                        "without confirmation (no terminal): add --yes")
    assert vm_uuid in store.vms.uuids()
    assert pvc("vm", "info", "cli-keep", "-f", "json").ok().json["uuid"] == vm_uuid


def test_unreachable_connection(pvc: Pvc) -> None:
    for argv in (("cluster", "status"), ("vm", "list", "-f", "json")):
        line = pvc(*argv, connection="down").one_error()
        assert line.startswith("Error: cannot reach http://127.0.0.1:"), line


def test_connection_and_command_line_errors(pvc: Pvc) -> None:
    line = pvc("vm", "list", connection="nosuch").one_error()
    assert "nosuch" in line and "admin, down, viewer" in line
    assert pvc("vm", "frobnicate").one_error(code=2)
    assert pvc("vm", "info").one_error(code=2)  # missing argument
    assert pvc("vm", "define", "/nonexistent/vm.xml").one_error().startswith(
        "Error: cannot read XML file /nonexistent/vm.xml")
