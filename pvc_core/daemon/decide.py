"""The VM reconciler's decision: desired state vs what this node's hypervisor reports.

:func:`decide` is pure and level-triggered: given the desired state and
assignment in ZooKeeper and the local domain's state, it returns the one
next step this node takes for the VM. It is called again after every step
and every change, until it answers :attr:`Step.NONE`.
"""

from __future__ import annotations

import enum

from pvc_core.drivers.hypervisor import DomainState
from pvc_core.states import VM_MIGRATING_STATES, VMState


class Step(enum.StrEnum):
    """What the node does next for one VM."""

    NONE = "none"
    #: Take the run-lease (if free), define from the stored XML, start (and, on
    #: the target of a migration, mark the VM started).
    START = "start"
    #: The VM should run here and does: make sure this node holds its lease.
    CONFIRM_LEASE = "confirm-lease"
    #: Graceful shutdown (abortable), destroy after the timeout, then mark stopped.
    SHUTDOWN = "shutdown"
    #: Graceful shutdown then start again, then mark started.
    RESTART = "restart"
    #: Destroy at once and release the lease.
    DESTROY = "destroy"
    #: Nothing runs: release the lease if this node holds it; mark a shutdown done.
    SETTLE = "settle"
    #: This node is the source of a requested migration: drive it.
    MIGRATE_OUT = "migrate-out"
    #: The VM runs here but belongs elsewhere (or nowhere): stop it here.
    STOP_FOREIGN = "stop-foreign"
    #: A stale, inactive definition of a VM not assigned here: remove it.
    UNDEFINE = "undefine"


def decide(desired: VMState | None, assigned: str | None, me: str,
           local: DomainState | None) -> Step:
    """The next step for one VM on node ``me``.

    :param desired: the VM's desired state, or None when the VM was removed.
    :param assigned: the node the VM is assigned to.
    :param local: the state of the domain on this node's hypervisor, or
        None when it is not defined here.
    """
    active = local is not None and local.active
    if desired is None or assigned != me:
        if active:
            if desired in VM_MIGRATING_STATES:
                return Step.MIGRATE_OUT
            return Step.STOP_FOREIGN
        return Step.UNDEFINE if local is not None else Step.NONE
    if desired is VMState.START:
        return Step.CONFIRM_LEASE if active else Step.START
    if desired is VMState.RESTART:
        return Step.RESTART if active else Step.START
    if desired in (VMState.SHUTDOWN, VMState.DISABLE):
        return Step.SHUTDOWN if active else Step.SETTLE
    if desired in (VMState.STOP, VMState.FAIL):
        return Step.DESTROY if active else Step.SETTLE
    if desired in VM_MIGRATING_STATES:
        # Target side. While the guest is arriving (live) it is active here: wait for
        # the source to hand the lease over. Not active: start it once the lease is
        # free, which proves it runs nowhere (the source stopped it, or it never ran).
        return Step.NONE if active else Step.START
    return Step.NONE  # provisioning
