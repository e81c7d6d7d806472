"""Both sides of a VM migration, in lockstep through the VM's sync lock.

A migration is requested by writing the target as the VM's node and the
state ``migrate`` (``migrate-live``, ``unmigrate``). Source and target step
in turn through the VM's migration sync lock
(:mod:`pvc_core.coordination.migration_sync`):

1. The **source** holds the lock for its whole step, so two migrations of
   one VM never overlap:

   - **live** (when the VM allows it and both hypervisors can): the
     hypervisor moves the running guest, then the source hands the run-lease
     straight to the target (it is never free while the guest runs) and
     marks the VM started. On failure it falls back to a shutdown migration,
     unless live was forced, in which case the VM stays here, running, and
     the failure is reported in its state reason and the decision log.
   - **shutdown**: the guest is shut down here (destroyed after the shutdown
     timeout), undefined, the lease released, and the VM marked started.

2. The **target** joins the lock's queue behind the source (waiting on a
   watch, not polling, if it looked before the source joined), so it gets
   the lock when the source's step is over, or when the source's session
   ended. Holding the lock it looks again and, if the VM should still start
   here, takes the lease and starts it. A lease still held by the source is
   broken only once the source was fenced (proved off); until then the VM
   waits, whatever the lock says.

The target never starts the VM before the source let go of the lease, so a
VM never runs on two nodes; the lock only orders the steps. Neither side
waits for the other while holding anything the other needs: the source's
step does not depend on the target's daemon, and the target waits behind the
source only once the source is in the queue (bounded by the source's own
deadlines, and cancelled when this daemon stops).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pvc_core.coordination.lease import RunLease
from pvc_core.coordination.migration_sync import MigrationSync
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.decide import Step, decide
from pvc_core.daemon.vmctl import VmController
from pvc_core.drivers.hypervisor import DomainInfo
from pvc_core.errors import DriverError, LockTimeout, NotFound, PVCError, VersionConflict
from pvc_core.states import VM_MIGRATING_STATES, DaemonState, VMState
from pvc_core.store.records import Placement, VmRecord, VmStateRecord

#: How long the source waits for the sync lock before looking again later (seconds).
SOURCE_LOCK_WAIT = 1.0

#: The plain start of a VM on this node: (fresh record, local domain) -> re-check delay.
StartHere = Callable[[VmRecord, DomainInfo | None], float | None]


class Migrator:
    """Drives migrations away from this node and starts VMs migrating to it."""

    def __init__(self, ctx: NodeContext, vms: VmController) -> None:
        self.ctx = ctx
        self.vms = vms
        self.log = ctx.log("migration")
        self._mutex = threading.Lock()
        self._waiting: set[MigrationSync] = set()
        self._canceller: threading.Thread | None = None

    def sync(self, uuid: str) -> MigrationSync:
        """A fresh handle on the VM's migration sync lock."""
        return MigrationSync(self.ctx.store.zk, self.ctx.store.ks.migration_lock(uuid),
                             self.ctx.me, clock=self.ctx.clock)

    # -- source side -----------------------------------------------------------

    def migrate_out(self, rec: VmRecord) -> float | None:
        """Source step: move the VM away, holding its sync lock throughout."""
        lock = self.sync(rec.uuid).lock
        try:
            lock.acquire(timeout=SOURCE_LOCK_WAIT)
        except LockTimeout:
            return SOURCE_LOCK_WAIT
        try:
            rec = self.ctx.store.vms.get(rec.uuid)  # fresh, under the lock
            if rec.state.state not in VM_MIGRATING_STATES or rec.placement.node == self.ctx.me:
                return None
            return self._migrate(rec)
        finally:
            lock.release()

    def _migrate(self, rec: VmRecord) -> float | None:
        target = rec.placement.node
        assert target is not None
        live_only = rec.state.state is VMState.MIGRATE_LIVE or rec.meta.migration_method == "live"
        want_live = rec.meta.migration_method != "shutdown"
        info = self._target_info(target)
        uri = info.get("migration_uri")
        can_live = bool(self.ctx.hv.capabilities().live_migration and info.get("live_migration")
                        and uri)
        if want_live and can_live:
            downtime = rec.meta.max_downtime_ms or self.ctx.config.migration.max_downtime_ms
            self.log.info("%s: live migration to %s (max downtime %d ms)", rec.name, target,
                          downtime)
            try:
                self.ctx.hv.migrate(rec.uuid, str(uri), max_downtime_ms=downtime,
                                    timeout=self.ctx.config.migration.vm_timeout)
            except PVCError as exc:
                if live_only:
                    self._stay(rec, f"live migration to {target} failed: {exc}")
                    return None
                self.log.warning("%s: live migration to %s failed (%s): falling back to a "
                                 "shutdown migration", rec.name, target, exc)
                self.ctx.decide("migration", f"live to {target} failed: falling back to "
                                "shutdown", vm=rec.uuid, source=self.ctx.me, target=target,
                                reason=str(exc))
            else:
                self.vms.restarts.stopped(rec.uuid)
                self.vms.lease(rec.uuid).hand_over(target)
                self.vms.forget_lease(rec.uuid)
                self._done(rec, "live", target)
                return None
        elif live_only:
            self._stay(rec, f"cannot live-migrate to {target}: "
                            "no live migration between these hypervisors")
            return None
        return self._shutdown_migrate(rec, target)

    def _shutdown_migrate(self, rec: VmRecord, target: str) -> float | None:
        self.log.info("%s: shutdown migration to %s", rec.name, target)
        if not self.vms.graceful_stop(rec, set(VM_MIGRATING_STATES)):
            return None
        try:
            self.ctx.hv.undefine(rec.uuid)
        except (NotFound, DriverError) as exc:
            self.log.warning("%s: could not undefine after migrating: %s", rec.name, exc)
        self.vms.restarts.stopped(rec.uuid)
        self.vms.release_lease(rec.uuid)
        self._done(rec, "shutdown", target)
        return None

    def _done(self, rec: VmRecord, method: str, target: str) -> None:
        reason = f"{method} migration from {self.ctx.me} to {target}"
        self.log.info("%s: %s done", rec.name, reason)
        self.ctx.decide("migration", f"{method} to {target}", vm=rec.uuid, source=self.ctx.me,
                        target=target, method=method)
        try:
            self.ctx.store.vms.set_state(rec.uuid, VMState.START, reason, self.ctx.me,
                                         expected_version=rec.versions.get("state", -1))
        except VersionConflict:
            self.log.info("%s changed during the migration: not marking it started", rec.name)

    def _stay(self, rec: VmRecord, why: str) -> None:
        """Live migration was forced and is impossible: the VM stays here, running."""
        self.log.error("%s: %s; the VM stays on %s", rec.name, why, self.ctx.me)
        self.ctx.decide("migration", f"failed: stays on {self.ctx.me}", vm=rec.uuid,
                        target=rec.placement.node, reason=why)
        back = rec.placement.node if rec.state.state is VMState.UNMIGRATE else None
        try:
            self.ctx.store.vms.set_placement_and_state(
                rec, Placement(self.ctx.me, back, None),
                VmStateRecord(VMState.START, why, self.ctx.me))
        except VersionConflict:
            self.log.info("%s changed meanwhile: leaving its state alone", rec.name)

    def _target_info(self, target: str) -> dict[str, object]:
        try:
            return dict(self.ctx.store.nodes.get(target).value.info)
        except NotFound:
            return {}

    # -- target side -----------------------------------------------------------

    def migrate_in(self, rec: VmRecord, start: StartHere) -> float | None:
        """Target step: start a VM migrating here once the source's step is over.

        ``start`` is the plain start (lease, hook, define, start), called
        holding the sync lock with a fresh record when the VM should still
        start here. Returns a re-check delay like every reconciler step.
        """
        interval = self.ctx.config.timers.keepalive_interval
        sync = self.sync(rec.uuid)
        lease = RunLease(self.ctx.store.zk, self.ctx.store.ks.vm_lease(rec.uuid), self.ctx.me)
        seen = lease.read()
        holder = seen.holder
        if holder not in (None, self.ctx.me):
            # Queue behind the source: wait (on watches) until it is in the queue. If it
            # does not come (dead, or it had nothing to move), the lease tells below.
            sync.wait_for(holder, interval, also=lease.path, seen_version=seen.version)
        if not self._acquire(sync, rec):
            return None if self.ctx.stopping.is_set() else interval
        try:
            return self._arrive(rec.uuid, lease, start)
        finally:
            sync.lock.release()

    def _arrive(self, uuid: str, lease: RunLease, start: StartHere) -> float | None:
        """Holding the sync lock: look again, and start the VM if it should start here."""
        try:
            rec = self.ctx.store.vms.by_uuid(uuid)
        except NotFound:
            return None
        local = self.vms.local(uuid)
        step = decide(rec.state.state, rec.placement.node, self.ctx.me,
                      local.state if local else None)
        if step is not Step.START:  # e.g. the guest arrived live, or the VM stays
            return None if step is Step.NONE else 0.0  # 0: the plain reconciler goes on
        holder = lease.read().holder
        if holder not in (None, self.ctx.me):
            if not self._proved_off(holder):
                self.log.debug("%s: waiting for %s to give up its run-lease", rec.name, holder)
                return self.ctx.config.timers.keepalive_interval
            epoch = lease.break_(holder)
            self.log.warning("%s: the source %s was fenced mid-migration: its run-lease is "
                             "broken (epoch %d)", rec.name, holder, epoch)
            self.ctx.decide("migration", f"lease broken: source {holder} was fenced",
                            vm=uuid, source=holder, target=self.ctx.me, lease_epoch=epoch)
        return start(rec, local)

    def _proved_off(self, node: str) -> bool:
        """True when ``node`` was fenced (proved off): its leases may be broken."""
        try:
            return self.ctx.store.nodes.get(node).value.daemon_state is DaemonState.FENCED
        except NotFound:
            return False

    def _acquire(self, sync: MigrationSync, rec: VmRecord) -> bool:
        """Take the sync lock (queued behind whoever holds it); False if not taken.

        Bounded by the longest a source step can take, and cancelled as soon
        as this daemon stops.
        """
        timers = self.ctx.config.timers
        timeout = self.ctx.config.migration.vm_timeout + timers.vm_shutdown_timeout
        with self._mutex:
            self._waiting.add(sync)
            if self._canceller is None:
                self._canceller = threading.Thread(target=self._cancel_on_stop, daemon=True,
                                                   name=f"migration-cancel-{self.ctx.me}")
                self._canceller.start()
        try:
            if self.ctx.stopping.is_set():
                return False
            return sync.lock.acquire(timeout=timeout)
        except LockTimeout as exc:
            self.log.warning("%s: not started: %s", rec.name, exc)
            return False
        finally:
            with self._mutex:
                self._waiting.discard(sync)

    def _cancel_on_stop(self) -> None:
        self.ctx.stopping.wait()
        with self._mutex:
            waiting = list(self._waiting)
        for sync in waiting:
            sync.lock.cancel()


class LockstepVmController(VmController):
    """A :class:`VmController` whose migration targets start in lockstep with the source.

    Its :attr:`migrator` must be a :class:`Migrator`: the START step of a VM
    in a migration state goes through :meth:`Migrator.migrate_in`.
    """

    def _start(self, uuid: str, rec: VmRecord, local: DomainInfo | None) -> float | None:
        if rec.state.state in VM_MIGRATING_STATES and isinstance(self.migrator, Migrator):
            return self.migrator.migrate_in(rec, self.start_here)
        return super()._start(uuid, rec, local)

    def start_here(self, rec: VmRecord, local: DomainInfo | None) -> float | None:
        """The plain start of ``rec`` on this node (lease, hook, define, start)."""
        return super()._start(rec.uuid, rec, local)
