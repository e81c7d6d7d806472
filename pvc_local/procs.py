"""Processes of the local cluster: start them, look at them, stop them by PID.

Every process is started from an argument list (never a shell string) in
its own session, with stdin from ``/dev/null`` and stdout/stderr appended
to a log file, so no pipe ties it to the launcher and a separate
``pvc-local`` invocation can manage it later.

A process is recorded as a :class:`ProcRef`: its PID *and* its start time
(field 22 of ``/proc/PID/stat``, in clock ticks since boot). Every signal
goes through :func:`send_signal`, which first checks that the PID still
belongs to the process that was started; a stale ``cluster.json`` (after a
reboot, say) therefore never signals an unrelated process that reused the
PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pvc_core.clock import Deadline

#: How often waits re-check a process that is not our child.
POLL_INTERVAL = 0.05


class ProcState(StrEnum):
    """What ``/proc`` says about a recorded process."""

    ALIVE = "alive"  # running or sleeping
    STOPPED = "stopped"  # SIGSTOP (state T or t): a hung node
    DEAD = "dead"  # gone, a zombie, or the PID now belongs to another process


@dataclass(frozen=True)
class ProcRef:
    """A process we started: PID plus its start time, to detect PID reuse."""

    pid: int
    start_time: int

    def to_dict(self) -> dict[str, int]:
        return {"pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcRef:
        return cls(int(data["pid"]), int(data["start_time"]))


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` split after the command name (which may hold spaces)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) S ppid ...": comm ends at the last ')'.
    return raw[raw.rfind(")") + 2:].split()


def start_time_of(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (None if gone)."""
    fields = _stat_fields(pid)
    # fields[0] is the state (stat field 3), so field 22 is fields[19].
    return int(fields[19]) if fields and len(fields) > 19 else None


def ref_of(pid: int) -> ProcRef:
    """A :class:`ProcRef` for a live PID (start time 0 if it already vanished)."""
    return ProcRef(pid, start_time_of(pid) or 0)


def proc_state(ref: ProcRef | None) -> ProcState:
    """Classify a recorded process from ``/proc/PID/stat``."""
    if ref is None:
        return ProcState.DEAD
    fields = _stat_fields(ref.pid)
    if not fields or len(fields) <= 19 or int(fields[19]) != ref.start_time:
        return ProcState.DEAD
    state = fields[0]
    if state in ("Z", "X", "x"):
        return ProcState.DEAD
    if state in ("T", "t"):
        return ProcState.STOPPED
    return ProcState.ALIVE


def is_running(ref: ProcRef | None) -> bool:
    """True while the recorded process exists (stopped counts as existing)."""
    return proc_state(ref) is not ProcState.DEAD


def send_signal(ref: ProcRef | None, sig: int) -> bool:
    """Send ``sig`` to the recorded process; False if it is gone (or the PID reused)."""
    if ref is None or proc_state(ref) is ProcState.DEAD:
        return False
    try:
        os.kill(ref.pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(refs: Sequence[ProcRef], timeout: float) -> list[ProcRef]:
    """Wait until every process is gone or ``timeout`` passes; return the survivors."""
    deadline = Deadline(timeout)
    pause = threading.Event()  # never set: a wait with a timeout, not a sleep
    left = list(refs)
    while True:
        left = [r for r in left if is_running(r)]
        if not left or deadline.expired():
            return left
        pause.wait(min(POLL_INTERVAL, deadline.remaining()))


def terminate(refs: Sequence[ProcRef], timeout: float = 30.0,
              kill_timeout: float = 10.0) -> list[ProcRef]:
    """SIGTERM the processes, wait up to ``timeout``, then SIGKILL the rest.

    A stopped (SIGSTOPped) process gets SIGCONT after SIGTERM, so it can
    act on the SIGTERM. Returns the processes still present after the
    SIGKILL wait (normally none).
    """
    live = [r for r in refs if send_signal(r, signal.SIGTERM)]
    for ref in live:
        send_signal(ref, signal.SIGCONT)
    left = wait_gone(live, timeout)
    for ref in left:
        send_signal(ref, signal.SIGKILL)
    return wait_gone(left, kill_timeout)


def spawn(argv: Sequence[str], log_path: Path, *, cwd: Path | None = None,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, output appended to ``log_path``.

    The parent keeps no pipe: the process outlives the launcher and is
    managed through its :class:`ProcRef` (:func:`ref_of`). The caller may
    keep the returned handle to read an early exit code (:meth:`poll`); a
    zombie child counts as dead for :func:`proc_state` either way.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - argument list built by the launcher
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=cwd,
            env=dict(env) if env is not None else None)


def log_tail(path: Path, lines: int = 1, max_bytes: int = 8192) -> str:
    """The last ``lines`` non-empty lines of a log file ('' if none)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in data.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])
