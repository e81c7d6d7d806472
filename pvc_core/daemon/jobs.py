"""Flush (drain) and ready (undrain) of this node, run as jobs.

A flush or ready request sets this node's domain state and creates a job
(:mod:`pvc_core.ops.flush`). This runner, in the node's own daemon, picks it
up: it queues behind any other flush or ready in the cluster (the flush
lock), waits while a primary takeover is in progress, computes the plan,
runs up to ``migration.parallel_limit`` migrations at once, each with a
deadline of ``migration.vm_timeout``, and records plan, progress and result
in the job. A ``ready`` request cancels a running flush: no new migration
starts, those in flight finish, and the ready job runs next.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from pvc_core.clock import Deadline
from pvc_core.coordination.lock import Lock
from pvc_core.daemon.context import NodeContext
from pvc_core.errors import LockTimeout, NotFound, PVCError
from pvc_core.ops.flush import PlanItem, plan_from_view
from pvc_core.ops.view import read_view
from pvc_core.ops.vms import request_move, set_vm_state, unmigrate_vm
from pvc_core.states import VM_RUNNING_STATES, CoordinatorState, DomainState, VMState
from pvc_core.store.records import NodeRecord, Placement, VmStateRecord

#: How often a waiting job re-checks its conditions when nothing wakes it (seconds).
POLL = 1.0
_BUSY_COORD = (CoordinatorState.TAKEOVER, CoordinatorState.RELINQUISH)


class Cancelled(Exception):
    """The node's domain state moved on (a ready request cancelled the flush)."""


