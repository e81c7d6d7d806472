"""Flush (drain) and ready (undrain) of this node, run as jobs.

A flush or ready request sets this node's domain state and creates a job
(:mod:`pvc_core.ops.flush`). This runner, in the node's own daemon, picks it
up: it queues behind any other flush or ready in the cluster (the flush
lock), waits while a primary takeover is in progress, computes the plan
(:func:`pvc_core.ops.flush.plan_flush`, the dry run's function), runs up to
``migration.parallel_limit`` migrations at once, each with a deadline of
``migration.vm_timeout``, and records plan, progress, result and a log of
its progress lines in the job (:mod:`pvc_core.daemon.joblog`).

A VM that misses its deadline is aborted where that is safe (the move is
undone: the VM stays here, running) and the flush carries on with the
others; the flush then ends ``failed`` and the node stays ``flushing``. A
``ready`` request cancels a running flush: no new migration starts, those
in flight finish, and the ready job runs next. A job that ended is never run
again; a new flush or ready request makes a new job.

Ready brings back the VMs whose previous node is this one, then starts the
VMs that waited for this node (stopped by a flush or a fence recovery for
lack of a target), then the VMs assigned here whose ``autostart`` is set and
that are stopped (``stop``; ``disable`` means "keep it off").
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pvc_core.clock import Deadline
from pvc_core.coordination.election import transition_free
from pvc_core.coordination.lock import Lock
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.joblog import JobRecorder
from pvc_core.errors import InvalidInput, LockTimeout, NotFound, PVCError, VersionConflict
from pvc_core.ops.flush import PlanItem, plan_flush, plan_summary
from pvc_core.ops.selector import seed_default_selector
from pvc_core.ops.vms import request_move, unmigrate_vm
from pvc_core.states import (
    VM_MIGRATING_STATES,
    VM_RUNNING_STATES,
    CoordinatorState,
    DomainState,
    VMState,
)
from pvc_core.store.records import NodeRecord, Placement, VmRecord, VmStateRecord

#: How often a waiting job re-checks its conditions when nothing wakes it (seconds).
POLL = 1.0
#: Compare-and-set attempts when undoing a move that timed out.
ABORT_TRIES = 5
_BUSY_COORD = (CoordinatorState.TAKEOVER, CoordinatorState.RELINQUISH)
OK = "ok"


class Cancelled(Exception):
    """The node's domain state moved on (a ready request cancelled the flush)."""


@dataclass
class _Progress:
    """Results of one job's VMs, across its phases."""

    total: int
    results: dict[str, str] = field(default_factory=dict)

    def failed(self) -> dict[str, str]:
        return {name: why for name, why in self.results.items() if why != OK}


