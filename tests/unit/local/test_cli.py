"""pvc-local's command line: one-line errors, exit codes, the status table."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc_local import cli, procs
from pvc_local.state import ClusterState, NodeEntry, save_state
from pvc_local.status import NodeStatus

Sleeper = Callable[[], subprocess.Popen[bytes]]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "needle"), [
    ([], "required: COMMAND"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["up", "--nodes", "0"], "--nodes: must be at least 1"),
    (["up", "--nodes", "three"], "not a whole number"),
    (["up", "--hypervisor", "xen"], "invalid choice: 'xen'"),
    (["up", "--wait", "-1"], "must be greater than 0"),
    (["kill"], "required: NODE"),
    (["restart", "node1", "--wait", "x"], "not a number"),
    (["status", "--yaml"], "unrecognized arguments: --yaml"),
])
def test_argument_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                      needle: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("pvc-local: ")
    assert needle in err


def test_operation_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    code, out, err = run(capsys, "--dir", str(tmp_path), "status")
    assert (code, out) == (1, "")
    assert err == f"pvc-local: no local cluster in {tmp_path} (start one with: pvc-local up)\n"
    code, _, err = run(capsys, "kill", "node1", "--dir", str(tmp_path))
    assert code == 1 and err.count("\n") == 1
    (tmp_path / "cluster.json").write_text("{broken")
    code, _, err = run(capsys, "status", "--dir", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and "damaged cluster record" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from pvc_local.cluster import LocalClusterError

    with pytest.raises(LocalClusterError):
        cli.main(["--debug", "--dir", str(tmp_path), "status"])


def test_down_without_cluster_is_fine(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    code, out, err = run(capsys, "down", "--dir", str(tmp_path / "none"))
    assert (code, err) == (0, "")
    assert out == f"nothing running in {tmp_path / 'none'}\n"


def test_dir_from_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVC_LOCAL_DIR", str(tmp_path / "env"))
    _, _, err = run(capsys, "status")
    assert str(tmp_path / "env") in err


def test_status_table_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               sleeper: Sleeper) -> None:
    ref = procs.ref_of(sleeper().pid)
    save_state(tmp_path, ClusterState(
        str(tmp_path), "fake", False, 42181, str(tmp_path / "zookeeper"), None,
        nodes=(NodeEntry("node1", 1, "c", "l", "s", ref), NodeEntry("node2", 2, "c", "l", "s"))))
    code, out, _ = run(capsys, "status", "--dir", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"local cluster in {tmp_path}: hypervisor fake, " \
                       "ZooKeeper 127.0.0.1:42181 (down)"
    assert lines[1].split() == ["NODE", "PID", "PROCESS", "DAEMON", "COORDINATOR", "DOMAIN",
                                "VMS"]
    assert lines[2].split() == ["node1", str(ref.pid), "alive", "-", "-", "-", "-"]
    assert lines[3].split() == ["node2", "-", "down", "-", "-", "-", "-"]
    code, out, _ = run(capsys, "--dir", str(tmp_path), "status", "--json")
    data = json.loads(out)
    assert data["zookeeper"] == {"hosts": "127.0.0.1:42181", "process": "down"}
    assert [n["process"] for n in data["nodes"]] == ["alive", "down"]


def test_format_table_aligns() -> None:
    rows = [NodeStatus("node1", 12, "alive", "run", "primary", "ready", 3, "x"),
            NodeStatus("node10", None, "dead", None, None, None, None, "y")]
    lines = cli.format_table(rows).splitlines()
    assert len({line.index("PROCESS") if "PROCESS" in line else None for line in lines[:1]}) == 1
    assert lines[1].index("alive") == lines[2].index("dead") == lines[0].index("PROCESS")
    assert lines[1].split()[-1] == "3" and lines[2].split()[-1] == "-"


def test_demo_missing_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pvc_local.demo", None)  # import fails
    code, _, err = run(capsys, "demo", "--dir", str(tmp_path))
    assert code == 1
    assert err.startswith("pvc-local: the demo is not available") and err.count("\n") == 1


def test_console_script_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "pvc_local.cli", "--help"],  # noqa: S603
                            capture_output=True, text=True, timeout=60, check=True)
    for command in ("up", "down", "status", "kill", "hang", "resume", "restart", "demo"):
        assert command in result.stdout
