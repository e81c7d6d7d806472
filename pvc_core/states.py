"""The state names of nodes and VMs (DESIGN.md section 5).

Transition rules are added with the node daemon; this module only names the
states so that the store, the API and the CLI speak one vocabulary.
"""

from __future__ import annotations

from enum import StrEnum


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
