"""The simulated BMC's own parts: power-state file, whom a power-off kills."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc_local import procs
from pvc_local.bmc import (
    BmcConfig,
    kill_victims,
    netns_pids,
    read_power_state,
    set_power_state,
    victims,
)
from pvc_local.state import ClusterState, NodeEntry, save_state

from .conftest import wait_for


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])  # noqa: S603
    yield proc
    proc.kill()
    proc.wait(10)


def config(tmp_path: Path, **kwargs: object) -> BmcConfig:
    return BmcConfig("node2", str(tmp_path / "pw"), str(tmp_path / "power"),
                     str(tmp_path / "port"), **kwargs)  # type: ignore[arg-type]


def test_power_state_file(tmp_path: Path) -> None:
    path = tmp_path / "power"
    assert read_power_state(path) == "on"  # missing: on
    set_power_state(path, "off")
    assert read_power_state(path) == "off"
    with pytest.raises(ValueError, match="on or off"):
        set_power_state(path, "standby")
    cfg = config(tmp_path, power_on_command=["true"])
    assert BmcConfig.load(cfg.save(tmp_path / "config.json")) == cfg
    assert (tmp_path / "config.json").stat().st_mode & 0o077 == 0


def test_pidfile_victim_and_pid_reuse(tmp_path: Path,
                                      sleeper: subprocess.Popen[bytes]) -> None:
    pidfile = tmp_path / "victim.pid"
    ref = procs.ref_of(sleeper.pid)
    pidfile.write_text(f"{ref.pid} {ref.start_time + 1}\n")  # another process's start time
    assert victims(config(tmp_path, victim_pidfile=str(pidfile))) == []
    assert kill_victims(config(tmp_path, victim_pidfile=str(pidfile))) == []
    assert sleeper.poll() is None  # a reused PID is never killed
    pidfile.write_text(f"{ref.pid}\n")
    assert kill_victims(config(tmp_path, victim_pidfile=str(pidfile))) == [ref.pid]
    assert sleeper.wait(5) == -9
    assert victims(config(tmp_path, victim_pidfile=str(tmp_path / "none"))) == []


def test_record_victim(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    ref = procs.ref_of(sleeper.pid)
    nodes = tuple(NodeEntry(n, i, "c", "l", "s", ref if n == "node2" else None)
                  for i, n in enumerate(("node1", "node2"), start=1))
    save_state(tmp_path, ClusterState(str(tmp_path), "fake", nodes=nodes))
    assert victims(config(tmp_path, victim_record=str(tmp_path))) == [ref]
    assert victims(BmcConfig("node1", "p", "s", "o", victim_record=str(tmp_path))) == []
    assert victims(config(tmp_path, victim_record=str(tmp_path / "nothing"))) == []


def test_netns_victims(tmp_path: Path) -> None:
    """qemu mode: a power-off kills the QEMU processes in the node's namespace, no others."""
    name = f"pvcbmct{os.getpid()}"
    try:
        subprocess.run(["ip", "netns", "add", name], check=True,  # noqa: S603
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    fake_qemu = tmp_path / "qemu-system-x86_64"  # a sleep by another name
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake_qemu)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for argv in (["ip", "netns", "exec", name, str(fake_qemu), "60"],  # the node's guest
                     [str(fake_qemu), "60"],  # a guest of another node
                     ["ip", "netns", "exec", name, "sleep", "60"]):  # not a QEMU
            started.append(subprocess.Popen(argv))  # noqa: S603
        guest, other, not_qemu = started
        # `ip netns exec` joins the namespace and then execs: until both have exec'd,
        # a process in the namespace may still be called "ip"
        wait_for(lambda: sorted(netns_pids(name, "")) == sorted([guest.pid, not_qemu.pid])
                 and netns_pids(name, "sleep") == [not_qemu.pid], 10,
                 "both processes in the namespace, exec'd")
        assert netns_pids(name) == [guest.pid]  # ip netns exec execs: same PID
        assert kill_victims(config(tmp_path, kill_netns=name)) == [guest.pid]
        assert guest.wait(5) == -9
        assert other.poll() is None and not_qemu.poll() is None
        assert netns_pids("no-such-netns") == []
    finally:
        for proc in started:
            proc.kill()
            proc.wait(10)
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)  # noqa: S603
