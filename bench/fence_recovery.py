"""Benchmark: a SIGKILLed node's VMs running elsewhere, its fence verified.

--nodes pvcnoded processes (libvirt test driver each) share a private
ZooKeeper; every node has a simulated BMC (``pvc_local.bmc``, real IPMI over
lanplus on loopback) and an ``ipmi`` fence chain reaching it, as in a local
cluster, but with the timers of a production node's default configuration:
keepalive every 5 s, ZooKeeper session timeout 10 s, fence_intervals 6,
saving_throws 2 (flags change them; the test uses short ones).

--vms VMs are started on a node that is not primary (the victim). Measured
(``seconds``): from SIGKILL of the victim's daemon until both (a) the
decision log says the victim was fenced, proved off by ipmi, and (b) every
VM has state start, is placed on another node, and is listed as running in
that node's keepalive ``vm_stats``. ``breakdown`` gives, from the kill: the
ZooKeeper session expiring (the victim's ``alive`` znode gone), the
primary's ``suspect`` decision, its ``fenced`` decision, the last
``vm-recovery`` decision, and (b) holding.

Floor (``floor_seconds``), in the same run: the kill until ZooKeeper expires
the victim's session. Nothing that waits for the session can react
earlier, and with the default timers the keepalive alone would take
longer (fence_intervals x keepalive = 30 s), so this is the theoretical floor
of a detection by session; the ratio shows what fencing and recovery add.

Phases: the primary judges once per keepalive interval and every daemon
beats once per interval, so the figure depends on where the kill falls in
those cycles (up to one interval each for noticing the expired session and
for the targets' next keepalive). Nodes of a real cluster start at unrelated
times; here the daemons start a random fraction of an interval apart and the
kill waits a random fraction of an interval after the VMs run, so the runs
sample the phases instead of repeating one (``--seed`` repeats a sequence).

Between runs the victim is restarted (as a power-on would), readied, and
its VMs return; that is not measured.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import domain_xml  # noqa: E402
from common import emit  # noqa: E402

from pvc_core.errors import NotFound, PVCError  # noqa: E402
from pvc_core.ops.flush import request_ready  # noqa: E402
from pvc_core.ops.nodes import primary_status  # noqa: E402
from pvc_core.ops.view import running_as_placed  # noqa: E402
from pvc_core.ops.vms import define_vm  # noqa: E402
from pvc_core.states import DaemonState  # noqa: E402
from pvc_core.store import Store  # noqa: E402
from pvc_local import configgen, launch, procs  # noqa: E402
from pvc_local import power as powerctl  # noqa: E402
from pvc_local.bmc import read_power_state, set_power_state  # noqa: E402
from pvc_local.state import BmcEntry  # noqa: E402
from pvc_local.zookeeper import ZooKeeperServer  # noqa: E402

#: How often the measuring loop looks (ZooKeeper reads; it bounds the resolution).
POLL = 0.05
#: VM memory (MiB); the simulated hosts have configgen's default 16 GiB.
VM_MEMORY_MIB = 256


class BenchError(RuntimeError):
    """Something the benchmark waits for did not happen."""


def wait(what: str, done: Any, timeout: float) -> None:
    end = time.monotonic() + timeout
    pause = threading.Event()
    while not done():
        if time.monotonic() > end:
            raise BenchError(f"{what} did not happen within {timeout:g}s")
        pause.wait(POLL)


@dataclass
class Node:
    """One node daemon process, its configuration and its BMC."""

    name: str
    directory: Path
    config: Path
    bmc: BmcEntry
    bmc_proc: subprocess.Popen[bytes]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        return self.directory / "daemon.pid"

    def spawn(self) -> None:
        """Start the daemon (power on) and record it as the BMC's victim."""
        set_power_state(self.bmc.state_file, "on")
        self.proc = procs.spawn(launch.daemon_argv([str(self.config)], False),
                                self.directory / "pvcnoded.log", cwd=self.directory)
        ref = procs.ref_of(self.proc.pid)
        configgen.atomic_write(self.pidfile, f"{ref.pid} {ref.start_time}\n")


@dataclass
class Timers:
    keepalive: float
    session_timeout: float
    fence_intervals: int
    saving_throws: int


@dataclass
class Sample:
    seconds: float
    floor: float
    breakdown: dict[str, float] = field(default_factory=dict)


