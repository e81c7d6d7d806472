"""The reconciler's decision table, exhaustively."""

from __future__ import annotations

import itertools

import pytest

from pvc_core.daemon.decide import Step, decide
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.states import VMState

ME, OTHER = "node1", "node2"
RUNNING, OFF = DomainState.RUNNING, DomainState.SHUTOFF


@pytest.mark.parametrize("desired, assigned, local, step", [
    (VMState.START, ME, None, Step.START),
    (VMState.START, ME, OFF, Step.START),
    (VMState.START, ME, DomainState.CRASHED, Step.START),
    (VMState.START, ME, RUNNING, Step.CONFIRM_LEASE),
    (VMState.RESTART, ME, RUNNING, Step.RESTART),
    (VMState.RESTART, ME, OFF, Step.START),
    (VMState.SHUTDOWN, ME, RUNNING, Step.SHUTDOWN),
    (VMState.SHUTDOWN, ME, OFF, Step.SETTLE),
    (VMState.DISABLE, ME, RUNNING, Step.SHUTDOWN),
    (VMState.STOP, ME, RUNNING, Step.DESTROY),
    (VMState.STOP, ME, DomainState.PAUSED, Step.DESTROY),
    (VMState.FAIL, ME, RUNNING, Step.DESTROY),
    (VMState.STOP, ME, None, Step.SETTLE),
    (VMState.MIGRATE, ME, RUNNING, Step.NONE),         # target: the guest is arriving
    (VMState.MIGRATE, ME, DomainState.PAUSED, Step.NONE),
    (VMState.MIGRATE, ME, None, Step.START),           # target: starts once the lease is free
    (VMState.UNMIGRATE, ME, OFF, Step.START),
    (VMState.MIGRATE, OTHER, RUNNING, Step.MIGRATE_OUT),  # source drives
    (VMState.MIGRATE_LIVE, OTHER, RUNNING, Step.MIGRATE_OUT),
    (VMState.UNMIGRATE, OTHER, RUNNING, Step.MIGRATE_OUT),
    (VMState.START, OTHER, RUNNING, Step.STOP_FOREIGN),  # running on the wrong node
    (VMState.START, None, RUNNING, Step.STOP_FOREIGN),
    (None, None, RUNNING, Step.STOP_FOREIGN),            # removed VM still running
    (VMState.START, OTHER, OFF, Step.UNDEFINE),
    (None, None, OFF, Step.UNDEFINE),
    (VMState.START, OTHER, None, Step.NONE),
])
def test_table(desired, assigned, local, step) -> None:  # type: ignore[no-untyped-def]
    assert decide(desired, assigned, ME, local) is step


def test_never_starts_a_vm_assigned_elsewhere_and_never_migrates_to_itself() -> None:
    for desired, local in itertools.product([*VMState, None], [*DomainState, None]):
        for assigned in (OTHER, None):
            assert decide(desired, assigned, ME, local) not in (
                Step.START, Step.RESTART, Step.CONFIRM_LEASE)
        assert decide(desired, ME, ME, local) is not Step.MIGRATE_OUT
