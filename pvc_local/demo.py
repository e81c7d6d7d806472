"""The demo: a 3-node local cluster, 6 VMs, a drain of node1, and a fenced node2.

Until the ``pvc`` CLI exists the demo drives the cluster through the core
operations (the same calls the API will make): define and start VMs, show
where they run, flush node1 with its plan and progress, ready it again, show
the result. Then node2 hangs (SIGSTOP): the primary notices, fences it over
IPMI through its BMC and restarts its VMs on node1 and node3, following the
decision log as it grows. node2 is powered on again through its BMC, readied
by hand (a fenced node never is automatically) and gets its VMs back.
Finally the cluster is stopped (when the demo started it).

Every step waits with a deadline; a step that does not happen makes the
demo print why and return 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from pvc_core.errors import PVCError
from pvc_core.ops.flush import plan_flush, request_flush, request_ready
from pvc_core.ops.nodes import primary_status, request_primary
from pvc_core.ops.view import running_as_placed
from pvc_core.ops.vms import define_vm, migrate_vm
from pvc_core.states import DaemonState, DomainState, VMState
from pvc_core.store import Store
from pvc_core.store.decisions import Decision
from pvc_local.cluster import LocalCluster, LocalClusterError

VM_COUNT = 6
STEP_TIMEOUT = 120.0
#: From the hang to node2 fenced and its VMs running elsewhere (about 8 s
#: with the local cluster's timers: keepalive 1 s, session timeout 6 s).
FENCE_TIMEOUT = 60.0
POLL = 0.2
#: The node that hangs, and the node that judges it when node2 happens to be primary.
VICTIM = "node2"
JUDGE = "node1"

Out = Callable[[str], None]


class StepFailed(RuntimeError):
    """A step of the demo did not happen; the message says which."""


def _vm_xml(i: int) -> str:
    return (f"<domain type='test'><name>demo{i}</name>"
            f"<memory unit='MiB'>{256 * (1 + i % 3)}</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


def _columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _table(store: Store) -> str:
    rows = [("VM", "STATE", "NODE", "LAST NODE", "MEMORY")]
    for vm in sorted(store.vms.all(), key=lambda v: v.name):
        rows.append((vm.name, vm.state.state.value, vm.placement.node or "-",
                     vm.placement.last_node or "-", f"{vm.memory_mib} MiB"))
    return _columns(rows)


def _wait(what: str, done: Callable[[], bool], out: Out,
          timeout: float = STEP_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise StepFailed(f"{what} did not happen within {timeout:g}s")
        time.sleep(POLL)


def _follow_job(store: Store, job_id: str, out: Out) -> dict[str, Any]:
    seen = None
    end = time.monotonic() + STEP_TIMEOUT
    while True:
        job = store.jobs.get(job_id).value
        progress = (job["state"], job["progress"]["done"], job["progress"]["total"])
        if progress != seen:
            out(f"  job {job['kind']}: {job['state']} "
                f"{job['progress']['done']}/{job['progress']['total']}"
                + (f" ({job['message']})" if job.get("message") else ""))
            seen = progress
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        if time.monotonic() > end:
            raise StepFailed(f"job {job_id} did not finish within {STEP_TIMEOUT:g}s")
        time.sleep(POLL)


def run_demo(cluster: LocalCluster, *, hypervisor: str = "test", out: Out = print) -> int:
    """Run the demo; return 0 when every step did what it should, else 1."""
    started = False
    if not cluster.is_up():
        out(f"== starting a 3-node local cluster in {cluster.directory} "
            f"(hypervisor {hypervisor}, a simulated IPMI BMC per node)")
        cluster.up(nodes=3, hypervisor=hypervisor, wait=90)
        started = True
    store = cluster.store()
    try:
        return _scenes(cluster, store, out)
    except (StepFailed, LocalClusterError) as exc:
        out(f"demo: {exc}")
        return 1
    finally:
        store.close()
        if started:
            out("== stopping the local cluster")
            cluster.down()


def _scenes(cluster: LocalCluster, store: Store, out: Out) -> int:
    out(f"== defining and starting {VM_COUNT} VMs")
    vms = [define_vm(store, _vm_xml(i), start=True, by="demo") for i in range(VM_COUNT)]
    _wait("VMs placed", lambda: all(store.vms.get(v.uuid).state.state is VMState.START
                                    for v in vms), out)
    out(_table(store))

    out("== draining node1: the plan (dry run)")
    plan = plan_flush(store, "node1")
    for item in plan:
        out(f"  {item.name} -> {item.target or 'stop'} ({item.method}): {item.reason}")
    out("== draining node1")
    job = _follow_job(store, request_flush(store, "node1", by="demo")["id"], out)
    out(_table(store))
    if job["state"] != "succeeded" or any(v.placement.node == "node1" and
                                          v.state.state is VMState.START
                                          for v in store.vms.all()):
        out("demo: the drain did not empty node1")
        return 1

    out("== readying node1: its VMs come back")
    job = _follow_job(store, request_ready(store, "node1", by="demo")["id"], out)
    out(_table(store))
    back = {item.vm for item in plan if item.target}
    home = {v.uuid for v in store.vms.all() if v.placement.node == "node1"}
    if job["state"] != "succeeded" or not back <= home:
        out("demo: not every VM came back to node1")
        return 1

    if not _fence_possible(cluster, out):
        out("== demo finished: node1 was drained and readied, and every VM is running")
        return 0
    _fence_scene(cluster, store, out)
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


def _fence_scene(cluster: LocalCluster, store: Store, out: Out) -> None:
    others = {n.name for n in store.nodes.all()} - {VICTIM}
    primary = _judge(store, out)
    victims = _victim_vms(store, out)
    names = {vm.uuid: vm.name for vm in store.vms.all()}
    should_run = {vm.uuid for vm in store.vms.all() if vm.state.state is VMState.START}
    out(f"== {VICTIM} hangs (SIGSTOP of its daemon), running "
        f"{', '.join(sorted(names[u] for u in victims))}; {primary} is primary and judges")
    out(f"   ({_timers(cluster)})")
    since = time.time()
    start = time.monotonic()
    cluster.hang(VICTIM)
    log = _follow_fence(store, others, should_run, names, since, start, out)
    out(f"  {VICTIM}'s BMC reads power {cluster.power(VICTIM, 'status')}")
    out(_table(store))
    out(f"== the decision log for {VICTIM}")
    rows = [("TIME", "KIND", "VM", "OUTCOME")]
    for d in log:
        rows.append((_clock(d.time), d.kind, names.get(d.vm or "", d.vm or "-"), _outcome(d)))
    out(_columns(rows))

    out(f"== powering {VICTIM} on through its BMC (IPMI): its daemon starts again")
    old_pid = store.nodes.get(VICTIM).value.info.get("pid")
    powered = time.monotonic()
    out(f"  {VICTIM}'s BMC reads power {cluster.power(VICTIM, 'on')}")
    _wait(f"{VICTIM} running again after the power-on", lambda: _runs_again(store, old_pid),
          out)
    record = store.nodes.get(VICTIM).value
    out(f"  {_at(time.monotonic() - powered)}  {VICTIM}: daemon {record.daemon_state.value}, "
        f"domain {record.domain_state.value} (a fenced node is never readied automatically)")
    out(f"== readying {VICTIM}: its VMs come back")
    job = _follow_job(store, request_ready(store, VICTIM, by="demo")["id"], out)
    if job["state"] != "succeeded":
        raise StepFailed(f"readying {VICTIM} ended {job['state']}: {job.get('message')}")
    _wait(f"{VICTIM}'s VMs running on it again",
          lambda: running_as_placed(store, victims, {VICTIM}) == victims, out)
    out(_table(store))


def _timers(cluster: LocalCluster) -> str:
    """The fencing timers of node2's configuration, in words."""
    config = yaml.safe_load(Path(cluster.record().node(VICTIM).config).read_text())
    timers, zk, fencing = (config.get(k) or {} for k in ("timers", "zookeeper", "fencing"))
    return (f"keepalive every {timers.get('keepalive_interval', 5)} s, ZooKeeper session "
            f"timeout {zk.get('session_timeout', 10)} s, fence_intervals "
            f"{fencing.get('fence_intervals', 6)}, saving_throws "
            f"{fencing.get('saving_throws', 2)}")