def start_nodes(tmp: Path, hosts: str, count: int, timers: Timers,
                rng: random.Random) -> list[Node]:
    names = configgen.node_names(count)
    size = configgen.NodeSize()
    bmcs: dict[str, tuple[subprocess.Popen[bytes], BmcEntry]] = {}
    nodes: list[Node] = []
    try:
        for name in names:
            bmcs[name] = powerctl.start_bmc(powerctl.bmc_dir(tmp / name), name,
                                            victim_pidfile=tmp / name / "daemon.pid")
        chain = {n: [powerctl.chain_entry(entry)] for n, (_, entry) in bmcs.items()}
        for name in names:
            node_dir = tmp / name
            host_xml = configgen.write_host_xml(node_dir / "host.xml", size)
            config = configgen.node_config(
                name, nodes=names, zk_hosts=hosts, state_dir=node_dir / "state",
                hypervisor=configgen.hypervisor_section("test", host_xml=host_xml, size=size),
                fence_chain=chain)
            config["zookeeper"]["session_timeout"] = timers.session_timeout
            config["timers"]["keepalive_interval"] = timers.keepalive
            config["fencing"].update(fence_intervals=timers.fence_intervals,
                                     saving_throws=timers.saving_throws)
            path = configgen.write_config(node_dir / "pvc.yaml", config)
            proc, entry = bmcs[name]
            nodes.append(Node(name, node_dir, path, entry, proc))
        for i, node in enumerate(nodes):
            if i:  # unrelated phases of the keepalive and judging cycles
                threading.Event().wait(rng.uniform(0, timers.keepalive))
            node.spawn()
    except BaseException:
        stop_nodes(nodes or [], [p for p, _ in bmcs.values()])
        raise
    return nodes


def stop_nodes(nodes: list[Node], bmc_procs: list[subprocess.Popen[bytes]]) -> None:
    refs = [procs.ref_of(n.proc.pid) for n in nodes if n.proc and n.proc.poll() is None]
    procs.terminate(refs, timeout=20.0)
    for node in nodes:
        if node.proc is not None:
            node.proc.wait(10)
    for proc in bmc_procs:
        proc.terminate()
        proc.wait(10)


def runs_as(store: Store, node: Node) -> bool:
    """The node's daemon is ``run``, as written by the current process."""
    if node.proc is None or node.proc.poll() is not None:
        raise BenchError(f"{node.name}: daemon exited (log: {node.directory}/pvcnoded.log)")
    try:
        record = store.nodes.get(node.name).value
    except NotFound:
        return False
    return record.daemon_state is DaemonState.RUN and record.info.get("pid") == node.proc.pid


def one_run(store: Store, victim: Node, others: set[str], vms: set[str],
            timeout: float, delay: float) -> Sample:
    """Kill the victim after ``delay``; measure until it is fenced and ``vms`` run
    on ``others``."""
    assert victim.proc is not None
    threading.Event().wait(delay)
    alive = store.ks.node_alive(victim.name)
    since = time.time()
    t0 = time.perf_counter()
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()
    expired: float | None = None
    running: float | None = None
    end = t0 + timeout
    pause = threading.Event()
    while True:
        now = time.perf_counter()
        if expired is None and store.zk.exists(alive) is None:
            expired = now - t0
        log = store.decisions.query(node=victim.name, since=since)
        failed = [d for d in log if d.kind == "fence-failed"]
        if failed:
            raise BenchError(f"{victim.name} could not be fenced: {failed[0].outcome}")
        fenced = [d for d in log if d.kind == "fenced" and "ipmi" in d.outcome]
        if running is None and running_as_placed(store, vms, others) == vms:
            running = now - t0
        if fenced and running is not None and expired is not None:
            break
        if now > end:
            raise BenchError(f"within {timeout:g}s of the kill: session expired "
                             f"{expired is not None}, fenced {bool(fenced)}, VMs running "
                             f"elsewhere {running is not None} "
                             f"(logs under {victim.directory.parent})")
        pause.wait(POLL)
    seconds = time.perf_counter() - t0
    if read_power_state(victim.bmc.state_file) != "off":
        raise BenchError(f"{victim.name}: fenced, but its BMC does not read off")

    def first(kind: str, last: bool = False) -> float | None:
        times = [d.time for d in log if d.kind == kind]
        return round((times[-1] if last else times[0]) - since, 6) if times else None

    breakdown = {"session_expired": round(expired, 6), "suspect": first("suspect"),
                 "fenced": first("fenced"), "placed": first("vm-recovery", last=True),
                 "all_running": round(running, 6)}
    return Sample(seconds, expired, {k: v for k, v in breakdown.items() if v is not None})