class NodeJobRunner:
    """Runs this node's flush and ready jobs on one thread, one at a time."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.log = ctx.log("flush")
        self.wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"jobs-{ctx.me}", daemon=True)

    def start(self) -> None:
        self._seed_selector()
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _seed_selector(self) -> None:
        """Give the cluster this node's ``migration.default_selector`` if it has none."""
        mine = self.ctx.config.migration.default_selector
        try:
            cluster = seed_default_selector(self.ctx.store, mine)
        except PVCError as exc:
            self.log.warning("could not seed the cluster's default selector: %s", exc)
            return
        if cluster != mine:
            self.log.info("the cluster's default selector is %s; this node's "
                          "migration.default_selector (%s) only seeds a new cluster",
                          cluster, mine)

    # -- loop -------------------------------------------------------------

    def _loop(self) -> None:
        while not self.ctx.stopping.is_set():
            self.wake.clear()
            try:
                node = self._node()
                if node.domain_state in (DomainState.FLUSH, DomainState.FLUSHING):
                    self._run(node, "flush")
                elif node.domain_state in (DomainState.UNFLUSH, DomainState.UNFLUSHING):
                    self._run(node, "ready")
            except PVCError as exc:
                self.log.warning("job check failed: %s", exc)
            self.wake.wait(POLL * 5)

    def _node(self) -> NodeRecord:
        return self.ctx.store.nodes.get(self.ctx.me).value

    def _run(self, node: NodeRecord, kind: str) -> None:
        job = JobRecorder(self.ctx.store, node.job, self.ctx.clock, self.log)
        if job.finished():
            return  # e.g. a flush that failed: the node stays flushing until asked again
        wanted = ((DomainState.FLUSH, DomainState.FLUSHING) if kind == "flush"
                  else (DomainState.UNFLUSH, DomainState.UNFLUSHING))

        def check() -> None:
            if self.ctx.stopping.is_set() or self._node().domain_state not in wanted:
                raise Cancelled()

        lock = Lock(self.ctx.store.zk, self.ctx.store.ks.flush_lock(), self.ctx.me)
        try:
            self._wait_for_lock(lock, job, check)
            self._wait_for_takeover(job, check)
            if kind == "flush":
                self._flush(job, check)
            else:
                self._ready(job)
        except Cancelled:
            self.log.info("%s of %s cancelled", kind, self.ctx.me)
            job.update("cancelled: the node state changed", state="cancelled")
        except InvalidInput as exc:  # bad data (a cluster config value): retrying won't help
            self.log.error("%s of %s failed: %s", kind, self.ctx.me, exc)
            job.update(f"{kind} failed: {exc}", state="failed")
        finally:
            lock.release()

    def _wait_for_lock(self, lock: Lock, job: JobRecorder, check: Callable[[], None]) -> None:
        said = False
        while True:
            check()
            try:
                lock.acquire(timeout=POLL)
                return
            except LockTimeout:
                holders = [c for c in lock.contenders() if c != self.ctx.me]
                if not said:
                    msg = f"queued behind the flush/ready of {', '.join(holders) or 'another node'}"
                    self.log.info("%s", msg)
                    job.update(msg, state="queued")
                    said = True

    def _wait_for_takeover(self, job: JobRecorder, check: Callable[[], None]) -> None:
        """Wait until no primary relinquish or takeover is under way.

        Both the coordinators' records and the read side of the
        primary-transition lock (whose write side a coordinator holds
        through relinquish and takeover) must say so; the read side is
        taken and released at once, it only orders this job after them.
        """
        said = False
        while True:
            busy = [f"{n.name} is {n.coordinator_state.value}"
                    for n in self.ctx.store.nodes.all() if n.coordinator_state in _BUSY_COORD]
            if not busy and not transition_free(self.ctx.store.zk, self.ctx.store.ks,
                                                self.ctx.me, POLL):
                busy = ["the primary-transition lock is held"]
            if not busy:
                if said:
                    self.log.info("the primary takeover completed")
                    job.update("the primary takeover completed")
                return
            check()
            if not said:
                msg = f"waiting for a primary takeover to complete ({', '.join(busy)})"
                self.log.info("%s", msg)
                job.update(msg)
                said = True
            # not self.wake: set by any change of this node's record, it would make this spin
            self.ctx.stopping.wait(POLL)

    # -- flush ----------------------------------------------------------------

    def _flush(self, job: JobRecorder, check: Callable[[], None]) -> None:
        self._set_domain(DomainState.FLUSHING, (DomainState.FLUSH, DomainState.FLUSHING))
        plan = plan_flush(self.ctx.store, self.ctx.me)
        summary = plan_summary(plan)
        self.log.info("flush of %s: %s", self.ctx.me, summary)
        for item in plan:
            self.log.info("  %s -> %s (%s)", item.name, item.target or "stop", item.method)
        job.update(summary, state="running", plan=[i.to_dict() for i in plan],
                   progress={"done": 0, "total": len(plan)})
        progress = _Progress(len(plan))
        self._run_parallel(job, plan, self._flush_one, check, progress)
        failed = progress.failed()
        if failed:
            msg = (f"flush failed: {len(failed)} of {len(plan)} VMs not moved "
                   f"({', '.join(sorted(failed))}); {self.ctx.me} stays flushing")
            self.log.error("%s: %s", msg, failed)
            job.update(msg, state="failed", result=progress.results)
            return
        self._set_domain(DomainState.FLUSHED, (DomainState.FLUSHING,))
        job.update(f"flushed: {len(plan)} of {len(plan)} VMs moved or stopped",
                   state="succeeded", result=progress.results)
        self.log.info("%s flushed", self.ctx.me)

    def _flush_one(self, item: PlanItem) -> str:
        vm = self.ctx.store.vms.get(item.vm)
        if vm.placement.node != self.ctx.me or vm.state.state not in VM_RUNNING_STATES:
            return OK  # moved or stopped meanwhile
        if item.target is None:
            self.ctx.store.vms.set_placement_and_state(
                vm, Placement(self.ctx.me, vm.placement.last_node, self.ctx.me),
                VmStateRecord(VMState.SHUTDOWN, f"flush of {self.ctx.me}: no target", "flush"))
            self.ctx.decide("flush", "stopped: no target", vm=vm.uuid, reason=item.reason)
        else:
            # The plan already placed it: no second placement per VM (that would read the
            # whole cluster once per VM).
            request_move(self.ctx.store, vm, Placement(item.target, self.ctx.me, None),
                         VMState.MIGRATE_LIVE if item.live_only else VMState.MIGRATE,
                         f"flush of {self.ctx.me}", f"flush to {item.target}: {item.reason}")
        outcome = self._await(vm.uuid, item.target)
        return self._abort(vm, item) if outcome is None else outcome

    def _abort(self, before: VmRecord, item: PlanItem) -> str:
        """The VM missed its deadline: undo its move (it stays here, running) where safe.

        Safe while the source's migrator has not started, and during a shutdown
        migration or a shutdown (both give up when the state changes). A live
        migration inside the hypervisor is left to the hypervisor's own timeout
        (``migration.vm_timeout`` too): rewriting the VM under it could leave the
        guest running on a node it is not assigned to.
        """
        why = f"timed out after {self.ctx.config.migration.vm_timeout:g}s"
        if item.target is None:
            return self._undo(before, item, why)
        # The VM's migration sync lock: while the job holds it, neither the source's
        # migrator nor the target can take a step. A source step in progress holds it.
        lock = Lock(self.ctx.store.zk, self.ctx.store.ks.migration_lock(item.vm), self.ctx.me)
        try:
            held = lock.acquire(timeout=POLL)
        except LockTimeout:
            held = False
        except PVCError as exc:
            return f"{why}; not aborted: {exc}"
        # A live migration may be under way unless this hypervisor cannot do one or the
        # VM refuses it (then the migrator can only be in a shutdown migration).
        live = item.method == "live" or (self.ctx.hv.capabilities().live_migration
                                         and before.meta.migration_method != "shutdown")
        try:
            if not held and live:
                self.log.warning("%s: %s; not aborted: a live migration to %s may be under"
                                 " way", item.name, why, item.target)
                return (f"{why}; not aborted: a live migration to {item.target} may be under "
                        "way (the hypervisor gives up at its own timeout)")
            return self._undo(before, item, why)
        finally:
            if held:
                lock.release()

    def _undo(self, before: VmRecord, item: PlanItem, why: str) -> str:
        """Write the VM back as it was before the flush touched it, running here."""
        me = self.ctx.me
        what = f"migration to {item.target}" if item.target else "shutdown"
        for _ in range(ABORT_TRIES):
            try:
                vm = self.ctx.store.vms.get(item.vm)
            except NotFound:
                return OK
            state, node = vm.state.state, vm.placement.node
            if item.target is None:
                if state is VMState.STOP:
                    return OK  # stopped just now
                in_flight = state is VMState.SHUTDOWN and node == me
            else:
                if state is VMState.START and node == item.target:
                    return OK  # arrived just now
                in_flight = state in VM_MIGRATING_STATES and node == item.target
            if not in_flight:
                return f"{why}; meanwhile it became {state.value} on {node or 'no node'}"
            outcome = f"{why}: {what} aborted, stays on {me}"
            try:
                self.ctx.store.vms.set_placement_and_state(
                    vm, before.placement,
                    VmStateRecord(VMState.START, f"flush of {me}: {outcome}", f"flush of {me}"))
            except VersionConflict:
                continue
            self.log.warning("%s: %s", item.name, outcome)
            self.ctx.decide("flush", f"aborted: {what} {why}", vm=item.vm, target=item.target)
            return outcome
        return f"{why}; not aborted: the VM kept changing"

    # -- ready ------------------------------------------------------------------

    def _ready(self, job: JobRecorder) -> None:
        self._set_domain(DomainState.UNFLUSHING, (DomainState.UNFLUSH, DomainState.UNFLUSHING))
        phases = self._ready_plan()
        plan = [item for phase in phases for item in phase]
        back, waiting, auto = (len(p) for p in phases)
        job.update(f"plan: {back} to bring back, {waiting} waiting for {self.ctx.me}, "
                   f"{auto} to autostart", state="running", plan=[i.to_dict() for i in plan],
                   progress={"done": 0, "total": len(plan)})
        # The node takes VMs again before they come back.
        self._set_domain(DomainState.READY, (DomainState.UNFLUSHING,))
        progress = _Progress(len(plan))
        for phase in phases:  # each phase done before the next starts
            self._run_parallel(job, phase, self._ready_one, lambda: None, progress)
        failed = progress.failed()
        done = len(plan) - len(failed)
        msg = f"ready: {done} of {len(plan)} VMs back or started"
        if failed:
            msg += f"; not: {', '.join(sorted(failed))}"
        job.update(msg, state="failed" if failed else "succeeded", result=progress.results)
        self.log.info("%s %s", self.ctx.me, msg)

    def _ready_plan(self) -> list[list[PlanItem]]:
        """Three phases: VMs to bring back, VMs that waited for this node, autostart VMs."""
        me = self.ctx.me
        vms = sorted(self.ctx.store.vms.all(), key=lambda v: (v.name, v.uuid))
        back = [PlanItem(v.uuid, v.name, me, "unmigrate", False, "returns home")
                for v in vms if v.placement.last_node == me and v.placement.node != me
                and v.state.state is VMState.START]
        waiting = [PlanItem(v.uuid, v.name, me, "autostart", False, "waited for this node")
                   for v in vms if v.placement.wait_for == me and v.state.state is VMState.STOP]
        queued = {item.vm for item in waiting}
        auto = [PlanItem(v.uuid, v.name, me, "autostart", False, "autostart is set")
                for v in vms if v.placement.node == me and v.meta.autostart
                and v.state.state is VMState.STOP and v.uuid not in queued]
        return [back, waiting, auto]

    def _ready_one(self, item: PlanItem) -> str:
        me = self.ctx.me
        if item.method == "unmigrate":
            unmigrate_vm(self.ctx.store, item.vm, by=f"ready of {me}")
        else:
            vm = self.ctx.store.vms.get(item.vm)
            if vm.state.state is not VMState.STOP:  # the operator changed it meanwhile
                return (OK if vm.state.state is VMState.START and vm.placement.node == me
                        else f"not started: it became {vm.state.state.value}")
            self.ctx.store.vms.set_placement_and_state(
                vm, Placement(me, vm.placement.last_node, None),
                VmStateRecord(VMState.START, f"autostart: {me} is ready ({item.reason})",
                              "ready"))
        outcome = self._await(item.vm, me)
        if outcome is None:
            return f"timed out after {self.ctx.config.migration.vm_timeout:g}s"
        return outcome

    # -- shared -----------------------------------------------------------------

    def _line(self, item: PlanItem, outcome: str, progress: _Progress) -> str:
        """The job's log line for one VM's outcome."""
        if outcome != OK:
            what = outcome
        elif item.method == "stop":
            what = f"stopped (no target: starts again when {self.ctx.me} is ready)"
        elif item.method == "unmigrate":
            what = f"back on {self.ctx.me}"
        elif item.method == "autostart":
            what = f"started on {self.ctx.me} ({item.reason})"
        else:
            what = f"moved to {item.target} ({item.method})"
        return f"{item.name}: {what} ({len(progress.results)}/{progress.total})"

    def _run_parallel(self, job: JobRecorder, plan: list[PlanItem],
                      one: Callable[[PlanItem], str], check: Callable[[], None],
                      progress: _Progress) -> None:
        """Run ``one(item)`` for every item, at most ``parallel_limit`` at once."""
        limit = self.ctx.config.migration.parallel_limit
        cond = threading.Condition()
        running = 0
        cancelled = False

        def worker(item: PlanItem) -> None:
            nonlocal running
            try:
                outcome = one(item)
            except PVCError as exc:
                outcome = f"error: {exc}"
            with cond:
                progress.results[item.name] = outcome
                line = self._line(item, outcome, progress)
                self.log.info("%s", line)
                job.update(line, progress={"done": len(progress.results),
                                           "total": progress.total})
                running -= 1
                cond.notify_all()

        def has_room() -> bool:
            return running < limit

        for item in plan:
            try:
                while True:  # wait for room, noticing a cancellation meanwhile
                    check()
                    with cond:
                        if cond.wait_for(has_room, POLL):
                            break
                check()
            except Cancelled:
                cancelled = True
                break
            with cond:
                running += 1
            threading.Thread(target=worker, args=(item,), daemon=True,
                             name=f"flush-{item.name}").start()
        with cond:
            cond.wait_for(lambda: running == 0)
        if cancelled:
            raise Cancelled()

    def _await(self, uuid: str, target: str | None) -> str | None:
        """Wait (woken by the VM's watch) until the VM runs on ``target``, or is
        stopped when ``target`` is None: "ok", what went wrong instead, or None
        when ``migration.vm_timeout`` passed first."""
        deadline = Deadline(self.ctx.config.migration.vm_timeout, self.ctx.clock)
        key = f"vm:{uuid}"
        while True:
            since = self.ctx.changes.version(key)
            try:
                vm = self.ctx.store.vms.get(uuid)
            except NotFound:
                return OK  # removed meanwhile
            state, node = vm.state.state, vm.placement.node
            if state is VMState.FAIL:
                return f"failed: {vm.state.reason}"
            if target is None and state is VMState.STOP:
                return OK
            if target is not None and state is VMState.START:
                return OK if node == target else f"stayed on {node}: {vm.state.reason}"
            if deadline.expired():
                return None
            self.ctx.changes.wait(key, since, min(POLL, deadline.remaining()))

    def _set_domain(self, state: DomainState, from_states: tuple[DomainState, ...]) -> None:
        def change(r: NodeRecord) -> NodeRecord:
            if r.domain_state not in from_states and r.domain_state is not state:
                raise Cancelled()
            return dataclasses.replace(r, domain_state=state)

        self.ctx.store.nodes.update(self.ctx.me, change)
