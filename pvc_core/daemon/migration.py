"""The source side of a VM migration.

A migration is requested by writing the target as the VM's node and the
state ``migrate`` (``migrate-live``, ``unmigrate``). The source node drives
it, holding the VM's migration lock so two migrations of one VM never
overlap:

- **live** (when the VM allows it and both hypervisors can): the hypervisor
  moves the running guest, then the source hands the run-lease straight to
  the target (it is never free while the guest runs) and marks the VM
  started. On failure it falls back to a shutdown migration, unless live
  was forced, in which case the VM stays here, running, and the failure is
  reported in its state reason and the decision log.
- **shutdown**: the guest is shut down here (destroyed after the shutdown
  timeout), undefined, the lease released, and the VM marked started; the
  target's daemon then takes the lease and starts it.

The target never starts the VM before the source let go of the lease.
"""

from __future__ import annotations

from pvc_core.coordination.lock import Lock
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.vmctl import VmController
from pvc_core.errors import DriverError, LockTimeout, NotFound, PVCError, VersionConflict
from pvc_core.states import VM_MIGRATING_STATES, VMState
from pvc_core.store.records import Placement, VmRecord, VmStateRecord


class Migrator:
    """Drives migrations away from this node."""

    def __init__(self, ctx: NodeContext, vms: VmController) -> None:
        self.ctx = ctx
        self.vms = vms
        self.log = ctx.log("migration")

    def migrate_out(self, rec: VmRecord) -> float | None:
        lock = Lock(self.ctx.store.zk, self.ctx.store.ks.migration_lock(rec.uuid), self.ctx.me)
        try:
            lock.acquire(timeout=1.0)
        except LockTimeout:
            return 1.0
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