def bring_back(store: Store, victim: Node, vms: set[str], timeout: float) -> None:
    """Power the victim on again (a new daemon), ready it, wait for its VMs."""
    victim.spawn()
    wait(f"{victim.name} running again", lambda: runs_as(store, victim), timeout)
    job = request_ready(store, victim.name, by="bench")["id"]
    wait(f"{victim.name} readied",
         lambda: store.jobs.get(job).value["state"] in ("succeeded", "failed", "cancelled"),
         timeout)
    wait(f"the VMs back on {victim.name}",
         lambda: running_as_placed(store, vms, {victim.name}) == vms, timeout)


def bench(tmp: Path, args: argparse.Namespace, timers: Timers) -> list[Sample]:
    # ZooKeeper grants session timeouts of 2 to 20 ticks.
    tick = max(500, int(timers.session_timeout * 1000 / 20 + 0.999))
    server = ZooKeeperServer(tmp / "zookeeper", tick_ms=tick)
    server.start()
    nodes: list[Node] = []
    store: Store | None = None
    try:
        rng = random.Random(args.seed)
        nodes = start_nodes(tmp, server.hosts, args.nodes, timers, rng)
        store = Store.connect(server.hosts, root=configgen.ZK_ROOT, op_timeout=10)
        startup = max(60.0, 4 * timers.session_timeout)
        for node in nodes:
            wait(f"{node.name} running", lambda n=node: runs_as(store, n), startup)
        wait("a primary", lambda: primary_status(store)["primary"], startup)
        primary = primary_status(store)["primary"]
        victim = max((n for n in nodes if n.name != primary), key=lambda n: n.name)
        others = {n.name for n in nodes} - {victim.name}
        vms = {define_vm(store, domain_xml(f"vm{i}", str(uuid.uuid4()), VM_MEMORY_MIB),
                         node=victim.name, start=True, by="bench").uuid
               for i in range(args.vms)}
        wait(f"{args.vms} VMs running on {victim.name}",
             lambda: running_as_placed(store, vms, {victim.name}) == vms, args.timeout)
        samples = []
        for i in range(args.runs):
            if i:
                bring_back(store, victim, vms, args.timeout)
            samples.append(one_run(store, victim, others, vms, args.timeout,
                                   rng.uniform(0, timers.keepalive)))
        return samples
    finally:
        if store is not None:
            store.close()
        stop_nodes(nodes, [n.bmc_proc for n in nodes])
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keepalive", type=float, default=5.0,
                        help="timers.keepalive_interval (default 5, as in production)")
    parser.add_argument("--session-timeout", type=float, default=10.0,
                        help="zookeeper.session_timeout (default 10)")
    parser.add_argument("--fence-intervals", type=int, default=6)
    parser.add_argument("--saving-throws", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="deadline of each wait, in seconds")
    parser.add_argument("--seed", type=int,
                        help="seed of the random phases (default: a random seed, reported)")
    parser.add_argument("--dir", type=Path,
                        help="keep the nodes' files and logs here (default: a temporary "
                             "directory, removed)")
    args = parser.parse_args()
    if args.nodes < 3:
        parser.error("--nodes must be at least 3 (with 2 the storm guard fences nobody)")
    if not launch.libvirt_available():
        parser.error("needs libvirt-python (the libvirt test driver): scripts/install-deps")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    timers = Timers(args.keepalive, args.session_timeout, args.fence_intervals,
                    args.saving_throws)
    try:
        if args.dir:
            args.dir.mkdir(parents=True, exist_ok=True)
            samples = bench(args.dir.absolute(), args, timers)
        else:
            with tempfile.TemporaryDirectory(prefix="pvc-bench-") as tmp:
                samples = bench(Path(tmp), args, timers)
    except (BenchError, PVCError) as exc:
        print(f"fence_recovery: {exc}", file=sys.stderr)
        return 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = emit("fence_recovery", [s.seconds for s in samples],
                      [s.floor for s in samples], nodes=args.nodes, vms=args.vms,
                      keepalive_interval=args.keepalive, session_timeout=args.session_timeout,
                      fence_intervals=args.fence_intervals, saving_throws=args.saving_throws,
                      hypervisor="libvirt test driver",
                      fence="ipmi (simulated BMC, ipmitool lanplus)",
                      floor_is="SIGKILL to ZooKeeper session expiry",
                      seed=args.seed, goal_seconds=20.0, pvc_1_0_3_seconds=75.0)
    keys = sorted({k for s in samples for k in s.breakdown})
    result["breakdown"] = {k: round(statistics.median(s.breakdown[k] for s in samples
                                                      if k in s.breakdown), 6)
                           for k in keys}
    result["breakdown_samples"] = [s.breakdown for s in samples]
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
