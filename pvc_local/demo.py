"""The demo: a 3-node local cluster, 6 VMs, a drain of node1, and a fenced node2.

The demo starts the cluster with its API servers and drives it with the
``pvc`` CLI, as a user would: every cluster operation and every look at the
cluster is a real ``pvc`` command run as a subprocess, echoed first as
``$ pvc ...`` with its output shown. It points ``pvc`` at node1's API
server through a connections file of its own (``DIR/pvc-demo/client.yaml``,
given to ``pvc`` as ``$PVC_CLIENT_CONFIG``; the user's file is never
touched). The demo's own checks read ``pvc ... -f json`` quietly.

It defines and starts VMs (``pvc vm define FILE --start``), shows where they
run, flushes node1 (the plan with ``--dry-run``, then ``--wait`` with its
progress), readies it again, and shows the result. Then node2 hangs
(SIGSTOP): the primary notices, fences it over IPMI through its BMC and
restarts its VMs on node1 and node3, while the demo polls ``pvc decision
list`` and shows each decision as it appears. node2 is powered on again
through its BMC, readied by hand (a fenced node never is automatically) and
gets its VMs back. Finally the cluster is stopped (when the demo started it).

Every step waits with a deadline; a step that does not happen, or a ``pvc``
command that fails, makes the demo print why (the command's one-line error)
and return 1.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from pvc_local.cluster import LocalCluster, LocalClusterError

VM_COUNT = 6
STEP_TIMEOUT = 120.0
#: From the hang to node2 fenced and its VMs running elsewhere (about 8 s
#: with the local cluster's timers: keepalive 1 s, session timeout 6 s).
FENCE_TIMEOUT = 60.0
#: How long one ``pvc`` command may take (a ``--wait`` one: STEP_TIMEOUT).
COMMAND_TIMEOUT = 30.0
POLL = 0.3
#: The node that hangs, and the node that judges it when node2 happens to be primary.
VICTIM = "node2"
JUDGE = "node1"
#: The demo's files (domain XMLs, the client's connections file), under the cluster directory.
WORK_DIR = "pvc-demo"
CONNECTION = "demo"
CLIENT_CONFIG = "client.yaml"
NODE_COLUMNS = ("-c", "name", "-c", "daemon_state", "-c", "coordinator_state",
                "-c", "domain_state", "-c", "alive", "-c", "vms_running")

Out = Callable[[str], None]


class StepFailed(RuntimeError):
    """A step of the demo did not happen; the message says which."""


def pvc_argv() -> list[str]:
    """How to run ``pvc``: the script next to the running interpreter, else the module."""
    script = Path(sys.executable).parent / "pvc"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pvc_cli.app"]


def client_env(config: Path) -> dict[str, str]:
    """This process's environment for a ``pvc`` run that uses only the connections
    file ``config`` (a caller's PVC_CONNECTION or PVC_API_KEY would override it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PVC_CONNECTION", "PVC_API_KEY")}
    env["PVC_CLIENT_CONFIG"] = str(config)
    return env


class Pvc:
    """Runs ``pvc`` (an argument list, never a shell) with the demo's connections file."""

    def __init__(self, argv: Sequence[str], config: Path, cwd: Path, out: Out) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.out = out
        self.env = client_env(config)

    def _run(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(  # noqa: S603 - an argument list, no shell
                [*self.argv, *args], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"pvc {shlex.join(args)}: did not finish within "
                             f"{timeout:g}s") from None
        except OSError as exc:
            raise StepFailed(f"cannot run pvc ({shlex.join(self.argv)}): "
                             f"{exc.strerror or exc}") from None

    @staticmethod
    def _failure(args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> StepFailed:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        error = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        return StepFailed(f"pvc {shlex.join(args)}: {error}")

    def show(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> None:
        """Echo ``$ pvc ARGS``, run it and show what it printed (stderr, i.e. the
        progress of a ``--wait``, first); StepFailed with its error when it fails."""
        self.out(f"$ pvc {shlex.join(args)}")
        proc = self._run(args, timeout)
        err = proc.stderr.splitlines()
        if proc.returncode != 0 and err:
            err = err[:-1]  # the one-line error: the StepFailed's message
        for line in [*err, *proc.stdout.rstrip("\n").splitlines()]:
            self.out(line)
        if proc.returncode != 0:
            raise self._failure(args, proc)

    def json(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> Any:
        """``pvc ARGS -f json``, quietly: the parsed output; StepFailed when it fails."""
        args = (*args, "-f", "json")
        proc = self._run(args, timeout)
        if proc.returncode != 0:
            raise self._failure(args, proc)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise StepFailed(f"pvc {shlex.join(args)}: not JSON: "
                             f"{proc.stdout.strip()[:200]!r}") from None

    def vms(self) -> list[dict[str, Any]]:
        return list(self.json("vm", "list"))

    def node(self, name: str) -> dict[str, Any]:
        return dict(self.json("node", "info", name))


def _vm_xml(i: int) -> str:
    return (f"<domain type='test'><name>demo{i}</name>"
            f"<memory unit='MiB'>{256 * (1 + i % 3)}</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


def _running(vms: Sequence[dict[str, Any]], uuids: set[str], nodes: set[str]) -> set[str]:
    """Those of ``uuids`` placed on one of ``nodes`` whose daemon reports them running."""
    return {v["uuid"] for v in vms if v["uuid"] in uuids and v.get("node") in nodes
            and v.get("running")}


def _wait(what: str, done: Callable[[], bool], timeout: float = STEP_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise StepFailed(f"{what} did not happen within {timeout:g}s")
        time.sleep(POLL)


def run_demo(cluster: LocalCluster, *, hypervisor: str = "test", out: Out = print,
             pvc: Sequence[str] | None = None) -> int:
    """Run the demo; return 0 when every step did what it should, else 1.

    ``pvc``: the command that runs the client (default :func:`pvc_argv`).
    """
    started = False
    work = cluster.directory.absolute() / WORK_DIR
    try:
        if not cluster.is_up():
            out(f"== starting a 3-node local cluster in {cluster.directory} "
                f"(hypervisor {hypervisor}, a simulated IPMI BMC per node, "
                "an API server per coordinator)")
            cluster.up(nodes=3, hypervisor=hypervisor, wait=90, api=True)
            started = True
        client = _connect(cluster, work, list(pvc) if pvc else pvc_argv(), out)
        return _scenes(cluster, client, out)
    except (StepFailed, LocalClusterError) as exc:
        out(f"demo: {exc}")
        return 1
    finally:
        if started:
            out("== stopping the local cluster")
            cluster.down()
        _remove_work(work)


def _connect(cluster: LocalCluster, work: Path, argv: list[str], out: Out) -> Pvc:
    """The demo's ``pvc``: connection ``demo`` (the default) to node1's API server."""
    urls = cluster.api_urls()
    if not urls:
        raise StepFailed(f"the local cluster in {cluster.directory} runs no API server "
                         "(it was started with --no-api): pvc-local down, then the demo")
    port = urllib.parse.urlsplit(urls[0]).port
    try:
        from pvc_cli.connections import add_connection
        from pvc_cli.errors import CliError
    except ImportError as exc:
        raise StepFailed(f"the pvc client is not available ({exc})") from None
    work.mkdir(parents=True, exist_ok=True)
    config = work / CLIENT_CONFIG
    try:
        conn = add_connection(CONNECTION, "127.0.0.1", port or 0, cluster.api_key(),
                              default=True, path=config)
    except CliError as exc:
        raise StepFailed(f"cannot write {config}: {exc}") from None
    out(f"== pvc connection {CONNECTION!r} -> {conn.url} (node1's API server) with the "
        f"local-admin key, in {config} (PVC_CLIENT_CONFIG)")
    return Pvc(argv, config, work, out)


def _remove_work(work: Path) -> None:
    """Remove the demo's own files (never anything else), then its directory if empty."""
    names = [CLIENT_CONFIG, CLIENT_CONFIG + ".lock",
             *(f"demo{i}.xml" for i in range(VM_COUNT))]
    for name in names:
        (work / name).unlink(missing_ok=True)
    try:
        work.rmdir()
    except OSError:
        pass  # missing, or something else lives there: keep it


def _scenes(cluster: LocalCluster, pvc: Pvc, out: Out) -> int:
    out(f"== defining and starting {VM_COUNT} VMs (domain XML files in {pvc.cwd})")
    for i in range(VM_COUNT):
        name = f"demo{i}.xml"
        (pvc.cwd / name).write_text(_vm_xml(i) + "\n", encoding="utf-8")
        pvc.show("vm", "define", name, "--start", "-c", "name", "-c", "state", "-c", "node")
    everything: set[str] = set()

    def all_running() -> bool:
        vms = pvc.vms()
        everything.update(v["uuid"] for v in vms)
        return len(vms) >= VM_COUNT and all(v["state"] == "start" and v.get("running")
                                            for v in vms)

    _wait("every VM running", all_running)
    pvc.show("vm", "list")

    vms = pvc.vms()
    others = {n["name"] for n in pvc.json("node", "list")} - {"node1"}
    on_node1 = {v["uuid"] for v in vms if v.get("node") == "node1" and v["state"] == "start"}
    out("== draining node1: the plan (dry run)")
    pvc.show("node", "flush", "node1", "--dry-run")
    out("== draining node1")
    pvc.show("node", "flush", "node1", "--wait", timeout=STEP_TIMEOUT)
    moved: set[str] = set()

    def drained() -> bool:
        vms = pvc.vms()
        if any(v.get("node") == "node1" and v["state"] == "start" for v in vms):
            return False
        moved.clear()
        moved.update(v["uuid"] for v in vms if v["uuid"] in on_node1 and v["state"] == "start")
        return _running(vms, moved, others) == moved

    try:
        _wait("node1 emptied (its VMs running elsewhere)", drained)
    except StepFailed as exc:
        raise StepFailed(f"the drain did not empty node1: {exc}") from None
    pvc.show("vm", "list")

    out("== readying node1: its VMs come back")
    pvc.show("node", "ready", "node1", "--wait", timeout=STEP_TIMEOUT)
    try:
        _wait("node1's VMs running on it again",
              lambda: _running(pvc.vms(), moved, {"node1"}) == moved)
    except StepFailed as exc:
        raise StepFailed(f"not every VM came back to node1: {exc}") from None
    pvc.show("vm", "list")

    if not _fence_possible(cluster, out):
        pvc.show("cluster", "status")
        out("== demo finished: node1 was drained and readied, and every VM is running")
        return 0
    _fence_scene(cluster, pvc, out)
    out(f"== demo finished: node1 was drained and readied, {VICTIM} was fenced and "
        "readied, and every VM is running")
    return 0


# -- the fence scene ----------------------------------------------------------


def _fence_possible(cluster: LocalCluster, out: Out) -> bool:
    """The scene needs a BMC for node2 and one daemon process per node."""
    record = cluster.record()
    if record.in_process or not any(b.node == VICTIM for b in record.bmcs):
        out(f"== skipping the fence scene: it needs a BMC for {VICTIM} and a daemon "
            "process per node (a cluster not started --in-process)")
        return False
    return True


def _fence_scene(cluster: LocalCluster, pvc: Pvc, out: Out) -> None:
    others = {n["name"] for n in pvc.json("node", "list")} - {VICTIM}
    primary = _judge(pvc, out)
    victims = _victim_vms(pvc, out)
    vms = pvc.vms()
    names = {v["uuid"]: v["name"] for v in vms}
    should_run = {v["uuid"] for v in vms if v["state"] == "start"}
    out(f"== {VICTIM} hangs (SIGSTOP of its daemon), running "
        f"{', '.join(sorted(names[u] for u in victims))}; {primary} is primary and judges")
    out(f"   ({_timers(cluster)})")
    # --since: a little before the hang (milliseconds, rounded down)
    since = math.floor(time.time() * 1000) / 1000
    start = time.monotonic()
    cluster.hang(VICTIM)
    _follow_fence(pvc, others, should_run, names, since, start, out)
    out(f"  {VICTIM}'s BMC reads power {cluster.power(VICTIM, 'status')}")
    pvc.show("node", "list", *NODE_COLUMNS)
    pvc.show("vm", "list")
    out(f"== the decision log for {VICTIM}")
    pvc.show("decision", "list", "--node", VICTIM, "--since", f"{since:.3f}",
             "-c", "time", "-c", "kind", "-c", "outcome", "-c", "vm")

    out(f"== powering {VICTIM} on through its BMC (IPMI): its daemon starts again")
    old_pid = (pvc.node(VICTIM).get("info") or {}).get("pid")
    powered = time.monotonic()
    out(f"  {VICTIM}'s BMC reads power {cluster.power(VICTIM, 'on')}")
    _wait(f"{VICTIM} running again after the power-on", lambda: _runs_again(pvc, old_pid))
    record = pvc.node(VICTIM)
    out(f"  {_at(time.monotonic() - powered)}  {VICTIM}: daemon {record['daemon_state']}, "
        f"domain {record['domain_state']} (a fenced node is never readied automatically)")
    out(f"== readying {VICTIM}: its VMs come back")
    pvc.show("node", "ready", VICTIM, "--wait", timeout=STEP_TIMEOUT)
    _wait(f"{VICTIM}'s VMs running on it again",
          lambda: _running(pvc.vms(), victims, {VICTIM}) == victims)
    pvc.show("vm", "list")
    pvc.show("cluster", "status")


def _timers(cluster: LocalCluster) -> str:
    """The fencing timers of node2's configuration, in words."""
    config = yaml.safe_load(Path(cluster.record().node(VICTIM).config).read_text())
    timers, zk, fencing = (config.get(k) or {} for k in ("timers", "zookeeper", "fencing"))
    return (f"keepalive every {timers.get('keepalive_interval', 5)} s, ZooKeeper session "
            f"timeout {zk.get('session_timeout', 10)} s, fence_intervals "
            f"{fencing.get('fence_intervals', 6)}, saving_throws "
            f"{fencing.get('saving_throws', 2)}")


def _primary(pvc: Pvc) -> str | None:
    primary = pvc.json("cluster", "status").get("primary")
    return str(primary) if primary else None


def _judge(pvc: Pvc, out: Out) -> str:
    """The primary coordinator; moved to node1 first if it is node2."""
    primary = _primary(pvc)
    if primary == VICTIM:
        out(f"== {VICTIM} is primary: moving the primary role to {JUDGE} first")
        pvc.show("node", "primary", JUDGE, "--wait", timeout=STEP_TIMEOUT)
        _wait(f"{JUDGE} becoming primary", lambda: _primary(pvc) == JUDGE)
        primary = JUDGE
    if not primary:
        raise StepFailed("there is no primary coordinator to judge the nodes")
    return primary


def _victim_vms(pvc: Pvc, out: Out) -> set[str]:
    """The VMs running on node2 (one is migrated there first when it runs none)."""
    vms = pvc.vms()
    on_victim = {v["uuid"] for v in vms if v.get("node") == VICTIM and v["state"] == "start"}
    if not on_victim:
        vm = min((v for v in vms if v["state"] == "start"), key=lambda v: v["name"])
        out(f"== {VICTIM} runs no VM: migrating {vm['name']} there first")
        pvc.show("vm", "migrate", vm["name"], "--target", VICTIM, "--wait",
                 timeout=STEP_TIMEOUT)
        on_victim = {vm["uuid"]}
    _wait(f"{VICTIM}'s VMs reported running by its daemon",
          lambda: _running(pvc.vms(), on_victim, {VICTIM}) == on_victim)
    return on_victim


def _follow_fence(pvc: Pvc, others: set[str], should_run: set[str], names: dict[str, str],
                  since: float, start: float, out: Out) -> None:
    """Show node2's decisions as they appear, until it is fenced and every VM that
    should run runs on another node."""
    query = ("decision", "list", "--node", VICTIM, "--since", f"{since:.3f}")
    out(f"$ pvc {shlex.join((*query, '-f', 'json'))}")
    out(f"  (again every {POLL:g}s, with pvc node info {VICTIM} -f json and pvc vm list "
        "-f json, until the recovery is done; new decisions shown as they appear)")
    printed: set[Any] = set()
    state = None
    fenced = False
    end = start + FENCE_TIMEOUT
    while True:
        for d in pvc.json(*query):
            if d["seq"] in printed:
                continue
            printed.add(d["seq"])
            vm = d.get("vm")
            what = f"{names.get(vm, vm)}: " if vm else ""
            out(f"  {_at(float(d['time']) - since)}  {d['kind']:<13}  {what}{_outcome(d)}")
            if d["kind"] == "fence-failed":
                raise StepFailed(f"{VICTIM} could not be fenced: {d['outcome']}")
            fenced = fenced or d["kind"] == "fenced"
        record = pvc.node(VICTIM)
        if record["daemon_state"] != state:
            state = record["daemon_state"]
            out(f"  {_at(time.monotonic() - start)}  {VICTIM} daemon state: {state}")
        done = fenced and state == "fenced"
        running = _running(pvc.vms(), should_run, others)
        if done and running == should_run and record["domain_state"] == "flushed":
            out(f"  {_at(time.monotonic() - start)}  {VICTIM} fenced and all "
                f"{len(should_run)} VMs running on {' and '.join(sorted(others))} "
                "(their daemons' keepalives list them)")
            return
        if time.monotonic() > end:
            missing = sorted(names.get(u, u) for u in should_run - running)
            raise StepFailed(
                f"within {FENCE_TIMEOUT:g}s of the hang: "
                + (f"{VICTIM} was not fenced (daemon state {state})" if not done
                   else f"not running elsewhere: {', '.join(missing) or '-'} (domain state "
                        f"{record['domain_state']})"))
        time.sleep(POLL)


def _at(seconds: float) -> str:
    return f"{f'+{seconds:.1f}s':>6}"


def _outcome(decision: dict[str, Any]) -> str:
    driver = (decision.get("inputs") or {}).get("driver")
    return f"{driver}: {decision['outcome']}" if driver else str(decision["outcome"])


def _runs_again(pvc: Pvc, old_pid: object) -> bool:
    record = pvc.node(VICTIM)
    return (record["daemon_state"] == "run" and record.get("alive") is True
            and (record.get("info") or {}).get("pid") != old_pid)
