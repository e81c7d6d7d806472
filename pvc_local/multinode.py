"""Many node daemons in one process, for scale runs of the local cluster.

``python -m pvc_local.multinode --config node1.yaml --config node2.yaml ...``
builds one :class:`pvc_core.daemon.NodeDaemon` per configuration (each with
its own ZooKeeper session and drivers: nothing in a daemon is
module-global), starts them in parallel, runs until SIGTERM or SIGINT, then
stops them all in parallel and exits 0.

Exit codes follow ``pvcnoded``: 2 a configuration is invalid, 3 the cluster
schema is newer than this code, 1 any other failure (a daemon that fails to
start stops the ones already started).

A SIGKILL or SIGSTOP of this process hits every node at once: this mode is
for scale, not for fault injection on single nodes.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from pvc_core.clock import Deadline
from pvc_core.config import Config, load_config
from pvc_core.errors import ConfigError, SchemaTooNew

# Under "pvc" so it shares the daemons' log handler (pvc_core.daemon.logs).
log = logging.getLogger("pvc.local.multinode")

#: Seconds each phase (start of all daemons, stop of all daemons) may take.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


def exit_code(exc: BaseException) -> int:
    """The pvcnoded exit code for a failure."""
    if isinstance(exc, ConfigError):
        return 2
    if isinstance(exc, SchemaTooNew):
        return 3
    return 1


def run_all(calls: Sequence[tuple[str, Callable[[], Any]]],
            timeout: float) -> dict[str, BaseException | None]:
    """Run the calls in parallel daemon threads; wait at most ``timeout`` in all.

    Returns name -> the exception raised (None: returned in time). A call
    still running at the deadline counts as a TimeoutError; its thread is a
    daemon thread, so it never holds up the process's exit.
    """
    results: dict[str, BaseException | None] = {}
    lock = threading.Lock()

    def runner(name: str, call: Callable[[], Any]) -> None:
        try:
            call()
            outcome: BaseException | None = None
        except BaseException as exc:  # reported to the caller
            outcome = exc
        with lock:
            results[name] = outcome

    threads = [threading.Thread(target=runner, args=item, name=f"multinode-{item[0]}",
                                daemon=True) for item in calls]
    for thread in threads:
        thread.start()
    deadline = Deadline(timeout)
    for thread in threads:
        thread.join(deadline.remaining())
    with lock:
        return {name: results.get(name, TimeoutError(f"not done after {timeout:g}s"))
                for name, _ in calls}


def load_configs(paths: Sequence[str]) -> list[Config]:
    """Read and validate every configuration; node names must not repeat."""
    configs = [load_config(path) for path in paths]
    names = [c.node.name for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"node names repeat across the configurations: {names}")
    return configs


def build_daemons(configs: Sequence[Config]) -> list[Any]:
    """One NodeDaemon per configuration (none started); imported only now."""
    from pvc_core.daemon import NodeDaemon

    return [NodeDaemon(config) for config in configs]


def requested_exit(daemons: Sequence[Any], names: Sequence[str]) -> tuple[str, int] | None:
    """The first daemon that asked its process to exit (``exit_requested``), with its code."""
    for name, daemon in zip(names, daemons, strict=True):
        event = getattr(daemon, "exit_requested", None)
        if event is not None and event.is_set():
            code = getattr(daemon, "exit_code", None)
            return name, 1 if code is None else int(code)
    return None


def serve(daemons: Sequence[Any], names: Sequence[str], stop: threading.Event) -> int:
    """Start every daemon, run until ``stop`` (or a daemon asks to exit), stop them all.

    Returns the exit code: 0 after ``stop``; a failed start's code; or the
    code a daemon asked for (all daemons share this process, so one
    daemon's exit request, e.g. to re-execute after a schema upgrade,
    stops every node).
    """
    from pvc_core.daemon.process import signals_for_main_thread

    with signals_for_main_thread():
        started = run_all([(n, d.start) for n, d in zip(names, daemons, strict=True)],
                          START_TIMEOUT)
    failed = {n: e for n, e in started.items() if e is not None}
    code = 0
    if failed:
        for name, exc in failed.items():
            log.error("%s: start failed: %s", name, exc)
        code = max(exit_code(e) for e in failed.values())
    else:
        log.info("%d node daemons running", len(daemons))
        while not stop.wait(1.0):  # a signal sets it; the timeout keeps handlers prompt
            asked = requested_exit(daemons, names)
            if asked is not None:
                log.warning("%s asked to exit with code %d: stopping every node", *asked)
                code = asked[1]
                break
        log.info("stopping %d node daemons", len(daemons))
    stopped = run_all([(n, d.stop) for n, d in zip(names, daemons, strict=True)], STOP_TIMEOUT)
    for name, problem in stopped.items():
        if problem is not None:
            log.error("%s: stop failed: %s", name, problem)
            code = code or 1
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pvc_local.multinode",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", action="append", required=True, metavar="FILE",
                        help="one node's configuration (repeat for every node)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        configs = load_configs(args.config)
        from pvc_core.daemon import logs
        from pvc_core.daemon.upgrade import EXIT_REEXEC, reexec

        first = configs[0].logging
        logs.setup(first.level, first.color, first.file)
        daemons = build_daemons(configs)
    except Exception as exc:
        print(f"pvc-multinode: {' '.join(str(exc).split())}", file=sys.stderr)
        return exit_code(exc)
    code = serve(daemons, [c.node.name for c in configs], stop)
    if code == EXIT_REEXEC:  # like pvcnoded: run the newly installed code in place
        reexec(log)
    return code


if __name__ == "__main__":
    sys.exit(main())
