"""The states of nodes and VMs and the legal moves between them (DESIGN.md section 5).

One declarative module: the enums name the states, the ``*_TRANSITIONS``
tables say which state may follow which. Operations (the API, the CLI, the
daemons) call :func:`check_transition` before writing a new state, so an
impossible request ("migrate a stopped VM live") is a clear 409, not a
half-done action. ``tests/unit/test_states.py`` proves every state reachable
and every table entry well-formed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class DaemonState(StrEnum):
    """Life of a node daemon."""

    INIT = "init"
    RUN = "run"
    SHUTDOWN = "shutdown"
    STOP = "stop"
    DEAD = "dead"
    FENCING = "fencing"
    FENCED = "fenced"


class CoordinatorState(StrEnum):
    """A node's role in primary election (``client``: not a coordinator)."""

    CLIENT = "client"
    SECONDARY = "secondary"
    TAKEOVER = "takeover"
    PRIMARY = "primary"
    RELINQUISH = "relinquish"


class DomainState(StrEnum):
    """A node's availability for VMs (drain and undrain)."""

    READY = "ready"
    FLUSH = "flush"
    FLUSHING = "flushing"
    FLUSHED = "flushed"
    UNFLUSH = "unflush"
    UNFLUSHING = "unflushing"
    FENCE_FLUSH = "fence-flush"


class VMState(StrEnum):
    """The desired state of a VM, as an administrator or PVC set it."""

    START = "start"
    RESTART = "restart"
    SHUTDOWN = "shutdown"
    STOP = "stop"
    DISABLE = "disable"
    FAIL = "fail"
    MIGRATE = "migrate"
    MIGRATE_LIVE = "migrate-live"
    UNMIGRATE = "unmigrate"
    PROVISION = "provision"


S = VMState
#: Desired VM state -> the states it may be changed to (by a user or a daemon).
VM_TRANSITIONS: dict[VMState, frozenset[VMState]] = {
    S.STOP: frozenset({S.STOP, S.START, S.DISABLE, S.PROVISION}),
    S.START: frozenset({S.START, S.RESTART, S.SHUTDOWN, S.STOP, S.DISABLE, S.FAIL,
                        S.MIGRATE, S.MIGRATE_LIVE, S.UNMIGRATE}),
    S.RESTART: frozenset({S.START, S.SHUTDOWN, S.STOP, S.FAIL}),
    S.SHUTDOWN: frozenset({S.STOP, S.START, S.SHUTDOWN, S.DISABLE}),
    S.DISABLE: frozenset({S.DISABLE, S.START, S.STOP}),
    S.FAIL: frozenset({S.FAIL, S.START, S.STOP, S.DISABLE}),
    # A migration ends in start (done, or fallen back and still running) or stop/fail.
    S.MIGRATE: frozenset({S.START, S.STOP, S.FAIL}),
    S.MIGRATE_LIVE: frozenset({S.START, S.STOP, S.FAIL}),
    S.UNMIGRATE: frozenset({S.START, S.STOP, S.FAIL}),
    S.PROVISION: frozenset({S.STOP, S.START, S.FAIL}),
}
del S

#: States in which a VM is meant to be running (somewhere).
VM_RUNNING_STATES = frozenset({VMState.START, VMState.RESTART, VMState.MIGRATE,
                               VMState.MIGRATE_LIVE, VMState.UNMIGRATE})
#: States in which a migration is in progress.
VM_MIGRATING_STATES = frozenset({VMState.MIGRATE, VMState.MIGRATE_LIVE, VMState.UNMIGRATE})

D = DomainState
#: Node domain state -> the states that may follow (flush = drain, unflush = ready again).
DOMAIN_TRANSITIONS: dict[DomainState, frozenset[DomainState]] = {
    D.READY: frozenset({D.FLUSH, D.FENCE_FLUSH}),
    D.FLUSH: frozenset({D.FLUSHING, D.UNFLUSH, D.FENCE_FLUSH}),
    D.FLUSHING: frozenset({D.FLUSHED, D.FLUSH, D.UNFLUSH, D.FENCE_FLUSH}),
    D.FLUSHED: frozenset({D.UNFLUSH, D.FENCE_FLUSH}),
    D.UNFLUSH: frozenset({D.UNFLUSHING, D.READY, D.FLUSH, D.FENCE_FLUSH}),
    D.UNFLUSHING: frozenset({D.READY, D.FLUSH, D.FENCE_FLUSH}),
    D.FENCE_FLUSH: frozenset({D.FLUSHED}),
}
del D

DS = DaemonState
#: Node daemon state -> the states that may follow.
DAEMON_TRANSITIONS: dict[DaemonState, frozenset[DaemonState]] = {
    DS.INIT: frozenset({DS.RUN, DS.STOP, DS.DEAD}),
    DS.RUN: frozenset({DS.SHUTDOWN, DS.DEAD}),
    DS.SHUTDOWN: frozenset({DS.STOP, DS.DEAD}),
    DS.STOP: frozenset({DS.INIT}),
    DS.DEAD: frozenset({DS.INIT, DS.FENCING, DS.RUN}),
    DS.FENCING: frozenset({DS.FENCED, DS.DEAD}),
    DS.FENCED: frozenset({DS.INIT}),
}
del DS

C = CoordinatorState
#: Coordinator state -> the states that may follow (a planned move walks
#: relinquish -> takeover -> primary in lockstep).
COORDINATOR_TRANSITIONS: dict[CoordinatorState, frozenset[CoordinatorState]] = {
    C.CLIENT: frozenset(),
    C.SECONDARY: frozenset({C.TAKEOVER}),
    C.TAKEOVER: frozenset({C.PRIMARY, C.SECONDARY}),
    C.PRIMARY: frozenset({C.RELINQUISH, C.SECONDARY}),
    C.RELINQUISH: frozenset({C.SECONDARY}),
}
del C

_TABLES: dict[type[StrEnum], dict[Any, frozenset[Any]]] = {
    VMState: VM_TRANSITIONS, DomainState: DOMAIN_TRANSITIONS,
    DaemonState: DAEMON_TRANSITIONS, CoordinatorState: COORDINATOR_TRANSITIONS,
}


def can_transition(current: StrEnum, new: StrEnum) -> bool:
    """True if ``new`` may follow ``current`` (both of the same enum)."""
    return new in _TABLES[type(current)][current]


def check_transition(current: StrEnum, new: StrEnum, what: str = "") -> None:
    """Raise Conflict (409) when ``new`` may not follow ``current``."""
    from pvc_core.errors import Conflict

    if not can_transition(current, new):
        allowed = ", ".join(sorted(s.value for s in _TABLES[type(current)][current])) or "none"
        subject = f"{what} " if what else ""
        raise Conflict(f"{subject}is {current.value}: cannot change to {new.value} "
                       f"(allowed: {allowed})")


def parse(enum: type[StrEnum], value: object, field: str) -> StrEnum:
    """Return ``enum(value)`` or raise InvalidInput naming the allowed values."""
    from pvc_core.errors import InvalidInput

    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(e.value for e in enum)
    raise InvalidInput(f"must be one of: {allowed}, got {value!r}", field)
