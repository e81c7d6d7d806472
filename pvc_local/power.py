"""Power control of the local cluster: a simulated BMC per node, reached over IPMI.

:func:`start_bmc` writes one BMC's files into a directory (``config.json``,
``password`` with mode 0600, ``power``, ``port``, ``bmc.log``,
``power-on.log``), starts ``python -m pvc_local.bmc`` and returns once it
listens. :func:`start_node_bmc` does that for a node of a local cluster:
files in ``DIR/<node>/bmc/``, power-off kills the daemon that
``cluster.json`` records for the node (and, in qemu mode, the QEMU
processes in the node's namespace), power-on runs ``pvc-local --dir DIR
restart <node>``.

:func:`chain_entry` is the ``ipmi`` fence-chain entry reaching a BMC (what
goes into every node's ``fencing.chain``), and :func:`power` drives a BMC
exactly as fencing does: through the ``ipmi`` fence driver, loaded by its
entry point, i.e. ipmitool over lanplus with the password in a file.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pvc_core.clock import Deadline
from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.factory import load_driver
from pvc_core.drivers.fence import FenceDriver
from pvc_local import launch, procs
from pvc_local.bmc import USERNAME, BmcConfig, set_power_state
from pvc_local.configgen import atomic_write
from pvc_local.state import BmcEntry, ClusterState

#: What ``pvc-local power NODE ACTION`` accepts.
ACTIONS = ("on", "off", "status")


def bmc_dir(node_dir: Path) -> Path:
    """Where a local-cluster node's BMC keeps its files."""
    return node_dir / "bmc"


def start_bmc(directory: Path, node: str, *, victim_record: Path | None = None,
              victim_pidfile: Path | None = None, kill_netns: str | None = None,
              power_on_command: Sequence[str] = (), password: str | None = None,
              timeout: float = 15.0) -> tuple[subprocess.Popen[bytes], BmcEntry]:
    """Start a BMC process whose files live in ``directory``; return it once it listens.

    A random password is generated unless given; it is written to
    ``directory/password`` (mode 0600), never passed on a command line or
    in the environment. The power state starts ``on``. Raises RuntimeError
    (after killing the process) when it does not report its port within
    ``timeout``.
    """
    directory = directory.absolute()
    directory.mkdir(parents=True, exist_ok=True)
    password_file = directory / "password"
    atomic_write(password_file, (password or secrets.token_urlsafe(12)) + "\n", mode=0o600)
    port_file = directory / "port"
    port_file.unlink(missing_ok=True)
    config = BmcConfig(node, str(password_file), str(directory / "power"), str(port_file),
                       victim_pidfile=str(victim_pidfile) if victim_pidfile else None,
                       victim_record=str(victim_record) if victim_record else None,
                       kill_netns=kill_netns, power_on_command=list(power_on_command),
                       power_on_log=str(directory / "power-on.log"))
    set_power_state(config.state_file, "on")
    config_file = config.save(directory / "config.json")
    log_path = directory / "bmc.log"
    proc = procs.spawn([sys.executable, "-m", "pvc_local.bmc", "--config", str(config_file)],
                       log_path, cwd=directory)
    deadline = Deadline(timeout)
    pause = threading.Event()  # never set: a wait with a timeout, not a sleep
    while not port_file.exists():
        if proc.poll() is not None or deadline.expired():
            what = f"exited with {proc.returncode}" if proc.returncode is not None \
                else f"reported no port within {timeout:g}s"
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{node}: BMC {what}: {procs.log_tail(log_path)} "
                               f"(log: {log_path})")
        pause.wait(min(procs.POLL_INTERVAL, deadline.remaining()))
    port = int(port_file.read_text(encoding="utf-8"))
    return proc, BmcEntry(node, port, str(password_file), config.state_file, str(log_path),
                          procs.ref_of(proc.pid))


def start_node_bmc(cluster_dir: Path, name: str,
                   hypervisor: str) -> tuple[subprocess.Popen[bytes], BmcEntry]:
    """Start the BMC of local-cluster node ``name`` (see the module docstring)."""
    node_dir = cluster_dir / name
    netns = launch.node_libvirtd(node_dir, name, 0).netns if hypervisor == "qemu" else None
    restart = [sys.executable, "-m", "pvc_local.cli", "--dir", str(cluster_dir),
               "restart", name]
    return start_bmc(bmc_dir(node_dir), name, victim_record=cluster_dir, kill_netns=netns,
                     power_on_command=restart)


def chain_entry(entry: BmcEntry) -> dict[str, Any]:
    """The ``ipmi`` fence-chain entry that reaches this BMC."""
    return {"driver": "ipmi", "host": "127.0.0.1", "port": entry.port, "username": USERNAME,
            "password_file": entry.password_file, "cipher_suite": 3}


def fence_chain(state: ClusterState | None,
                names: Sequence[str]) -> dict[str, list[dict[str, Any]]] | None:
    """``{node: [ipmi entry]}`` for every named node with a BMC; None when none has one."""
    if state is None:
        return None
    chain = {b.node: [chain_entry(b)] for b in state.bmcs if b.node in names}
    return chain or None


def mark_powered(state: ClusterState, names: Sequence[str]) -> None:
    """Set the BMCs of the named nodes to ``on`` (their daemons are being started)."""
    for entry in state.bmcs:
        if entry.node in names:
            set_power_state(entry.state_file, "on")


def fence_driver(entry: BmcEntry) -> FenceDriver:
    """The ``ipmi`` fence driver for this BMC's node, loaded through its entry point."""
    options = {k: v for k, v in chain_entry(entry).items() if k != "driver"}
    driver = load_driver("fence", "ipmi", options, DriverContext(node=entry.node))
    assert isinstance(driver, FenceDriver)
    return driver


def power(entry: BmcEntry, action: str, timeout: float = 30.0) -> str:
    """``on``, ``off`` or ``status`` through the node's BMC; the power state read after.

    ``off`` returns only once the BMC reads off (the node's daemon is dead);
    ``on`` returns once the BMC accepted (it starts the daemon again in the
    background). Raises DriverError/DriverTimeout (one line) on failure.
    """
    if action not in ACTIONS:
        raise ValueError(f"power action must be one of {', '.join(ACTIONS)}, got {action!r}")
    driver = fence_driver(entry)
    try:
        deadline = Deadline(timeout)
        if action == "off":
            driver.power_off(deadline.remaining())
        elif action == "on":
            driver.power_on(deadline.remaining())
        return driver.power_status(max(deadline.remaining(), 1.0)).value
    finally:
        driver.close()
