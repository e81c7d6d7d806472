"""The chaos cluster and the waits the chaos test is built from.

:class:`Chaos` holds a running :class:`~pvc_local.cluster.LocalCluster`,
a store on it, the invariant sampler and the VMs the test defined. Every
wait has a deadline and every ZooKeeper call here is bounded by the
store's ``op_timeout`` (an unavailable ZooKeeper is "not yet", never a
hang), so no test thread can block forever, quorum loss included.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvc_core.errors import NotFound, PVCError
from pvc_core.ops.flush import request_ready
from pvc_core.ops.vms import set_vm_state
from pvc_core.states import DaemonState, DomainState, VMState
from pvc_core.store import Store
from pvc_core.store.decisions import Decision
from pvc_core.store.jobs import FINISHED
from pvc_local import procs
from pvc_local.bmc import read_power_state
from pvc_local.cluster import LocalCluster
from pvc_local.procs import ProcState

from .sampler import InvariantSampler, read_all

#: Interval of the polls in waits.
POLL = 0.1
#: Decision kinds that mean someone was (about to be) fenced.
FENCE_KINDS = frozenset({"fence-attempt", "fenced", "fence-failed"})
#: What a simulated BMC logs when it powers its node off (pvc_local.bmc).
POWER_OFF = re.compile(r": power off \(killed PIDs (\[[0-9, ]*\])\)")


def wait_until(check: Callable[[], list[str]], timeout: float, what: str) -> float:
    """Poll ``check`` (a list of problems; empty: done) until it is empty.

    Returns the seconds it took; AssertionError with the last problems
    after ``timeout``.
    """
    start = time.monotonic()
    pause = threading.Event()  # never set: waits with timeouts, not sleeps
    while True:
        problems = check()
        elapsed = time.monotonic() - start
        if not problems:
            return elapsed
        if elapsed >= timeout:
            shown = "; ".join(problems[:8]) + (f"; ... {len(problems) - 8} more"
                                               if len(problems) > 8 else "")
            raise AssertionError(f"{what}: not within {timeout:g}s: {shown}")
        pause.wait(POLL)


@dataclass
class Mark:
    """When a fault was injected, on both clocks."""

    wall: float = field(default_factory=time.time)
    mono: float = field(default_factory=time.monotonic)

    def since(self) -> float:
        return time.monotonic() - self.mono


class Chaos:
    """The running chaos cluster and what the test knows about it."""

    def __init__(self, cluster: LocalCluster, store: Store, sampler: InvariantSampler,
                 vms: dict[str, str], bound: float) -> None:
        self.cluster = cluster
        self.store = store
        self.sampler = sampler
        self.vms = vms  # uuid -> name
        self.bound = bound
        self.names = [n.name for n in cluster.record().nodes]
        #: Set when a step failed (teardown then dumps the daemons' thread stacks).
        self.failed = False

    # -- reading the cluster ------------------------------------------------------

    def convergence_problems(self) -> list[str]:
        """Why not every VM runs on exactly the node its placement names (empty: it does)."""
        where = read_all(self.sampler.files)
        try:
            records = {r.uuid: r for r in self.store.vms.all()}
        except PVCError as exc:
            return [f"store: {exc}"]
        out = []
        for uuid, name in sorted(self.vms.items(), key=lambda kv: kv[1]):
            rec = records.get(uuid)
            active = where.get(uuid, [])
            if rec is None:
                out.append(f"{name} is gone from the store")
            elif rec.state.state is not VMState.START:
                out.append(f"{name} is {rec.state.state.value} ({rec.state.reason})")
            elif active != [rec.placement.node]:
                out.append(f"{name} placed on {rec.placement.node}, active on "
                           f"{', '.join(active) or 'no node'}")
        return out

    def node_problems(self) -> list[str]:
        """Why not every node is a live daemon in state run, ready (empty: all are)."""
        record = self.cluster.record()
        out = []
        for name in self.names:
            state = procs.proc_state(record.node(name).process)
            if state is not ProcState.ALIVE:
                out.append(f"{name}: process {state.value}")
                continue
            try:
                node = self.store.nodes.get(name).value
            except PVCError as exc:
                return [f"store: {exc}"]
            if node.daemon_state is not DaemonState.RUN or \
                    node.domain_state is not DomainState.READY:
                out.append(f"{name}: {node.daemon_state.value}/{node.domain_state.value}")
        return out

    def decisions(self, since: Mark, node: str | None = None) -> list[Decision]:
        """Decisions recorded since the mark (about ``node`` when given); [] if unreadable."""
        try:
            return self.store.decisions.query(node=node, since=since.wall)
        except (PVCError, NotFound):
            return []

    def primary(self) -> str:
        """The node ``cluster/primary`` names ('' when none or unreadable)."""
        try:
            data, _ = self.store.zk.get(self.store.ks.primary())
        except PVCError:
            return ""
        return data.decode()

    def keepalive_seqs(self) -> dict[str, int]:
        """Each node's keepalive sequence now (-1 when unreadable)."""
        out = {}
        for name in self.names:
            try:
                data, _ = self.store.zk.get(self.store.ks.node_keepalive(name))
                out[name] = int(json.loads(data)["seq"])
            except (PVCError, ValueError, KeyError):
                out[name] = -1
        return out

    def power_states(self) -> dict[str, str]:
        """Each node's BMC power state, read from the BMC's own state file."""
        record = self.cluster.record()
        return {name: read_power_state(record.bmc(name).state_file) for name in self.names}

    def bmc_power_offs(self, node: str) -> list[list[int]]:
        """The PIDs each power-off of the node's BMC killed, oldest first (from its log)."""
        text = Path(self.cluster.record().bmc(node).log).read_text(encoding="utf-8")
        return [json.loads(m.group(1)) for m in POWER_OFF.finditer(text)]

    def alive_owner(self, node: str) -> int | None:
        """The session that owns the node's ``alive`` znode (None: none)."""
        try:
            stat = self.store.zk.exists(self.store.ks.node_alive(node))
        except PVCError:
            return None
        return stat.ephemeralOwner if stat is not None else None

    @staticmethod
    def timeline(decisions: list[Decision], mark: Mark) -> dict[str, float]:
        """Seconds from the mark to the first decision of each kind."""
        out: dict[str, float] = {}
        for d in decisions:
            out.setdefault(d.kind, round(d.time - mark.wall, 2))
        return out

    @staticmethod
    def excerpt(decisions: list[Decision], limit: int = 12) -> str:
        return " | ".join(f"{d.kind}:{d.outcome}" + (f" ({d.node})" if d.node else "")
                          for d in decisions[:limit])

    # -- waits ------------------------------------------------------------------------

    def converge(self, timeout: float, what: str) -> float:
        """Wait until every VM runs on exactly its placement node; seconds it took."""
        return wait_until(self.convergence_problems, timeout, what)

    def await_fenced(self, victim: str, mark: Mark, timeout: float) -> list[Decision]:
        """Wait until the primary recorded ``victim`` fenced; its decisions since the mark."""
        found: list[Decision] = []

        def check() -> list[str]:
            found[:] = self.decisions(mark, victim)
            kinds = [d.kind for d in found]
            if "fence-failed" in kinds:
                raise AssertionError(f"fencing {victim} failed: {self.excerpt(found)}")
            return [] if "fenced" in kinds else [f"{victim} not fenced yet "
                                                 f"(decisions: {self.excerpt(found) or 'none'})"]

        wait_until(check, timeout, f"{victim} fenced")
        return found

    def wait_job(self, job_id: str, timeout: float, what: str) -> dict[str, Any]:
        job: dict[str, Any] = {}

        def check() -> list[str]:
            try:
                job.update(self.store.jobs.get(job_id).value)
            except PVCError as exc:
                return [f"store: {exc}"]
            return [] if job.get("state") in FINISHED else [f"job is {job.get('state')}"]

        wait_until(check, timeout, what)
        return job

    def revive(self, node: str) -> tuple[float, int]:
        """Start a dead (fenced) node again and ready it.

        Returns the seconds until every VM settled and how many VMs are
        placed on the node then (those recovered from it came back home).
        """
        start = time.monotonic()
        self.wait_recovery_done(node)
        entry = self.cluster.record().node(node)
        if procs.proc_state(entry.process) is ProcState.DEAD:
            self.cluster.restart(node, wait=60)
        self.ready(node)
        self.converge(self.bound, f"{node} revived and ready")
        home = sum(1 for n in self.placements().values() if n == node)
        assert home > 0, f"no VM came back to {node} when it was readied"
        return time.monotonic() - start, home

    def restart_one_vm_per_node(self, timeout: float) -> float:
        """Restart the first VM (by name) placed on each node; seconds until all run again.

        Proves every node's daemon still reconciles (watches, workers, leases).
        """
        records = sorted((r for r in self.store.vms.all() if r.uuid in self.vms),
                         key=lambda r: r.name)
        chosen = {}
        for rec in records:
            if rec.placement.node and rec.placement.node not in chosen:
                chosen[rec.placement.node] = rec
        assert sorted(chosen) == sorted(self.names), f"VMs only on {sorted(chosen)}"
        start = time.monotonic()
        for rec in chosen.values():
            set_vm_state(self.store, rec.uuid, VMState.RESTART, reason="chaos: probe",
                         by="chaos")
        names = {rec.name for rec in chosen.values()}

        def check() -> list[str]:
            return [p for p in self.convergence_problems() if p.split(" ", 1)[0] in names]

        wait_until(check, timeout, f"one VM restarted on every node ({', '.join(sorted(names))})")
        return time.monotonic() - start

    def zookeeper_problems(self) -> list[str]:
        """The ensemble members that do not serve (empty: all do)."""
        return [f"zk{m.member} not serving" for m in self.cluster.record().zk_members
                if not self.cluster.zookeeper_serving(m.member)]

    def dump_stacks(self) -> list[str]:
        """SIGABRT every live daemon (PYTHONFAULTHANDLER=1 prints all thread stacks)."""
        logs = []
        for name in self.names:
            entry = self.cluster.record().node(name)
            if procs.send_signal(entry.process, signal.SIGABRT):
                logs.append(entry.log)
        return logs

    def placements(self) -> dict[str, str | None]:
        """VM uuid -> the node its placement names."""
        return {r.uuid: r.placement.node for r in self.store.vms.all() if r.uuid in self.vms}

    def wait_recovery_done(self, node: str) -> None:
        """Wait until the primary finished recovering the node (``fence-flush`` is over).

        The recovery ends by writing the node ``flushed`` unconditionally,
        which would undo a ready requested before that.
        """
        def check() -> list[str]:
            try:
                state = self.store.nodes.get(node).value.domain_state
            except PVCError as exc:
                return [f"store: {exc}"]
            return [f"{node} is {state.value}"] if state is DomainState.FENCE_FLUSH else []

        wait_until(check, self.bound, f"recovery of {node} finished")

    def ready(self, node: str) -> None:
        """``request_ready`` the node unless it is ready; wait for the job."""
        record = self.store.nodes.get(node).value
        if record.domain_state is DomainState.READY:
            return
        if record.domain_state in (DomainState.UNFLUSH, DomainState.UNFLUSHING) and record.job:
            job_id = record.job
        else:
            job_id = request_ready(self.store, node, by="chaos")["id"]
        job = self.wait_job(job_id, 60, f"ready of {node}")
        assert job["state"] == "succeeded", f"ready of {node}: {job}"

    def ensure_healthy(self, timeout: float) -> list[str]:
        """Bring the cluster back to full strength (after a failed step); what was fixed."""
        fixed = []
        record = self.cluster.record()
        for member in record.zk_members:
            if not procs.is_running(member.process):
                self.cluster.zookeeper_start(member.member)
                fixed.append(f"started ZooKeeper member {member.member}")
        wait_until(self.zookeeper_problems, 60, "every ZooKeeper member serving")
        for name in self.names:
            state = procs.proc_state(self.cluster.record().node(name).process)
            if state is ProcState.STOPPED:
                self.cluster.resume(name)
                fixed.append(f"resumed {name}")
            elif state is ProcState.DEAD:
                self.cluster.restart(name, wait=60)
                fixed.append(f"restarted {name}")
        # Every VM running first: a node readied while VMs are still being placed on it
        # or recovered from it only adds to the confusion.
        self.converge(timeout, "every VM running on its node")
        for name in self.names:
            if self.store.nodes.get(name).value.domain_state is not DomainState.READY:
                self.wait_recovery_done(name)
                self.ready(name)
                fixed.append(f"readied {name}")
        wait_until(self.node_problems, timeout, "every node run and ready")
        self.converge(timeout, "every VM running on its node")
        return fixed
