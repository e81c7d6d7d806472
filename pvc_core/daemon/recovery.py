"""Fencing a node and recovering its VMs (the primary's side).

:meth:`Fencer.fence` runs the node's fence chain in order until one driver
proves the node is off (power off accepted, then power status reads off
within ``power_off_timeout``). Then the ``pvc_node_fenced`` hook lets the
storage driver fence the node's clients, and the VMs are recovered per
``fencing.successful_fence``. A node that cannot be proved off is marked
failed-fence (a fault and a decision); its VMs are recovered only as
``fencing.failed_fence`` allows: ``none`` (default), ``migrate``, or
``migrate-after-self-fence`` (once the node must have stopped its VMs
itself: ``self_fence_after`` after the primary first saw its ZooKeeper
session gone, never while the session is alive; the fence monitor keeps
that clock, and :meth:`Fencer.after_self_fence_deadline` checks the
session once more right before recovering).

Recovery: each VM that should run on the node has its run-lease broken (the
epoch increases, so the fenced node can never start it again under the old
lease) and is placed on the best node like a flush would (the plan's
sequential placement); it remembers the fenced node as its previous node, so
readying the node brings it back. A VM with no valid target is stopped and
marked to start when its node is ready again. A fenced node is never
readied automatically.
"""

from __future__ import annotations

import dataclasses

from pvc_core.clock import Deadline
from pvc_core.coordination.lease import RunLease
from pvc_core.daemon.context import NodeContext
from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.factory import load_fence_chain
from pvc_core.drivers.fence import PowerState
from pvc_core.errors import Conflict, PVCError, VersionConflict
from pvc_core.ops.flush import plan_from_view
from pvc_core.ops.selector import default_selector
from pvc_core.ops.view import read_view
from pvc_core.states import DaemonState, DomainState, VMState
from pvc_core.store.records import NodeRecord, Placement, VmStateRecord

#: Deadline of the storage-fencing hook (seconds).
FENCED_HOOK_DEADLINE = 30.0