class NodeJobRunner:
    """Runs this node's flush and ready jobs on one thread, one at a time."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.log = ctx.log("flush")
        self.wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"jobs-{ctx.me}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- loop -------------------------------------------------------------

    def _loop(self) -> None:
        while not self.ctx.stopping.is_set():
            self.wake.clear()
            try:
                node = self.ctx.store.nodes.get(self.ctx.me).value
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
        job_id = node.job
        wanted = ((DomainState.FLUSH, DomainState.FLUSHING) if kind == "flush"
                  else (DomainState.UNFLUSH, DomainState.UNFLUSHING))

        def check() -> None:
            if self.ctx.stopping.is_set() or self._node().domain_state not in wanted:
                raise Cancelled()

        lock = Lock(self.ctx.store.zk, self.ctx.store.ks.flush_lock(), self.ctx.me)
        try:
            self._wait_for_lock(lock, job_id, check)
            self._wait_for_takeover(check)
            if kind == "flush":
                self._flush(job_id, check)
            else:
                self._ready(job_id, check)
        except Cancelled:
            self.log.info("%s of %s cancelled", kind, self.ctx.me)
            self._job(job_id, state="cancelled", message="cancelled: the node state changed")
        finally:
            lock.release()

    def _wait_for_lock(self, lock: Lock, job_id: str | None, check: Any) -> None:
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
                    self._job(job_id, state="queued", message=msg)
                    said = True

    def _wait_for_takeover(self, check: Any) -> None:
        said = False
        while any(n.coordinator_state in _BUSY_COORD for n in self.ctx.store.nodes.all()):
            check()
            if not said:
                self.log.info("waiting for a primary takeover to complete")
                said = True
            self.wake.wait(POLL)

    # -- flush ----------------------------------------------------------------

    def _flush(self, job_id: str | None, check: Any) -> None:
        self._set_domain(DomainState.FLUSHING, (DomainState.FLUSH, DomainState.FLUSHING))
        selector = str(self.ctx.store.cluster.get_config().value.get("default_selector")
                       or self.ctx.config.migration.default_selector)
        plan = plan_from_view(read_view(self.ctx.store), self.ctx.me, selector)
        self.log.info("flush of %s: %d VMs", self.ctx.me, len(plan))
        for item in plan:
            self.log.info("  %s -> %s (%s)", item.name, item.target or "stop", item.method)
        self._job(job_id, state="running", plan=[i.to_dict() for i in plan],
                  progress={"done": 0, "total": len(plan)})
        results = self._run_parallel(job_id, plan, self._flush_one, check)
        failed = {k: v for k, v in results.items() if v != "ok"}
        if failed:
            self.log.error("flush of %s incomplete: %s", self.ctx.me, failed)
            self._job(job_id, state="failed", result=results,
                      message=f"{len(failed)} of {len(plan)} VMs could not be moved")
            return
        self._set_domain(DomainState.FLUSHED, (DomainState.FLUSHING,))
        self._job(job_id, state="succeeded", result=results, message="flushed")
        self.log.info("%s flushed", self.ctx.me)

    def _flush_one(self, item: PlanItem) -> str:
        vm = self.ctx.store.vms.get(item.vm)
        if vm.placement.node != self.ctx.me or vm.state.state not in VM_RUNNING_STATES:
            return "ok"  # moved or stopped meanwhile
        if item.target is None:
            self.ctx.store.vms.set_placement_and_state(
                vm, Placement(self.ctx.me, vm.placement.last_node, self.ctx.me),
                VmStateRecord(VMState.SHUTDOWN, f"flush of {self.ctx.me}: no target", "flush"))
            self.ctx.decide("flush", "stopped: no target", vm=vm.uuid, reason=item.reason)
            return self._await(vm.uuid, None)
        # The plan already placed it: no second placement per VM (that would read the
        # whole cluster once per VM).
        request_move(self.ctx.store, vm, Placement(item.target, self.ctx.me, None),
                     VMState.MIGRATE_LIVE if item.live_only else VMState.MIGRATE,
                     f"flush of {self.ctx.me}", f"flush to {item.target}: {item.reason}")
        return self._await(vm.uuid, item.target)

    # -- ready ------------------------------------------------------------------

    def _ready(self, job_id: str | None, check: Any) -> None:
        self._set_domain(DomainState.UNFLUSHING, (DomainState.UNFLUSH, DomainState.UNFLUSHING))
        vms = self.ctx.store.vms.all()
        back = [v for v in vms if v.placement.last_node == self.ctx.me
                and v.placement.node != self.ctx.me and v.state.state is VMState.START]
        waiting = [v for v in vms if v.placement.wait_for == self.ctx.me
                   and v.state.state is VMState.STOP]
        plan = [PlanItem(v.uuid, v.name, self.ctx.me, "unmigrate", False, "returns home")
                for v in sorted(back, key=lambda v: v.name)]
        plan += [PlanItem(v.uuid, v.name, self.ctx.me, "autostart", False,
                          "waited for this node") for v in sorted(waiting, key=lambda v: v.name)]
        self._job(job_id, state="running", plan=[i.to_dict() for i in plan],
                  progress={"done": 0, "total": len(plan)})
        # The node takes VMs again before they come back.
        self._set_domain(DomainState.READY, (DomainState.UNFLUSHING,))
        results = self._run_parallel(job_id, plan, self._ready_one, lambda: None)
        failed = {k: v for k, v in results.items() if v != "ok"}
        self._job(job_id, state="failed" if failed else "succeeded", result=results,
                  message=f"{len(plan) - len(failed)} of {len(plan)} VMs back")
        self.log.info("%s ready: %d of %d VMs back", self.ctx.me, len(plan) - len(failed),
                      len(plan))

    def _ready_one(self, item: PlanItem) -> str:
        if item.method == "unmigrate":
            unmigrate_vm(self.ctx.store, item.vm, by=f"ready of {self.ctx.me}")
        else:
            vm = self.ctx.store.vms.get(item.vm)
            self.ctx.store.vms.set_placement_and_state(
                vm, Placement(self.ctx.me, vm.placement.last_node, None))
            set_vm_state(self.ctx.store, item.vm, VMState.START,
                         reason=f"autostart: {self.ctx.me} is ready", by="ready")
        return self._await(item.vm, self.ctx.me)

    # -- shared -----------------------------------------------------------------

    def _run_parallel(self, job_id: str | None, plan: list[PlanItem], one: Any,
                      check: Any) -> dict[str, str]:
        """Run ``one(item)`` for every item, at most ``parallel_limit`` at once."""
        limit = self.ctx.config.migration.parallel_limit
        results: dict[str, str] = {}
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
                results[item.name] = outcome
                done = len(results)
                self.log.info("%s: %s (%d/%d)", item.name, outcome, done, len(plan))
                self._job(job_id, progress={"done": done, "total": len(plan)})
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
        return results

    def _await(self, uuid: str, target: str | None) -> str:
        """Wait (woken by the VM's watch) until the VM runs on ``target``, or is
        stopped when ``target`` is None; "ok" or what went wrong instead."""
        deadline = Deadline(self.ctx.config.migration.vm_timeout, self.ctx.clock)
        key = f"vm:{uuid}"
        while True:
            since = self.ctx.changes.version(key)
            try:
                vm = self.ctx.store.vms.get(uuid)
            except NotFound:
                return "ok"  # removed meanwhile
            state, node = vm.state.state, vm.placement.node
            if state is VMState.FAIL:
                return f"failed: {vm.state.reason}"
            if target is None and state is VMState.STOP:
                return "ok"
            if target is not None and state is VMState.START:
                return "ok" if node == target else f"stayed on {node}: {vm.state.reason}"
            if deadline.expired():
                return f"timed out after {deadline.seconds:g}s"
            self.ctx.changes.wait(key, since, min(POLL, deadline.remaining()))

    def _set_domain(self, state: DomainState, from_states: tuple[DomainState, ...]) -> None:
        def change(r: NodeRecord) -> NodeRecord:
            if r.domain_state not in from_states and r.domain_state is not state:
                raise Cancelled()
            return dataclasses.replace(r, domain_state=state)

        self.ctx.store.nodes.update(self.ctx.me, change)

    def _job(self, job_id: str | None, **changes: Any) -> None:
        """Update the job record (best effort); stamps when it started and finished."""
        if not job_id:
            return
        if changes.get("state") == "running":
            changes["started"] = self.ctx.clock.wall()
        elif changes.get("state") in ("succeeded", "failed", "cancelled"):
            changes["finished"] = self.ctx.clock.wall()
        try:
            self.ctx.store.jobs.update(job_id, lambda j: {**j, **changes})
        except NotFound:
            self.log.warning("job %s vanished", job_id)
        except PVCError as exc:
            self.log.warning("job %s not updated: %s", job_id, exc)
