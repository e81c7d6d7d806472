"""What every driver, of any category, has in common.

A driver is a class registered under one of the entry-point groups in
:data:`GROUPS`. The factory (:mod:`pvc_core.drivers.factory`) finds it by
name, validates its configuration section against ``config_schema`` and
instantiates it with that section and a :class:`DriverContext`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pvc_core.clock import Clock, SystemClock

#: category -> entry-point group (DESIGN.md section 3).
GROUPS: dict[str, str] = {
    "hypervisor": "pvc.drivers.hypervisor",
    "network": "pvc.drivers.network",
    "storage": "pvc.drivers.storage",
    "dns": "pvc.drivers.dns",
    "fence": "pvc.drivers.fence",
}

#: Entry-point groups for CLI commands and API controllers (not drivers).
EXTENSION_GROUPS: dict[str, str] = {
    "cli": "pvc.cli",
    "api": "pvc.api.controllers",
}


@dataclass
class DriverContext:
    """What a driver may know about where it runs.

    :ivar node: the name of the node this driver serves.
    :ivar cluster: the cluster name.
    :ivar state_dir: a directory the driver may write to (may be None).
    :ivar clock: the injected clock.
    :ivar logger: a logger named for the driver.
    :ivar extras: free-form values a launcher passes (e.g. a local-cluster
        directory); drivers must treat missing keys as "not set".
    """

    node: str
    cluster: str = "pvc"
    state_dir: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("pvc.driver"))
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationResult:
    """The answer of :meth:`Driver.validate`: ``ok`` and a human message."""

    ok: bool
    message: str = ""


class Driver(abc.ABC):
    """Base class of every driver.

    Subclasses set ``category`` (a key of :data:`GROUPS`) and may set
    ``config_schema``, a JSON Schema (draft 2020-12) for their own
    configuration section; the loader validates the section before the
    driver is constructed, so ``__init__`` may trust its ``config``.
    """

    category: ClassVar[str] = ""
    #: JSON Schema of this driver's configuration section.
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        self.config = dict(config)
        self.context = context
        self.log = context.logger

    @abc.abstractmethod
    def validate(self) -> ValidationResult:
        """Check, quickly (< 5 s), that this driver can do its job here.

        Called once at daemon startup. Must not change anything. Returns a
        result rather than raising for an expected misconfiguration (an
        unreachable BMC, a missing binary) so the daemon can warn loudly;
        raises only for programming errors.
        """

    def close(self) -> None:
        """Release the driver's connections, threads and child processes.

        Called once the driver is no longer needed: at daemon shutdown, after
        a failed :meth:`validate`, after a fence attempt, and for every loaded
        driver when loading another one failed. It may therefore be called on
        a driver that was never used, and more than once: it is idempotent.
        Afterwards no other method may be called (a driver may raise
        ``DriverError`` if one is).

        Time bound: returns within a few seconds; anything that talks to a
        remote peer (closing a connection) is bounded by the driver's own
        timeout, and work still pending is abandoned rather than awaited.

        Raises nothing: callers call it from ``finally`` blocks, so a failure
        to close cleanly is logged (``self.log``) and swallowed. The default
        does nothing.
        """
        return None