class Fencer:
    """Fences nodes and recovers their VMs, writing every step to the decision log."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.fencing
        self.log = ctx.log("fence")

    # -- fence --------------------------------------------------------------

    def fence(self, node: str, why: str) -> bool:
        """Run the fence chain of ``node``; True when it was proved off."""
        self._set_daemon_state(node, DaemonState.FENCING)
        entries = self.cfg.chain.get(node, ())
        if not entries:
            return self._failed(node, why, "no fence chain is configured for it")
        context = DriverContext(node=node, cluster=self.ctx.config.cluster.name,
                                clock=self.ctx.clock, logger=self.ctx.log("fence"),
                                extras=self.ctx.driver_extras)
        try:
            drivers = load_fence_chain([(e.driver, e.options) for e in entries], context)
        except PVCError as exc:
            return self._failed(node, why, f"fence chain did not load: {exc}")
        attempts: list[str] = []
        try:
            for entry, driver in zip(entries, drivers, strict=True):
                outcome = self._try(driver, node)
                attempts.append(f"{entry.driver}: {outcome}")
                self.ctx.decide("fence-attempt", outcome, node=node, driver=entry.driver,
                                step=len(attempts), of=len(entries))
                if outcome == "off":
                    return self._fenced(node, why, entry.driver)
        finally:
            for driver in drivers:
                driver.close()
        return self._failed(node, why, "; ".join(attempts))

    def _try(self, driver: object, node: str) -> str:
        from pvc_core.drivers.fence import FenceDriver

        assert isinstance(driver, FenceDriver)
        deadline = Deadline(self.cfg.power_off_timeout, self.ctx.clock)
        self.log.warning("fencing %s: power off through %s", node, type(driver).__name__)
        try:
            driver.power_off(deadline.remaining())
            while True:
                state = driver.power_status(max(0.1, deadline.remaining()))
                if state is PowerState.OFF:
                    return "off"
                if deadline.expired():
                    return f"still {state.value} after {deadline.seconds:g}s"
                self.ctx.stopping.wait(min(0.5, deadline.remaining()))
        except PVCError as exc:
            return f"failed: {exc}"

    def _fenced(self, node: str, why: str, driver: str) -> bool:
        self.log.warning("%s fenced (proved off by %s)", node, driver)
        self._set_daemon_state(node, DaemonState.FENCED)
        self.ctx.decide("fenced", f"proved off by {driver}", node=node, reason=why)
        hooked = self.ctx.hooks.call_with_deadline("pvc_node_fenced", FENCED_HOOK_DEADLINE,
                                                   node=node)
        for problem in hooked.problems():
            self.log.error("storage fencing of %s: %s", node, problem)
        if self.cfg.successful_fence == "migrate":
            self.recover(node, "fenced")
        else:
            self.ctx.decide("recovery", "none: successful_fence is none", node=node)
        return True

    def _failed(self, node: str, why: str, detail: str) -> bool:
        msg = f"{node} could not be proved off ({detail})"
        self.log.error("%s", msg)
        self._set_daemon_state(node, DaemonState.DEAD, fence="failed")
        self.ctx.decide("fence-failed", detail, node=node, reason=why,
                        policy=self.cfg.failed_fence)
        self.ctx.store.faults.raise_fault("failed-fence", node, msg, "critical")
        if self.cfg.failed_fence == "migrate":
            self.recover(node, "fence failed, failed_fence is migrate")
        elif self.cfg.failed_fence == "none":
            self.ctx.decide("recovery", "none: failed_fence is none, VMs stay assigned",
                            node=node)
        return False

    def after_self_fence_deadline(self, node: str) -> bool:
        """The self-fence deadline of a node whose fence failed has passed: recover
        its VMs if ``failed_fence`` is ``migrate-after-self-fence``.

        The caller (the fence monitor) counts the deadline from when it first saw
        the node's session gone, and calls this once per outage. As a last check
        the node's ``alive`` znode is read again: a node with a session never
        self-fences, so nothing is recovered while it exists. Returns True when
        the VMs were recovered.
        """
        if self.cfg.failed_fence != "migrate-after-self-fence":
            return False
        try:
            alive = self.ctx.store.zk.exists(self.ctx.store.ks.node_alive(node)) is not None
        except PVCError as exc:
            self.log.warning("%s: cannot check its session before recovery: %s", node, exc)
            return False
        if alive:
            self.log.warning("%s: not recovered: its session is alive again", node)
            self.ctx.decide("recovery", "none: its session is alive, so it has not "
                            "self-fenced", node=node)
            return False
        self.recover(node, f"fence failed; its session has been gone past the "
                           f"{self.cfg.self_fence_after:g}s self-fence deadline")
        return True

    # -- recovery -------------------------------------------------------------

    def recover(self, node: str, why: str) -> None:
        """Restart the node's VMs elsewhere (or stop them to wait for the node)."""
        self._set_domain_state(node, DomainState.FENCE_FLUSH)
        selector = default_selector(self.ctx.store)
        plan = plan_from_view(read_view(self.ctx.store), node, selector)
        self.log.warning("recovering %d VMs of %s (%s)", len(plan), node, why)
        for item in plan:
            try:
                self._recover_vm(node, item.vm, item.target, item.reason, why)
            except PVCError as exc:
                self.log.error("%s: not recovered: %s", item.name, exc)
                self.ctx.decide("vm-recovery", f"failed: {exc}", node=node, vm=item.vm)
        # A ready requested meanwhile wins: only a node still fence-flushing becomes flushed.
        self.ctx.store.nodes.update(node, lambda r: dataclasses.replace(
            r, domain_state=DomainState.FLUSHED) if r.domain_state is DomainState.FENCE_FLUSH
            else r)

    def _recover_vm(self, node: str, vm: str, target: str | None, reason: str,
                    why: str) -> None:
        lease = RunLease(self.ctx.store.zk, self.ctx.store.ks.vm_lease(vm), self.ctx.me)
        info = lease.read()
        if info.holder == node:
            epoch = lease.break_(node)
        elif info.holder is None:
            epoch = info.epoch
        else:
            raise Conflict(f"its lease is held by {info.holder}, not by {node}")
        record = self.ctx.store.vms.by_uuid(vm)
        if target is None:
            placement = Placement(node, record.placement.last_node, node)
            state = VmStateRecord(VMState.STOP, f"{node} {why}; no node can take it: "
                                                f"starts when {node} is ready", self.ctx.me)
            outcome = "left stopped: no valid target"
        else:
            placement = Placement(target, node, None)
            state = VmStateRecord(VMState.START, f"recovered from {node} ({why})", self.ctx.me)
            outcome = f"placed on {target}"
        self.ctx.store.vms.set_placement_and_state(record, placement, state)
        self.log.warning("%s: %s (lease epoch %d)", record.name, outcome, epoch)
        self.ctx.decide("vm-recovery", outcome, node=node, vm=vm, target=target,
                        placement=reason, lease_epoch=epoch)

    # -- records ----------------------------------------------------------------

    def _set_daemon_state(self, node: str, state: DaemonState, **info: str) -> None:
        def change(r: NodeRecord) -> NodeRecord:
            return dataclasses.replace(r, daemon_state=state, info={**r.info, **info})

        try:
            self.ctx.store.nodes.update(node, change)
        except VersionConflict as exc:
            self.log.warning("could not mark %s %s: %s", node, state.value, exc)

    def _set_domain_state(self, node: str, state: DomainState) -> None:
        self.ctx.store.nodes.update(node, lambda r: dataclasses.replace(r, domain_state=state))
