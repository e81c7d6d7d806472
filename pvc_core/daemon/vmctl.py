"""Carry out the reconciler's steps for one VM on this node.

Every method here runs in a reconciler worker, one VM at a time (the
reconciler serializes work per VM). A method returns None when the VM needs
nothing more until something changes, or a delay in seconds after which the
VM should be looked at again (backoff, a lease held elsewhere).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from pvc_core.clock import Deadline
from pvc_core.coordination.lease import RunLease
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.decide import Step, decide
from pvc_core.daemon.restarts import RestartTracker
from pvc_core.drivers.hypervisor import DomainInfo
from pvc_core.errors import (
    Conflict,
    LeaseHeld,
    NotFound,
    PVCError,
    VersionConflict,
)
from pvc_core.hooks.results import HookRefused
from pvc_core.states import VM_MIGRATING_STATES, VMState
from pvc_core.store.records import VmRecord

#: Slice of a graceful shutdown between checks of the desired state (seconds).
SHUTDOWN_SLICE = 0.5
#: Deadline of the about-to-start hook (seconds).
START_HOOK_DEADLINE = 10.0


class Migrating(Protocol):
    """Drives a migration away from this node (:class:`pvc_core.daemon.migration.Migrator`)."""

    def migrate_out(self, rec: VmRecord) -> float | None: ...


class VmController:
    """Decides and performs the next step of each VM on one node."""

    def __init__(self, ctx: NodeContext, migrator: Migrating | None = None) -> None:
        self.ctx = ctx
        self.log = ctx.log("vm")
        t = ctx.config.timers
        self.restarts = RestartTracker(ctx.clock, t.restart_max_tries, t.restart_backoff,
                                       t.restart_reset_after)
        self.migrator = migrator
        #: Called after a VM started here (the daemon nudges its keepalive).
        self.on_started: Callable[[str], None] | None = None
        self._leases: dict[str, RunLease] = {}
        self._lock = threading.Lock()
        #: uuid -> (record, change version when it was read), from the last resync.
        self._snapshot: dict[str, tuple[VmRecord, int]] = {}

    def remember(self, records: list[VmRecord], versions: dict[str, int]) -> None:
        """Keep a resync's records, each valid until its VM's next change notification.

        ``versions`` are the change counters read *before* the records, so a
        change that raced the read makes the record stale, never trusted.
        """
        with self._lock:
            self._snapshot = {r.uuid: (r, versions.get(r.uuid, 0)) for r in records}

    def _record(self, uuid: str) -> VmRecord | None:
        with self._lock:
            hint = self._snapshot.pop(uuid, None)
        if hint is not None and hint[1] == self.ctx.changes.version(f"vm:{uuid}"):
            return hint[0]
        try:
            return self.ctx.store.vms.by_uuid(uuid)
        except NotFound:
            return None

    # -- entry point --------------------------------------------------------

    def reconcile(self, uuid: str) -> float | None:
        """Look at one VM and take its next step; return a re-check delay or None."""
        rec = self._record(uuid)
        local = self.local(uuid)
        step = decide(rec.state.state if rec else None, rec.placement.node if rec else None,
                      self.ctx.me, local.state if local else None)
        if (rec is None or rec.placement.node != self.ctx.me) and step in (Step.NONE,
                                                                          Step.UNDEFINE):
            self._release_if_held(uuid)  # e.g. a VM that never ran here, moved elsewhere
        if step is Step.NONE:
            return None
        name = rec.name if rec else uuid
        self.log.debug("%s: %s", name, step.value)
        handler = getattr(self, "_" + step.value.replace("-", "_"))
        return handler(uuid, rec, local)  # type: ignore[no-any-return]

    def local(self, uuid: str) -> DomainInfo | None:
        try:
            return self.ctx.hv.domain_info(uuid)
        except NotFound:
            return None

    def lease(self, uuid: str) -> RunLease:
        with self._lock:
            lease = self._leases.get(uuid)
            if lease is None:
                lease = RunLease(self.ctx.store.zk, self.ctx.store.ks.vm_lease(uuid),
                                 self.ctx.me)
                self._leases[uuid] = lease
            return lease

    def release_lease(self, uuid: str) -> None:
        with self._lock:
            lease = self._leases.pop(uuid, None)
        if lease is None:
            lease = RunLease(self.ctx.store.zk, self.ctx.store.ks.vm_lease(uuid), self.ctx.me)
        lease.release()
        lease.close()

    def _release_if_held(self, uuid: str) -> None:
        """Release a lease this node took for a VM that is not running here any more."""
        with self._lock:
            held = uuid in self._leases
        if held:
            self.restarts.stopped(uuid)
            self.release_lease(uuid)

    def forget_lease(self, uuid: str) -> None:
        """Drop the handle of a lease this node no longer holds (handed over, broken)."""
        with self._lock:
            lease = self._leases.pop(uuid, None)
        if lease is not None:
            lease.close()

    # -- steps --------------------------------------------------------------

    def _start(self, uuid: str, rec: VmRecord, local: DomainInfo | None) -> float | None:
        if self.restarts.expected_running(uuid):
            return self._crashed(rec, f"it stopped unexpectedly "
                                      f"({local.state.value if local else 'undefined'})")
        wait = self.restarts.wait_before_start(uuid)
        if wait > 0:
            return wait
        try:
            epoch = self.lease(uuid).acquire()
        except LeaseHeld as exc:
            self.log.warning("%s not started: %s", rec.name, exc)
            return self.ctx.config.timers.keepalive_interval
        try:
            self.ctx.hooks.call_with_deadline(
                "pvc_vm_about_to_start", START_HOOK_DEADLINE,
                vm_uuid=uuid, node=self.ctx.me).raise_if_refused()
        except HookRefused as exc:
            self.log.warning("%s not started: %s", rec.name, exc)
            self.release_lease(uuid)
            return self.ctx.config.timers.keepalive_interval
        try:
            self.ctx.hv.define(self.ctx.store.vms.get_xml(uuid).value)
            self.ctx.hv.start(uuid)
        except PVCError as exc:
            self.restarts.started(uuid)
            return self._crashed(rec, f"start failed: {exc}")
        self.restarts.started(uuid)
        self.log.info("%s started (lease epoch %d)", rec.name, epoch)
        if rec.state.state in VM_MIGRATING_STATES:  # the source never ran it, or stopped it
            self._set_state(rec, VMState.START, f"started on {self.ctx.me} "
                                                f"({rec.state.state.value} target)")
        if self.on_started is not None:
            self.on_started(uuid)
        return None

    def _crashed(self, rec: VmRecord, why: str) -> float | None:
        delay = self.restarts.crashed(rec.uuid)
        tries = self.restarts.max_tries
        if delay is None:
            reason = f"{why}; gave up after {tries} restarts"
            self.log.error("%s: %s", rec.name, reason)
            self._destroy_quietly(rec.uuid)
            self.release_lease(rec.uuid)
            self._set_state(rec, VMState.FAIL, reason)
            self.ctx.decide("vm-fail", "failed", vm=rec.uuid, reason=reason)
            return None
        attempt = self.restarts.attempts(rec.uuid)
        self.log.warning("%s: %s; restart %d of %d in %.1fs", rec.name, why, attempt, tries,
                         delay)
        self.ctx.decide("vm-restart", "scheduled", vm=rec.uuid, reason=why, attempt=attempt,
                        delay=delay)
        return delay

    def _confirm_lease(self, uuid: str, rec: VmRecord, local: DomainInfo) -> float | None:
        lease = self.lease(uuid)
        if lease.valid and self.restarts.expected_running(uuid):
            return None
        try:
            lease.acquire()  # ours already, or free (a VM this node ran before a restart)
        except LeaseHeld as exc:
            self.log.error("%s runs here without its lease (%s): destroying it", rec.name, exc)
            self.ctx.decide("vm-stop", "destroyed: running without the lease", vm=uuid,
                            lease=str(exc))
            self._destroy_quietly(uuid)
            self.forget_lease(uuid)
            return None
        self.restarts.started(uuid)
        return None

    def _restart(self, uuid: str, rec: VmRecord, local: DomainInfo) -> float | None:
        if not self.graceful_stop(rec, {VMState.RESTART}):
            return None
        self.restarts.stopped(uuid)
        delay = self._start(uuid, rec, None)
        if delay is None:
            self._set_state(self.ctx.store.vms.get(uuid), VMState.START, "restarted",
                            expect=VMState.RESTART)
        return delay

    def _shutdown(self, uuid: str, rec: VmRecord, local: DomainInfo) -> float | None:
        if not self.graceful_stop(rec, {rec.state.state}):
            return None
        return self._settle(uuid, self.ctx.store.vms.get(uuid), None)

    def _destroy(self, uuid: str, rec: VmRecord, local: DomainInfo) -> float | None:
        self.ctx.hv.destroy(uuid)
        self.log.info("%s stopped (%s)", rec.name, rec.state.state.value)
        return self._settle(uuid, rec, None)

    def _settle(self, uuid: str, rec: VmRecord, local: DomainInfo | None) -> float | None:
        self.restarts.stopped(uuid)
        self.release_lease(uuid)
        self.ctx.hooks.call_with_deadline("pvc_vm_stopped", START_HOOK_DEADLINE,
                                          vm_uuid=uuid, node=self.ctx.me)
        if rec.state.state is VMState.SHUTDOWN:
            self._set_state(rec, VMState.STOP, "shut down", expect=VMState.SHUTDOWN)
        return None

    def _stop_foreign(self, uuid: str, rec: VmRecord | None,
                      local: DomainInfo) -> float | None:
        where = f"assigned to {rec.placement.node}" if rec else "not defined in the cluster"
        self.log.warning("%s runs here but is %s: stopping it here",
                         rec.name if rec else uuid, where)
        self.ctx.decide("vm-stop", f"stopped on {self.ctx.me}: {where}", vm=uuid)
        self._destroy_quietly(uuid)
        self.restarts.stopped(uuid)
        lease = self.lease(uuid)
        if lease.holds():
            self.release_lease(uuid)
        else:
            self.forget_lease(uuid)
        return self._undefine(uuid, rec, None)

    def _undefine(self, uuid: str, rec: VmRecord | None,
                  local: DomainInfo | None) -> float | None:
        try:
            self.ctx.hv.undefine(uuid)
        except (NotFound, Conflict):
            pass
        return None

    def _migrate_out(self, uuid: str, rec: VmRecord, local: DomainInfo) -> float | None:
        if self.migrator is None:
            return None
        return self.migrator.migrate_out(rec)

    # -- helpers ----------------------------------------------------------------

    def graceful_stop(self, rec: VmRecord, while_in: set[VMState]) -> bool:
        """Shut the guest down, destroying it after ``vm_shutdown_timeout``.

        Aborted (returns False, the VM left as it is) as soon as the VM's
        desired state leaves ``while_in``. Returns True once it is off.
        """
        deadline = Deadline(self.ctx.config.timers.vm_shutdown_timeout, self.ctx.clock)
        while not deadline.expired():
            if self.ctx.hv.shutdown(rec.uuid, timeout=min(SHUTDOWN_SLICE, deadline.remaining())):
                self.log.info("%s shut down", rec.name)
                return True
            now = self.ctx.store.vms.get(rec.uuid).state.state
            if now not in while_in:
                self.log.info("%s: shutdown aborted, the VM is now %s", rec.name, now.value)
                return False
        self.log.warning("%s did not shut down within %.0fs: destroying it", rec.name,
                         deadline.seconds)
        self.ctx.hv.destroy(rec.uuid)
        return True

    def _destroy_quietly(self, uuid: str) -> None:
        try:
            self.ctx.hv.destroy(uuid)
        except NotFound:
            pass

    def _set_state(self, rec: VmRecord, state: VMState, reason: str,
                   expect: VMState | None = None) -> None:
        """Write a state unless someone changed it since ``rec`` was read."""
        if expect is not None and rec.state.state is not expect:
            return
        try:
            self.ctx.store.vms.set_state(rec.uuid, state, reason, self.ctx.me,
                                         expected_version=rec.versions.get("state", -1))
        except (VersionConflict, NotFound):
            self.log.info("%s changed meanwhile: not marking it %s", rec.name, state.value)
