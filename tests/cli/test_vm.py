"""``pvc vm ...`` through the real executable: define with every option, list
filters, every state change and migration with ``--wait``, metadata, modify,
the console log, undefine and remove."""

from __future__ import annotations

from pathlib import Path

from pvc_core.store import Store
from tests.cli.conftest import Pvc, Result, write_xml

FULL_META = {"node_limit": ["node1", "node2"], "selector": "vms", "autostart": True,
             "migration_method": "shutdown", "max_downtime_ms": 500, "tags": ["web", "prod"],
             "anti_affinity": "webs"}


def info(pvc: Pvc, vm: str) -> dict:  # type: ignore[type-arg]
    return pvc("vm", "info", vm, "-f", "json").ok().json  # type: ignore[no-any-return]


def waited(result: Result, what: str) -> dict:  # type: ignore[type-arg]
    """The VM a ``--wait -f json`` run printed; stderr holds the one ``waiting`` line."""
    result.ok()
    assert result.err_lines == [line for line in result.err_lines if "waiting for" in line], \
        str(result)
    assert what in result.err, str(result)
    return result.json  # type: ignore[no-any-return]


def test_define_with_every_option(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, vm_uuid = write_xml(tmp_path, "cli-def")
    defined = pvc("vm", "define", path, "--node-limit", "node1,node2", "--node-selector", "vms",
                  "--autostart", "--migration-method", "shutdown", "--max-downtime", "500",
                  "--tag", "web", "--tag", "prod", "--anti-affinity", "webs",
                  "--target", "node2", "--start", "-f", "json").ok().json
    assert defined["name"] == "cli-def" and defined["uuid"] == vm_uuid
    assert defined["node"] == "node2" and defined["state"] == "start"
    assert defined["meta"] == FULL_META
    shown = info(pvc, "cli-def")
    assert shown["uuid"] == vm_uuid and shown["node"] == "node2" and shown["state"] == "start"
    assert shown["meta"] == FULL_META and shown["memory_mib"] == 256 and shown["vcpus"] == 1
    assert info(pvc, vm_uuid)["name"] == "cli-def"  # by UUID too
    stored = store.vms.get("cli-def")
    assert stored.meta.tags == ("web", "prod") and stored.placement.node == "node2"
    # The table output flattens the metadata.
    table = pvc("vm", "info", "cli-def").ok().out
    assert "node_limit: node1, node2" in table and "tags: web, prod" in table
    # Without options: stopped, defaults.
    plain_path, _ = write_xml(tmp_path, "cli-def2")
    plain = pvc("vm", "define", plain_path, "--no-autostart", "-f", "json").ok().json
    assert plain["state"] == "stop" and plain["meta"]["autostart"] is False
    assert plain["meta"]["tags"] == [] and plain["meta"]["node_limit"] in ([], None)
    bad_path, _ = write_xml(tmp_path, "cli-def3")
    refused = pvc("vm", "define", bad_path, "--migration-method", "teleport").one_error()
    assert refused.endswith("(field: migration_method)")
    assert pvc("vm", "info", "cli-def3").code == 1  # nothing written


def test_list_with_filters(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    for name, tag, node in (("cli-l1", "blue", "node1"), ("cli-l2", "green", "node2")):
        path, _ = write_xml(tmp_path, name)
        pvc("vm", "define", path, "--tag", tag, "--target", node, "-f", "json").ok()
    pvc("vm", "start", "cli-l2", "--wait", "--timeout", "30", "-f", "json").ok()
    listed = {v["name"]: v for v in pvc("vm", "list", "-f", "json").ok().json}
    assert {"cli-l1", "cli-l2"} <= set(listed)
    assert listed["cli-l1"]["tags"] == ["blue"] and listed["cli-l1"]["node"] == "node1"
    assert listed["cli-l2"]["running"] is True
    assert set(listed["cli-l1"]) == {"name", "state", "node", "running", "memory_mib", "vcpus",
                                     "tags", "uuid"}
    blue = pvc("vm", "list", "--tag", "blue", "-f", "json").ok().json
    assert [v["name"] for v in blue] == ["cli-l1"]
    on2 = pvc("vm", "list", "--node", "node2", "-f", "json").ok().json
    assert "cli-l2" in {v["name"] for v in on2} and "cli-l1" not in {v["name"] for v in on2}
    assert all(v["node"] == "node2" for v in on2)
    started = pvc("vm", "list", "--state", "start", "-f", "json").ok().json
    assert "cli-l2" in {v["name"] for v in started} and "cli-l1" not in {v["name"] for v in started}
    assert all(v["state"] == "start" for v in started)
    both = pvc("vm", "list", "--state", "stop", "--tag", "blue", "-f", "json").ok().json
    assert [v["name"] for v in both] == ["cli-l1"]
    assert pvc("vm", "list", "--tag", "no-such-tag", "-f", "json").ok().json == []
    assert "(field: state)" in pvc("vm", "list", "--state", "sleeping").one_error()


def test_state_changes_and_migrations_with_wait(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, _ = write_xml(tmp_path, "cli-st")
    pvc("vm", "define", path, "--target", "node1", "-f", "json").ok()
    w = ("--wait", "--timeout", "60", "-f", "json")
    vm = waited(pvc("vm", "start", "cli-st", *w), "start of vm cli-st")
    assert vm["state"] == "start" and vm["running"] is True and vm["node"] == "node1"
    vm = waited(pvc("vm", "migrate", "cli-st", "--target", "node2", *w), "migration")
    assert vm["node"] == "node2" and vm["last_node"] == "node1" and vm["running"] is True
    assert info(pvc, "cli-st")["node"] == "node2"
    vm = waited(pvc("vm", "unmigrate", "cli-st", *w), "unmigration")
    assert vm["node"] == "node1" and vm["last_node"] is None and vm["running"] is True
    vm = waited(pvc("vm", "move", "cli-st", "--target", "node3", *w), "move")
    assert vm["node"] == "node3" and vm["last_node"] is None and vm["running"] is True
    assert pvc("vm", "unmigrate", "cli-st").one_error()  # moved: no previous node (409)
    vm = waited(pvc("vm", "restart", "cli-st", *w), "restart")
    assert vm["running"] is True and vm["node"] == "node3"
    vm = waited(pvc("vm", "shutdown", "cli-st", *w), "shutdown")
    assert vm["running"] is False
    assert info(pvc, "cli-st")["running"] is False
    vm = waited(pvc("vm", "start", "cli-st", *w), "start")
    assert vm["running"] is True
    vm = waited(pvc("vm", "stop", "cli-st", *w), "stop")
    assert vm["state"] == "stop" and vm["running"] is False
    vm = waited(pvc("vm", "disable", "cli-st", *w), "disable")
    assert vm["state"] == "disable"
    assert info(pvc, "cli-st")["state"] == "disable"
    assert "cli-st" in pvc("vm", "restart", "cli-st").one_error()  # disabled: 409
    # Without --wait: the API answers at once (202), nothing on stderr.
    quick = pvc("vm", "start", "cli-st", "-f", "json").ok()
    assert quick.json["state"] == "start" and quick.err == ""


def test_meta_show_and_set(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, _ = write_xml(tmp_path, "cli-meta")
    pvc("vm", "define", path, "--tag", "old", "-f", "json").ok()
    meta = pvc("vm", "meta", "cli-meta", "-f", "json").ok().json
    assert meta["tags"] == ["old"] and set(meta) >= set(FULL_META)
    changed = pvc("vm", "meta", "cli-meta", "--tag", "a", "--tag", "b", "--autostart",
                  "--node-limit", "node3", "--node-selector", "mem", "--migration-method",
                  "live", "--max-downtime", "300", "--anti-affinity", "grp",
                  "-f", "json").ok().json
    want = {"node_limit": ["node3"], "selector": "mem", "autostart": True,
            "migration_method": "live", "max_downtime_ms": 300, "tags": ["a", "b"],
            "anti_affinity": "grp"}
    assert {k: changed[k] for k in want} == want
    assert {k: v for k, v in pvc("vm", "meta", "cli-meta", "-f", "json").ok().json.items()
            if k in want} == want
    assert info(pvc, "cli-meta")["meta"]["node_limit"] == ["node3"]
    assert store.vms.get("cli-meta").meta.node_limit == ("node3",)
    # Empty values unset.
    cleared = pvc("vm", "meta", "cli-meta", "--tag", "", "--node-limit", "",
                  "--anti-affinity", "", "--node-selector", "", "-f", "json").ok().json
    assert cleared["tags"] == [] and not cleared["node_limit"]
    assert cleared["anti_affinity"] is None and cleared["selector"] is None
    assert cleared["autostart"] is True  # untouched
    bad = pvc("vm", "meta", "cli-meta", "--node-limit", "node9").one_error()
    assert "(field: node_limit[0])" in bad
    assert store.vms.get("cli-meta").meta.node_limit == ()


def test_modify(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, vm_uuid = write_xml(tmp_path, "cli-mod")
    assert pvc("vm", "define", path, "-f", "json").ok().json["memory_mib"] == 256
    bigger, _ = write_xml(tmp_path, "cli-mod", memory_mib=512, vm_uuid=vm_uuid)
    changed = pvc("vm", "modify", "cli-mod", bigger, "-f", "json").ok().json
    assert changed["memory_mib"] == 512 and changed["uuid"] == vm_uuid
    assert info(pvc, "cli-mod")["memory_mib"] == 512
    other, _ = write_xml(tmp_path, "cli-mod", memory_mib=1024)  # another UUID
    assert "(field: xml)" in pvc("vm", "modify", "cli-mod", other).one_error()
    assert "cannot read XML file" in pvc("vm", "modify", "cli-mod",
                                         tmp_path / "missing.xml").one_error()
    assert info(pvc, "cli-mod")["memory_mib"] == 512


def test_console_log(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, vm_uuid = write_xml(tmp_path, "cli-log")
    pvc("vm", "define", path, "-f", "json").ok()
    assert pvc("vm", "log", "cli-log").ok().out == ""
    store.vms.set_console(vm_uuid, "".join(f"line {i}\n" for i in range(300)))
    assert pvc("vm", "log", "cli-log", "--lines", "3").ok().out == \
        "line 297\nline 298\nline 299\n"
    default = pvc("vm", "log", "cli-log").ok().out.splitlines()
    assert len(default) == 100 and default[0] == "line 200" and default[-1] == "line 299"
    assert pvc("vm", "log", "cli-log", "--lines", "0").one_error(code=2)
    assert pvc("vm", "log", "cli-log", "--lines", "10001").one_error(code=2)


def test_undefine_and_remove(pvc: Pvc, store: Store, tmp_path: Path) -> None:
    path, vm_uuid = write_xml(tmp_path, "cli-del")
    pvc("vm", "define", path, "-f", "json").ok()
    refused = pvc("vm", "remove", "cli-del", "--yes").one_error()
    assert "storage" in refused
    assert info(pvc, "cli-del")["uuid"] == vm_uuid
    unconfirmed = pvc("vm", "undefine", "cli-del").one_error()
    assert "refusing" in unconfirmed and "--yes" in unconfirmed
    assert info(pvc, "cli-del")["uuid"] == vm_uuid
    pvc("vm", "start", "cli-del", "--wait", "--timeout", "30", "-f", "json").ok()
    assert pvc("vm", "undefine", "cli-del", "--yes").one_error()  # running: 409
    pvc("vm", "stop", "cli-del", "--wait", "--timeout", "30", "-f", "json").ok()
    gone = pvc("vm", "undefine", "cli-del", "--yes").ok()
    assert gone.out == "" and gone.err == ""
    assert vm_uuid not in store.vms.uuids()
    assert pvc("vm", "info", "cli-del").one_error()
    assert pvc("vm", "undefine", "cli-del", "--yes").one_error()  # 404
