"""The state tables: every state reachable, every entry well-formed, checks enforced."""

from __future__ import annotations

from collections import deque
from enum import StrEnum

import pytest

from pvc_core.errors import Conflict
from pvc_core.states import (
    COORDINATOR_TRANSITIONS,
    DAEMON_TRANSITIONS,
    DOMAIN_TRANSITIONS,
    VM_TRANSITIONS,
    CoordinatorState,
    DaemonState,
    DomainState,
    VMState,
    can_transition,
    check_transition,
)

TABLES = [
    (VMState, VM_TRANSITIONS, VMState.STOP),
    (DomainState, DOMAIN_TRANSITIONS, DomainState.READY),
    (DaemonState, DAEMON_TRANSITIONS, DaemonState.INIT),
    (CoordinatorState, COORDINATOR_TRANSITIONS, CoordinatorState.SECONDARY),
]


def reachable(table: dict, start: StrEnum) -> set:  # type: ignore[type-arg]
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in table[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("enum, table, start", TABLES)
def test_every_state_has_an_entry_of_its_own_kind(enum, table, start) -> None:  # type: ignore[no-untyped-def]
    assert set(table) == set(enum)
    for src, targets in table.items():
        assert all(isinstance(t, enum) for t in targets), src


@pytest.mark.parametrize("enum, table, start", TABLES)
def test_every_state_is_reachable_from_the_initial_one(enum, table, start) -> None:  # type: ignore[no-untyped-def]
    expected = set(enum) - ({CoordinatorState.CLIENT} if enum is CoordinatorState else set())
    assert reachable(table, start) == expected


@pytest.mark.parametrize("enum, table, start", TABLES[:3])
def test_no_state_is_a_dead_end(enum, table, start) -> None:  # type: ignore[no-untyped-def]
    for state in enum:
        assert start in reachable(table, state), f"{state} never returns to {start}"


def test_planned_primary_move_walks_relinquish_takeover_primary() -> None:
    c = CoordinatorState
    path = [c.PRIMARY, c.RELINQUISH, c.SECONDARY, c.TAKEOVER, c.PRIMARY]
    assert all(can_transition(a, b) for a, b in zip(path, path[1:], strict=False))
    assert not can_transition(c.SECONDARY, c.PRIMARY)  # never skips takeover


def test_vm_rules_that_matter() -> None:
    assert not can_transition(VMState.STOP, VMState.MIGRATE)  # only running VMs migrate
    assert not can_transition(VMState.STOP, VMState.SHUTDOWN)
    assert can_transition(VMState.SHUTDOWN, VMState.START)  # a shutdown can be aborted
    assert can_transition(VMState.MIGRATE_LIVE, VMState.START)  # failed live: stays, runs


def test_check_transition_raises_conflict_with_allowed_states() -> None:
    with pytest.raises(Conflict, match="web1 is stop: cannot change to migrate"):
        check_transition(VMState.STOP, VMState.MIGRATE, "web1")
    check_transition(VMState.START, VMState.MIGRATE)
