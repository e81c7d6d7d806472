"""Simulated BMCs: real IPMI (RMCP+, lanplus) on loopback, one per node.

**The BMC process.** ``python -m pvc_local.bmc --config FILE`` runs one
:class:`SimulatedBmc`, a :class:`pyghmi.ipmi.bmc.Bmc` that ``ipmitool -I
lanplus -C 3`` talks to like any server's BMC. ``FILE`` is a JSON
:class:`BmcConfig`. The password is read from ``password_file`` (never from
the command line or the environment). The BMC binds ``port`` (0: a free
port, race-free) and then writes the port it got to ``port_file``: that
file appearing is the launcher's readiness signal.

- The power state lives in ``state_file`` (``on``/``off``; missing means
  ``on``), so it survives a restart of the BMC and the launcher can read it.
- **power off** (and soft-off): SIGKILL the *victims*, wait until they are
  gone, then write ``off``. The victims are the process in
  ``victim_pidfile`` (``PID`` or ``PID START_TIME``), the daemon that the
  local cluster's ``cluster.json`` records for this node
  (``victim_record``: the cluster directory), and, when ``kill_netns`` names
  a network namespace, every QEMU process in it (qemu mode: the node's
  guests die with its power; its libvirtd stays, like a host whose libvirtd
  restarts on boot). A victim that cannot be killed makes the command fail
  (completion code 0xFF) and the state stays ``on``: a BMC never claims off
  for a node that still runs. Powering off a node that is off kills again
  (idempotent, and safe when something restarted the daemon meanwhile).
- **power on**: nothing when already on; else write ``on`` and start
  ``power_on_command`` detached (its own session, output appended to
  ``power_on_log``). The local cluster's command is ``pvc-local restart
  NODE``.
- **power cycle / reset**: power off, then power on.

The server always negotiates cipher suite 3 (HMAC-SHA1, AES-CBC-128).
pyghmi's own *client* proposes SHA256 first and crashes on that answer;
:func:`install_open_session_fix` (ENVIRONMENT.md section 12) makes this
process reject such proposals properly, so that client falls back to
SHA1. ipmitool with ``-C 3`` never needs it.

The launcher side (starting one BMC per node, the fence chain that reaches
it, ``pvc-local power``) is :mod:`pvc_local.power`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyghmi.ipmi.bmc import Bmc

from pvc_core.clock import Deadline
from pvc_local import procs
from pvc_local.configgen import atomic_write
from pvc_local.state import load_state

log = logging.getLogger("pvc_local.bmc")

#: The user every simulated BMC knows.
USERNAME = "admin"
#: IPMI completion code "unspecified error": the command failed.
FAILED = 0xFF
#: How long a power-off waits for its victims to disappear.
KILL_WAIT = 5.0
#: How often it looks.
KILL_POLL = 0.002


@dataclass(frozen=True)
class BmcConfig:
    """What one BMC process serves and whom its power-off kills (the ``--config`` JSON)."""

    node: str
    password_file: str
    state_file: str
    port_file: str
    address: str = "127.0.0.1"
    port: int = 0
    username: str = USERNAME
    victim_pidfile: str | None = None
    victim_record: str | None = None
    kill_netns: str | None = None
    power_on_command: list[str] = field(default_factory=list)
    power_on_log: str | None = None

    @classmethod
    def load(cls, path: Path) -> BmcConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, path: Path) -> Path:
        atomic_write(path, json.dumps(asdict(self), indent=2) + "\n", mode=0o600)
        return path


# -- power state --------------------------------------------------------------


def read_power_state(path: Path | str) -> str:
    """``on`` or ``off`` from a BMC state file (a missing file reads ``on``)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "on"
    return "off" if text == "off" else "on"


def set_power_state(path: Path | str, state: str) -> None:
    """Write ``on`` or ``off`` to a BMC state file (atomically)."""
    if state not in ("on", "off"):
        raise ValueError(f"power state must be on or off, got {state!r}")
    atomic_write(Path(path), state + "\n")


