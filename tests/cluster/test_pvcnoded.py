"""The pvcnoded process: exit codes, log format, SIGTERM, and schema upgrades.

Each test runs ``python -m pvc_core.daemon --config FILE`` as a real process
against the module's ZooKeeper, on its own keyspace root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pvc_core.keyspace import SCHEMA_VERSION
from pvc_core.store import Store
from pvc_local.zookeeper import ZooKeeperServer
from tests.cluster.conftest import wait_for

pytestmark = pytest.mark.zookeeper
T = 30
ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (INFO|WARNING|ERROR) +node1 \[\w+\] ")


def write_config(tmp: Path, zk: ZooKeeperServer, root: str, **extra: object) -> Path:
    cfg = {"node": {"name": "node1", "state_dir": str(tmp / "state")},
           "cluster": {"nodes": ["node1"]},
           "zookeeper": {"hosts": [zk.hosts], "root": root, "session_timeout": 4},
           "timers": {"keepalive_interval": 0.5}, "fencing": {"enabled": False},
           "hypervisor": {"driver": "fake", "fake": {}}}
    cfg.update(extra)  # type: ignore[arg-type]
    path = tmp / "pvc.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Daemon:
    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                [sys.executable, "-m", "pvc_core.daemon", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=config.parent)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = T) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def env(zk_for_daemons: ZooKeeperServer, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    root = f"/pvcnoded-{uuid.uuid4().hex[:8]}"
    store = Store.connect(zk_for_daemons.hosts, root=root)
    yield store, root
    store.close()


def daemon_state(store: Store) -> str | None:
    try:
        return store.nodes.get("node1").value.daemon_state.value
    except Exception:  # noqa: BLE001 - not registered yet
        return None


def test_invalid_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "pvc.yaml"
    bad.write_text("cluster: {nodes: [node1]}\nfencing: {saving_throws: six}\n")
    proc = subprocess.run([sys.executable, "-m", "pvc_core.daemon", "--config", str(bad)],  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'pvcnoded: fencing.saving_throws: must be an integer >= 0, got "six"']


def test_start_logs_and_sigterm(zk_for_daemons: ZooKeeperServer, tmp_path: Path,
                                env: tuple[Store, str]) -> None:
    store, root = env
    d = Daemon(write_config(tmp_path, zk_for_daemons, root), tmp_path / "log")
    try:
        wait_for(lambda: daemon_state(store) == "run", T, "daemon running")
        text = d.text()
        assert re.search(r"^PVC node daemon \S+ \| node node1 \| cluster pvc", text, re.M)
        daemon_lines = [ln for ln in text.splitlines() if "[daemon]" in ln]
        assert daemon_lines and all(LINE.match(ln) for ln in daemon_lines), daemon_lines
        assert "\x1b[" not in text  # no colour when not on a terminal
        seq = lambda: json.loads(store.zk.get(store.ks.node_keepalive("node1"))[0])["seq"]  # noqa: E731
        first = seq()
        wait_for(lambda: seq() > first, T, "keepalive advancing")

        d.proc.send_signal(signal.SIGTERM)
        assert d.wait() == 0
        assert daemon_state(store) == "stop"
        assert store.zk.exists(store.ks.node_alive("node1")) is None
        assert "shutting down" in d.text() and "stopped" in d.text()
    finally:
        d.kill()


def test_newer_schema_it_does_not_know_exits_3(zk_for_daemons: ZooKeeperServer,
                                                tmp_path: Path, env: tuple[Store, str]) -> None:
    store, root = env
    d = Daemon(write_config(tmp_path, zk_for_daemons, root), tmp_path / "log")
    try:
        wait_for(lambda: daemon_state(store) == "run", T, "daemon running")
        store.zk.set(store.ks.schema(), str(SCHEMA_VERSION + 1).encode())
        assert d.wait() == 3
        assert f"moved to version {SCHEMA_VERSION + 1}, newer than this PVC knows" in d.text()
    finally:
        d.kill()


def test_schema_upgrade_by_another_node_re_executes_in_place(
        zk_for_daemons: ZooKeeperServer, tmp_path: Path, env: tuple[Store, str]) -> None:
    """The installed code is upgraded under the running daemon; when the cluster's
    schema moves to the new version, the daemon re-executes itself (same PID)."""
    store, root = env
    overlay = tmp_path / "installed"
    shutil.copytree(ROOT / "pvc_core", overlay / "pvc_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    d = Daemon(write_config(tmp_path, zk_for_daemons, root), tmp_path / "log",
               env={"PYTHONPATH": str(overlay), "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        wait_for(lambda: daemon_state(store) == "run", T, "daemon running")
        pid = d.proc.pid
        new = SCHEMA_VERSION + 1
        # "upgrade the package": the installed code now knows one more version
        ks = overlay / "pvc_core" / "keyspace.py"
        ks.write_text(ks.read_text().replace(f"SCHEMA_VERSION = {SCHEMA_VERSION}",
                                             f"SCHEMA_VERSION = {new}"))
        mig = overlay / "pvc_core" / "store" / "migrations.py"
        mig.write_text(mig.read_text().replace(
            "MIGRATIONS: tuple[Migration, ...] = (_split_vm_blobs, _index_names)",
            "MIGRATIONS: tuple[Migration, ...] = (_split_vm_blobs, _index_names,"
            " lambda zk, ks: None)"))
        store.zk.set(store.ks.schema(), str(new).encode())  # another node migrated

        wait_for(lambda: "re-executing" in d.text(), T, "re-exec logged")
        wait_for(lambda: (store.nodes.get("node1").value.info.get("schema") == new
                          and daemon_state(store) == "run"), T, "new code running")
        assert d.proc.poll() is None and store.nodes.get("node1").value.info["pid"] == pid
    finally:
        d.kill()
