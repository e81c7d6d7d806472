"""The application: help, docs/cli.md, global options, plugins, start-up imports, helpers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from stevedore import ExtensionManager

from pvc_cli import output
from pvc_cli.app import PVCApp, split_global
from pvc_cli.commands.decision import parse_time
from pvc_cli.commands.vm import new_lines
from tests.unit.cli.conftest import FakeApi, Result
from tests.unit.fake_dist import FakeDistInstaller

ROOT = Path(__file__).resolve().parents[3]
CLI_DOC = ROOT / "docs" / "cli.md"
CLIFF_BUILTIN = {"help", "complete"}

Run = Callable[..., Result]


def documented_commands(text: str) -> set[str]:
    """``<object> <action>`` of every command table row (`` | `pvc object action ...` | ``)."""
    found = set()
    for span in re.findall(r"^\| `pvc ([^`]*)`", text, re.M):
        words = []
        for word in span.split():
            if not re.fullmatch(r"[a-z]+", word):
                break
            words.append(word)
        if len(words) >= 2:
            found.add(" ".join(words[:2]))
    return found


def registered_commands() -> set[str]:
    return {name for name, _ in PVCApp().command_manager} - CLIFF_BUILTIN


def test_doc_parser_can_fail() -> None:
    assert documented_commands("| `pvc vm define XMLFILE [--start]` | `pvc -c x` |\n"
                               "| `pvc -c x vm list` |") == {"vm define"}
    assert documented_commands("| `pvc node` |, pvc vm list, see `pvc vm info`") == set()


def test_every_documented_command_exists() -> None:
    documented = documented_commands(CLI_DOC.read_text())
    assert len(documented) >= 30, documented
    assert documented - registered_commands() == set()


def test_every_command_is_documented() -> None:
    assert registered_commands() - documented_commands(CLI_DOC.read_text()) == set()


def command_classes() -> set[str]:
    """``module:Class`` of every concrete command class in ``pvc_cli.commands``."""
    import importlib
    import inspect
    import pkgutil

    from cliff.command import Command

    import pvc_cli.commands

    found = set()
    for info in pkgutil.iter_modules(pvc_cli.commands.__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"pvc_cli.commands.{info.name}")
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Command) and not name.startswith("_")
                    and obj.__module__ == module.__name__):
                found.add(f"{module.__name__}:{name}")
    return found


def test_pyproject_registers_every_command() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project.get("scripts", {}).get("pvc") == "pvc_cli.app:main"
    registered = project.get("entry-points", {}).get("pvc.cli", {})
    assert len(command_classes()) >= 30
    assert set(registered.values()) == command_classes()
    for name, target in registered.items():  # vm_define -> pvc_cli.commands.vm:...
        assert target.startswith(f"pvc_cli.commands.{name.split('_')[0]}:"), name


def test_help_lists_the_commands(pvc: Run) -> None:
    r = pvc("--help")
    assert r.code == 0
    listed = {m.group(1) for m in re.finditer(r"^  ([a-z]+ [a-z]+) ", r.out, re.M)}
    assert listed == registered_commands()
    assert "vm define" in listed and "connection add" in listed


def test_no_command_prints_the_help_and_exits_2(pvc: Run) -> None:
    r = pvc()
    assert r.code == 2
    assert "Commands:" in r.out


def test_help_command(pvc: Run) -> None:
    r = pvc("help")
    assert r.code == 0
    assert "  vm define " in r.out
    r = pvc("help", "bogus")
    assert r.code == 2
    assert r.err_lines == ["Error: unknown command 'bogus' (see 'pvc --help')"]
    r = pvc("help", "vm")  # cliff lists the commands that start so
    assert r.code == 0 and "  vm define" in r.out


def test_command_help(pvc: Run) -> None:
    for argv in (["help", "vm", "define"], ["vm", "define", "--help"], ["--help", "vm", "define"]):
        r = pvc(*argv)
        assert r.code == 0, (argv, r.err)
        assert "--node-limit" in r.out and "XMLFILE" in r.out


def test_version(pvc: Run) -> None:
    r = pvc("--version")
    assert r.code == 0
    assert r.out.startswith("pvc ")


def test_unknown_command_is_one_line_exit_2(pvc: Run) -> None:
    r = pvc("vm", "lsit")
    assert r.code == 2
    assert r.err_lines == ["Error: unknown command 'vm lsit'; did you mean: vm list, vm stop, "
                           "vm start? (see 'pvc --help')"]
    assert r.out == ""
    r = pvc("vm")
    assert r.code == 2
    assert r.err_lines[0].startswith("Error: 'vm' needs an action: define, disable, info,")


def test_global_options_go_before_the_command(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/vm", (200, [{"name": "web1", "state": "start"}]))
    # After the command, -c is the listing's column option, not the connection.
    r = pvc("vm", "list", "-c", "name", "-f", "value")
    assert r.code == 0, r.err
    assert r.out == "web1\n"
    r = pvc("-f", "json", "vm", "list")
    assert r.code == 2
    assert r.err_lines == ["Error: unknown global option '-f': global options go before the "
                           "command, the command's options after it"]


def test_split_global() -> None:
    assert split_global(["-c", "lab", "--debug", "vm", "list", "-c", "name"]) == (
        ["-c", "lab", "--debug"], ["vm", "list", "-c", "name"])
    assert split_global(["--connection=lab", "vm"]) == (["--connection=lab"], ["vm"])
    assert split_global(["vm", "list"]) == ([], ["vm", "list"])


PLUGIN = '''
from pvc_cli import output
from pvc_cli.commands.base import PvcLister


class ListBackup(PvcLister):
    """List backups"""

    def take_action(self, parsed_args):
        return output.rows(output.items(self.client.get("/backup")), ("name", "vm"))
'''


def test_a_plugin_adds_a_command(fake_dist: FakeDistInstaller, api: FakeApi, pvc: Run,
                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # stevedore keeps the entry points of a group for the life of the process, and
    # caches every sys.path it sees on disk: not in the user's home for a test.
    from stevedore import _cache

    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
    monkeypatch.setattr(_cache._c, "_dir", str(tmp_path / "entrypoints-cache"))
    fake_dist.install("pvc-backup", {
        "pvc.cli": {"backup_list": "pvc_backup_cli:ListBackup"},
        "pvc.cli.snapshot": {"snapshot_list": "pvc_backup_cli:ListBackup"},
        "pvc.cli.backup_list": {"a_hook": "pvc_backup_cli:ListBackup"},  # a cliff hook group
    }, {"pvc_backup_cli": PLUGIN})
    r = pvc("--help")
    assert "backup list" in r.out and "snapshot list" in r.out
    assert "a hook" not in r.out
    api.route("GET", "/backup", (200, [{"name": "b1", "vm": "web1", "extra": 1}]))
    r = pvc("backup", "list", "-f", "json")
    assert r.code == 0, r.err
    assert r.json() == [{"name": "b1", "vm": "web1"}]


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys\nfrom pvc_cli.app import main\nrc = main(['--help'])\n"
            "heavy = ['urllib.request', 'ssl', 'yaml', 'tqdm', 'jsonschema', 'http.client',"
            " 'pvc_cli.client', 'pvc_core.store']\n"
            "print('@@' + repr([m for m in heavy if m in sys.modules]) + repr(rc))\n")
    proc = subprocess.run([sys.executable, "-c", code],  # noqa: S603 - fixed argv
                          capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rsplit("@@", 1)[1].strip() == "[]0"


# -- helpers ----------------------------------------------------------------------------------


def test_new_lines() -> None:
    assert new_lines([], ["a", "b"]) == ["a", "b"]
    assert new_lines(["a", "b"], ["a", "b"]) == []
    assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_lines(["a", "b", "c"], ["c", "d"]) == ["d"]  # the window moved on
    assert new_lines(["x", "y"], ["p", "q"]) == ["p", "q"]  # no overlap: all of it is new
    assert new_lines(["a"], []) == []


def test_parse_time() -> None:
    assert parse_time("1700000000") == 1700000000.0
    assert parse_time("10m", now=1000.0) == 400.0
    assert parse_time("2h", now=10000.0) == 2800.0
    assert parse_time("2024-01-02T03:04:05+00:00") == 1704164645.0
    with pytest.raises(Exception, match="not a time"):
        parse_time("yesterday")


def test_decision_since_accepts_an_age(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/decision", (200, []))
    assert pvc("decision", "list", "--since", "1h").code == 0
    since = float(api.only().query["since"][0])
    assert abs(since - (__import__("time").time() - 3600)) < 60
    assert pvc("decision", "list", "--since", "soon").code == 2


def test_output_columns() -> None:
    cols, vals = output.show({"name": "x", "meta": {"tags": ["a", "b"], "n": {"k": 1}},
                              "when": 0, "none": None}, ("name",), ("when",))
    assert cols == ("name", "meta", "when", "none")
    meta = vals[1]
    assert isinstance(meta, output.DictColumn)
    assert meta.human_readable() == "tags: a, b\nn.k: 1"
    assert meta.machine_readable() == {"tags": ["a", "b"], "n": {"k": 1}}
    assert isinstance(vals[2], output.TimeColumn) and vals[2].machine_readable() == 0
    assert output.ListColumn([{"a": 1}, {"a": 2}]).human_readable() == "a=1\na=2"
    assert output.ProgressColumn({"done": 3, "total": 6}).human_readable() == "3/6"
    assert output.items({"nodes": [{"name": "a"}]}, "nodes") == [{"name": "a"}]
    assert output.items([{"name": "a"}, "junk"]) == [{"name": "a"}]


def test_json_output_is_valid_for_nested_values(api: FakeApi, pvc: Run) -> None:
    job = {"id": "j1", "kind": "flush", "state": "running", "params": {"node": "n1"},
           "progress": {"done": 1, "total": 2}, "plan": [{"vm": "u", "target": "n2"}],
           "created": 1.5}
    api.route("GET", "/job/j1", (200, job))
    r = pvc("job", "show", "j1", "-f", "json")
    assert json.loads(r.out) == job
    r = pvc("job", "show", "j1")
    assert "1/2" in r.out and "u -> n2 (?)" in r.out