def read_password(path: Path | str) -> str:
    """The first line of a password file, without its line ending."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return lines[0] if lines else ""


# -- victims ------------------------------------------------------------------


def _pidfile_ref(path: str) -> procs.ProcRef | None:
    try:
        fields = Path(path).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return None
    if not fields:
        return None
    pid = int(fields[0])
    return procs.ProcRef(pid, int(fields[1])) if len(fields) > 1 else procs.ref_of(pid)


def _record_ref(directory: str, node: str) -> procs.ProcRef | None:
    state = load_state(Path(directory))
    if state is None:
        return None
    try:
        return state.node(node).process
    except KeyError:
        return None


def netns_pids(netns: str, comm_prefix: str = "qemu") -> list[int]:
    """PIDs in the network namespace ``/run/netns/NETNS`` whose command starts with a prefix."""
    try:
        wanted = os.stat(f"/run/netns/{netns}").st_ino
    except FileNotFoundError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino != wanted:
                continue
            if (entry / "comm").read_text().strip().startswith(comm_prefix):
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return found


def victims(config: BmcConfig) -> list[procs.ProcRef]:
    """Every live process a power-off of this BMC must kill."""
    refs = []
    if config.victim_pidfile:
        refs.append(_pidfile_ref(config.victim_pidfile))
    if config.victim_record:
        refs.append(_record_ref(config.victim_record, config.node))
    if config.kill_netns:
        refs += [procs.ref_of(pid) for pid in netns_pids(config.kill_netns)]
    return [r for r in refs if r is not None and procs.is_running(r)]


def kill_victims(config: BmcConfig, timeout: float = KILL_WAIT) -> list[int]:
    """SIGKILL every victim and wait until all are gone; return their PIDs.

    Raises RuntimeError naming the survivors after ``timeout``.
    """
    refs = victims(config)
    for ref in refs:
        procs.send_signal(ref, signal.SIGKILL)
    deadline = Deadline(timeout)
    pause = threading.Event()  # never set: waits with timeouts, not sleeps
    left = [r for r in refs if procs.is_running(r)]
    while left and not deadline.expired():  # a SIGKILLed process is gone within ms
        pause.wait(min(KILL_POLL, deadline.remaining()))
        left = [r for r in left if procs.is_running(r)]
    if left:
        raise RuntimeError(f"PIDs {[r.pid for r in left]} survived SIGKILL for {timeout:g}s")
    return [r.pid for r in refs]


# -- the BMC process ----------------------------------------------------------


def install_open_session_fix() -> None:
    """Make this process's pyghmi server refuse non-SHA1 RMCP+ proposals properly.

    The server answers every open-session request with cipher suite 3;
    pyghmi's own client proposes SHA256 first and cannot parse that. Here
    a proposal whose authentication algorithm (request byte 12) is not
    HMAC-SHA1 gets status 0x11 (no matching authentication payload), so
    the client retries with SHA1. Idempotent; affects this process only.
    """
    from pyghmi.ipmi.private import serversession

    cls: Any = serversession.ServerSession
    if getattr(cls, "_pvc_open_session_fix", False):
        return
    original = cls.create_open_session_response

    def create_open_session_response(self: Any, request: bytearray) -> bytearray:
        if len(request) > 12 and request[12] != 1:
            return bytearray([request[0], 0x11, 0, 0]) + request[4:8] + bytearray(4)
        return bytearray(original(self, request))

    cls.create_open_session_response = create_open_session_response
    cls._pvc_open_session_fix = True


class SimulatedBmc(Bmc):  # type: ignore[misc]  # pyghmi is untyped
    """One node's BMC (see the module docstring); ``listen()`` serves forever."""

    def __init__(self, config: BmcConfig, password: str) -> None:
        install_open_session_fix()
        super().__init__({config.username: password}, port=config.port,
                         address=config.address)
        # pyghmi keys server sessions by this port: the real one when bound to 0.
        self.port = self.serversocket.getsockname()[1]
        self.config = config
        self._lock = threading.Lock()
        if not Path(config.state_file).exists():
            set_power_state(config.state_file, "on")

    def get_power_state(self) -> str:
        return read_power_state(self.config.state_file)

    def power_off(self) -> int:
        with self._lock:
            try:
                pids = kill_victims(self.config)
            except Exception as exc:  # the node may still run: never claim off
                log.error("%s: power off failed: %s", self.config.node, exc)
                return FAILED
            set_power_state(self.config.state_file, "off")
            log.info("%s: power off (killed PIDs %s)", self.config.node, pids)
            return 0

    power_shutdown = power_off  # no operating system to ask: soft-off is off

    def power_on(self) -> int:
        with self._lock:
            if self.get_power_state() == "on":
                return 0
            set_power_state(self.config.state_file, "on")
            log.info("%s: power on", self.config.node)
            return self._run_power_on()

    def power_cycle(self) -> int:
        return self.power_off() or self.power_on()

    power_reset = power_cycle

    def _run_power_on(self) -> int:
        argv = self.config.power_on_command
        if not argv:
            return 0
        target = Path(self.config.power_on_log or os.devnull)
        try:
            proc = procs.spawn(argv, target)
        except OSError as exc:
            log.error("%s: power-on command failed to start: %s", self.config.node, exc)
            return FAILED
        threading.Thread(target=proc.wait, name="reap-power-on", daemon=True).start()
        log.info("%s: power-on command started (pid %d)", self.config.node, proc.pid)
        return 0


def serve(config: BmcConfig) -> None:
    """Run the BMC of ``config`` until the process is killed."""
    bmc = SimulatedBmc(config, read_password(config.password_file))
    atomic_write(Path(config.port_file), f"{bmc.port}\n")
    log.info("%s: BMC listening on %s:%d (udp)", config.node, config.address, bmc.port)
    bmc.listen()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pvc_local.bmc --config FILE``."""
    parser = argparse.ArgumentParser(prog="python -m pvc_local.bmc",
                                     description="a simulated IPMI BMC on loopback")
    parser.add_argument("--config", type=Path, required=True, help="BmcConfig JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bmc: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(BmcConfig.load(args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