def _judge(store: Store, out: Out) -> str:
    """The primary coordinator; moved to node1 first if it is node2."""
    primary = primary_status(store)["primary"]
    if primary == VICTIM:
        out(f"== {VICTIM} is primary: moving the primary role to {JUDGE} first")
        request_primary(store, JUDGE, by="demo")
        _wait(f"{JUDGE} becoming primary",
              lambda: primary_status(store)["primary"] == JUDGE, out)
        primary = JUDGE
    if not primary:
        raise StepFailed("there is no primary coordinator to judge the nodes")
    return str(primary)


def _victim_vms(store: Store, out: Out) -> set[str]:
    """The VMs running on node2 (one is migrated there first when it runs none)."""
    on_victim = {vm.uuid for vm in store.vms.all()
                 if vm.placement.node == VICTIM and vm.state.state is VMState.START}
    if not on_victim:
        vm = min((v for v in store.vms.all() if v.state.state is VMState.START),
                 key=lambda v: v.name)
        out(f"== {VICTIM} runs no VM: migrating {vm.name} there first")
        migrate_vm(store, vm.uuid, VICTIM, by="demo")
        on_victim = {vm.uuid}
    _wait(f"{VICTIM}'s VMs reported running by its daemon",
          lambda: running_as_placed(store, on_victim, {VICTIM}) == on_victim, out)
    return on_victim


