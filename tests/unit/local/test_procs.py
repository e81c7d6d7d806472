"""Process bookkeeping on real child processes: alive, stopped (SIGSTOP), dead, PID reuse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pvc_local import procs
from pvc_local.procs import ProcRef, ProcState

Sleeper = Callable[[], subprocess.Popen[bytes]]


def test_alive_stopped_resumed_dead(sleeper: Sleeper) -> None:
    proc = sleeper()
    ref = procs.ref_of(proc.pid)
    assert ref.start_time > 0
    assert procs.proc_state(ref) is ProcState.ALIVE
    os.kill(proc.pid, signal.SIGSTOP)
    assert procs.wait_gone([], 0) == []
    assert _wait_for(ref, ProcState.STOPPED)
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    assert stat[stat.rfind(")") + 2] == "T"  # what proc_state read
    os.kill(proc.pid, signal.SIGCONT)
    assert _wait_for(ref, ProcState.ALIVE)
    proc.kill()
    assert _wait_for(ref, ProcState.DEAD)  # a zombie counts as dead
    proc.wait(10)
    assert procs.proc_state(ref) is ProcState.DEAD
    assert procs.is_running(ref) is False
    assert procs.send_signal(ref, signal.SIGTERM) is False


def _wait_for(ref: ProcRef, want: ProcState, timeout: float = 10.0) -> bool:
    from pvc_core.clock import Deadline

    deadline = Deadline(timeout)
    pause = procs.threading.Event()
    while procs.proc_state(ref) is not want:
        if deadline.expired():
            return False
        pause.wait(0.01)
    return True


def test_reused_pid_is_never_signalled(sleeper: Sleeper) -> None:
    proc = sleeper()
    real = procs.ref_of(proc.pid)
    impostor = ProcRef(proc.pid, real.start_time + 1)  # same PID, another process
    assert procs.proc_state(impostor) is ProcState.DEAD
    assert procs.send_signal(impostor, signal.SIGKILL) is False
    assert proc.poll() is None  # untouched
    assert procs.proc_state(None) is ProcState.DEAD


def test_terminate_stopped_process(sleeper: Sleeper) -> None:
    proc = sleeper()
    ref = procs.ref_of(proc.pid)
    os.kill(proc.pid, signal.SIGSTOP)
    assert _wait_for(ref, ProcState.STOPPED)
    # SIGTERM is delivered after SIGCONT: the stopped process still goes away.
    assert procs.terminate([ref], timeout=10) == []
    assert proc.wait(10) == -signal.SIGTERM


def test_terminate_escalates_to_sigkill(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
             "print('ready', flush=True); time.sleep(60)"
    proc = procs.spawn([sys.executable, "-c", script], tmp_path / "stubborn.log")
    try:
        ref = procs.ref_of(proc.pid)
        assert _wait_for_log(tmp_path / "stubborn.log", "ready")
        assert procs.terminate([ref], timeout=0.3) == []
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _wait_for_log(path: Path, text: str, timeout: float = 10.0) -> bool:
    from pvc_core.clock import Deadline

    deadline = Deadline(timeout)
    pause = procs.threading.Event()
    while text not in (path.read_text() if path.exists() else ""):
        if deadline.expired():
            return False
        pause.wait(0.01)
    return True


def test_spawn_detaches_and_logs(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "child.log"
    proc = procs.spawn([sys.executable, "-c", "import sys, time; print('out'); "
                        "print('err', file=sys.stderr, flush=True); time.sleep(60)"], log,
                       cwd=tmp_path)
    try:
        assert _wait_for_log(log, "err")
        assert os.getsid(proc.pid) == proc.pid  # its own session
        assert os.readlink(f"/proc/{proc.pid}/fd/1") == str(log)
        assert os.readlink(f"/proc/{proc.pid}/fd/2") == str(log)
        assert os.readlink(f"/proc/{proc.pid}/fd/0") == "/dev/null"
        assert proc.stdout is None and proc.stderr is None  # no pipe held by us
    finally:
        proc.kill()
        proc.wait(10)
    assert procs.log_tail(log) == "err" or procs.log_tail(log) == "out"
    assert "err" in procs.log_tail(log, lines=2)
    assert procs.log_tail(tmp_path / "missing.log") == ""


def test_log_tail_joins_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("one\n\ntwo\nthree\n")
    assert procs.log_tail(log) == "three"
    assert procs.log_tail(log, lines=2) == "two | three"


def test_procref_dict_round_trip() -> None:
    ref = ProcRef(12, 34)
    assert ProcRef.from_dict(ref.to_dict()) == ref
