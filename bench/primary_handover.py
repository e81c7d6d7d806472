"""Benchmark: planned primary handover, and a crashed primary replaced.

Planned (``seconds``): --nodes coordinators (objects in this process, each
on its own ZooKeeper session, with a floating-services plugin that does
nothing) share a private ZooKeeper. Measured: from
``ops.nodes.request_primary(target)`` to the target reporting ``primary``
(relinquish on the old primary, hooks, claim, records, decision log). The
role moves round-robin. Floor, in the same run: kazoo's own Lock recipe
handed from one client to another (release on one, acquired on the other).

Crash (``crash_seconds``): one more coordinator runs in a child process and
is made primary; the child is SIGKILLed (its session then lives on in the
server until it expires). Measured: from the kill to another node
reporting ``primary``. Goal: at most the session timeout + 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import quiet  # noqa: E402
from common import emit  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

from pvc_core.clock import SystemClock  # noqa: E402
from pvc_core.config import parse_config  # noqa: E402
from pvc_core.coordination.liveness import Liveness  # noqa: E402
from pvc_core.daemon.context import NodeContext  # noqa: E402
from pvc_core.daemon.coordinator import Coordinator  # noqa: E402
from pvc_core.drivers.base import DriverContext  # noqa: E402
from pvc_core.hooks.manager import HookManager  # noqa: E402
from pvc_core.hooks.specs import hookimpl  # noqa: E402
from pvc_core.keyspace import Keyspace  # noqa: E402
from pvc_core.ops.nodes import request_primary  # noqa: E402
from pvc_core.states import CoordinatorState  # noqa: E402
from pvc_core.store import Store  # noqa: E402
from pvc_core.store.zk import ZkClient  # noqa: E402
from pvc_local.zookeeper import ZooKeeperServer  # noqa: E402
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver  # noqa: E402

CHILD = "crash"
TIMEOUT = 60.0


class FloatingServices:
    """A floating-services plugin that has nothing to bring up or down."""

    @hookimpl
    def pvc_became_primary(self, node: str) -> None:
        return None

    @hookimpl
    def pvc_relinquishing_primary(self, node: str) -> None:
        return None


def wait(what: str, done: Any, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    pause = threading.Event()
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(what)
        pause.wait(0.002)


def coordinator(name: str, names: list[str], hosts: str, root: str,
                session: float) -> Coordinator:
    """A started coordinator for ``name`` on its own session (alive, registered)."""
    zk = ZkClient(hosts, session_timeout=session, op_timeout=10)
    zk.start()
    store = Store(zk, Keyspace(root))
    store.nodes.register(name, {})
    Liveness(zk, store.ks, name).announce(wait=session * 3)
    config = parse_config({
        "node": {"name": name}, "cluster": {"nodes": names, "coordinators": names},
        "zookeeper": {"hosts": [hosts], "root": root, "session_timeout": session},
        "timers": {"keepalive_interval": 1}, "fencing": {"enabled": False},
        "hypervisor": {"driver": "fake"}})
    hooks = HookManager()
    hooks.register(FloatingServices(), "floating")
    hv = FakeHypervisorDriver({}, DriverContext(node=name))
    c = Coordinator(NodeContext(name, config, store, hv, hooks, SystemClock()))
    c.start()
    return c


def child(args: argparse.Namespace) -> int:
    """The coordinator that will be killed: runs until stdin closes (or SIGKILL)."""
    quiet()
    coordinator(CHILD, args.names.split(","), args.zk_hosts, args.root, args.session_timeout)
    print("ready", flush=True)
    sys.stdin.read()
    return 0


def floor_run(hosts: str, root: str) -> float:
    """kazoo's Lock recipe handed from one client to another."""
    a, b = (KazooClient(hosts=hosts) for _ in range(2))
    for c in (a, b):
        c.start(timeout=30)
    path = f"{root}/floor-lock-{uuid.uuid4().hex[:8]}"
    la, lb = a.Lock(path, "a"), b.Lock(path, "b")
    la.acquire()
    got = threading.Event()
    t = threading.Thread(target=lambda: (lb.acquire(), got.set()))
    t.start()
    wait("b queued", lambda: len(la.contenders()) == 2)
    start = time.perf_counter()
    la.release()
    got.wait(TIMEOUT)
    took = time.perf_counter() - start
    lb.release()
    t.join()
    for c in (a, b):
        c.stop()
        c.close()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="planned handovers")
    parser.add_argument("--crash-runs", type=int, default=3)
    parser.add_argument("--session-timeout", type=float, default=4.0)
    parser.add_argument("--zk-hosts", help="use this ZooKeeper instead of a private one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.nodes < 2:
        parser.error("--nodes must be at least 2 (a handover needs somewhere to go)")
    quiet()
    session = args.session_timeout
    names = [f"hv{i + 1}" for i in range(args.nodes)]
    everyone = [*names, CHILD]
    samples: list[float] = []
    floors: list[float] = []
    crashes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pvc-bench-") as tmp:
        server = None
        hosts = args.zk_hosts
        if not hosts:
            # the server allows session timeouts of 2-20 ticks
            server = ZooKeeperServer(Path(tmp) / "zk", tick_ms=min(500, int(session * 50)))
            server.start()
            hosts = server.hosts
        root = f"/bench-{uuid.uuid4().hex[:8]}"
        admin = Store.connect(hosts, root=root, op_timeout=30)
        admin.schema.initialise()
        coords: list[Coordinator] = []
        proc: subprocess.Popen[str] | None = None
        try:
            coords = [coordinator(n, everyone, hosts, root, session) for n in names]
            by_name = {c.me: c for c in coords}
            lock = coords[0].election.lock

            def steady(primary: str, count: int) -> bool:
                return (admin.cluster.get_primary().value == primary
                        and len(lock.contenders()) == count
                        and admin.zk.exists(admin.ks.primary_request()) is None)

            wait("a first primary", lambda: any(c.is_primary() for c in coords))
            current = next(c.me for c in coords if c.is_primary())
            wait("steady", lambda: steady(current, len(coords)))
            for _ in range(args.runs):
                target = names[(names.index(current) + 1) % len(names)]
                start = time.perf_counter()
                request_primary(admin, target, by="bench")
                by_name[target].wait_primary(TIMEOUT)
                samples.append(time.perf_counter() - start)
                current = target
                wait("steady", lambda t=target: steady(t, len(coords)))
                floors.append(floor_run(hosts, root))
            for _ in range(args.crash_runs):
                proc = subprocess.Popen(  # noqa: S603 - fixed argv
                    [sys.executable, __file__, "--child", "--zk-hosts", hosts, "--root", root,
                     "--names", ",".join(everyone), "--session-timeout", str(session)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError("the child coordinator did not start")
                wait("child contending", lambda: len(lock.contenders()) == len(coords) + 1)
                request_primary(admin, CHILD, by="bench")
                wait("child primary", lambda: admin.nodes.get(CHILD).value.coordinator_state
                     is CoordinatorState.PRIMARY)
                wait("steady", lambda: steady(CHILD, len(coords) + 1))
                start = time.perf_counter()
                os.kill(proc.pid, signal.SIGKILL)
                wait("replaced", lambda: any(c.is_primary() for c in coords), session * 3)
                crashes.append(time.perf_counter() - start)
                proc.wait(TIMEOUT)
                proc = None
                current = next(c.me for c in coords if c.is_primary())
                wait("steady", lambda p=current: steady(p, len(coords)))
        finally:
            if proc is not None:
                proc.kill()
                proc.wait(TIMEOUT)
            for c in coords:
                c.stop(10)
                c.ctx.store.close()
            admin.close()
            if server is not None:
                server.stop()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = emit("primary_handover", samples, floors, nodes=args.nodes,
                      session_timeout=session, crash_runs=args.crash_runs,
                      goal_seconds=1.0, crash_goal_seconds=session + 1.0)
    if crashes:
        result["crash_seconds"] = round(statistics.median(crashes), 6)
        result["crash_samples"] = [round(s, 6) for s in crashes]
    else:
        result["crash_seconds"] = None
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