def _follow_fence(store: Store, others: set[str], should_run: set[str],
                  names: dict[str, str], since: float, start: float,
                  out: Out) -> list[Decision]:
    """Print node2's decisions as they appear, until it is fenced and every VM
    that should run runs on another node; return the decisions."""
    printed: set[int] = set()
    state = None
    end = start + FENCE_TIMEOUT
    while True:
        log = store.decisions.query(node=VICTIM, since=since)
        for d in log:
            if d.seq in printed:
                continue
            printed.add(d.seq)
            what = f"{names.get(d.vm, d.vm)}: " if d.vm else ""
            out(f"  {_at(d.time - since)}  {d.kind:<13}  {what}{_outcome(d)}")
            if d.kind == "fence-failed":
                raise StepFailed(f"{VICTIM} could not be fenced: {d.outcome}")
        record = store.nodes.get(VICTIM).value
        if record.daemon_state is not state:
            state = record.daemon_state
            out(f"  {_at(time.monotonic() - start)}  {VICTIM} daemon state: {state.value}")
        fenced = any(d.kind == "fenced" for d in log) and state is DaemonState.FENCED
        running = running_as_placed(store, should_run, others)
        if fenced and running == should_run \
                and record.domain_state is DomainState.FLUSHED:
            out(f"  {_at(time.monotonic() - start)}  {VICTIM} fenced and all "
                f"{len(should_run)} VMs running on {' and '.join(sorted(others))} "
                "(their daemons' keepalives list them)")
            return log
        if time.monotonic() > end:
            missing = sorted(names[u] for u in should_run - running)
            raise StepFailed(
                f"within {FENCE_TIMEOUT:g}s of the hang: "
                + (f"{VICTIM} was not fenced (daemon state {state.value})" if not fenced
                   else f"not running elsewhere: {', '.join(missing) or '-'} (domain state "
                        f"{record.domain_state.value})"))
        time.sleep(POLL)


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"


def _at(seconds: float) -> str:
    return f"{f'+{seconds:.1f}s':>6}"


def _outcome(decision: Decision) -> str:
    driver = decision.inputs.get("driver")
    return f"{driver}: {decision.outcome}" if driver else decision.outcome


def _runs_again(store: Store, old_pid: object) -> bool:
    try:
        record = store.nodes.get(VICTIM).value
    except PVCError:
        return False
    return (record.daemon_state is DaemonState.RUN and record.info.get("pid") != old_pid
            and store.zk.exists(store.ks.node_alive(VICTIM)) is not None)
