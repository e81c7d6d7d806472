"""The fence driver interface: prove that a node is powered off.

Each node has an ordered fence chain (``fencing.chain: [...]``, entry-point
group ``pvc.drivers.fence``). When the primary coordinator fences a node it
builds one driver instance per chain entry **for the target node**: the
instance's ``config`` is that chain entry's options and its
``context.node`` is the node to be fenced, not the node running the code.
The chain is tried in order until one driver proves the node off:
:meth:`FenceDriver.power_off`, then :meth:`FenceDriver.power_status` reads
:attr:`PowerState.OFF`.

Each node also builds its own chain for itself at startup and calls
:meth:`FenceDriver.validate`, warning loudly when it cannot reach its BMC.

Timeouts are explicit arguments; a driver must return or raise
:class:`~pvc_core.errors.DriverTimeout` within them, whatever the BMC does.
"""

from __future__ import annotations

import abc
import enum
from typing import ClassVar

from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.errors import NotSupported


class PowerState(enum.StrEnum):
    """The power state a fence device reports for its node."""

    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


class FenceDriver(Driver):
    """Base class of fence drivers (``pvc.drivers.fence``).

    An instance serves exactly one target node, ``self.context.node``; it
    is built from one fence-chain entry (``self.config``).
    """

    category: ClassVar[str] = "fence"

    # -- required ---------------------------------------------------------

    @abc.abstractmethod
    def validate(self) -> ValidationResult:
        """Check, within 5 s, that the target's fence device is reachable.

        Must not change anything, in particular never the power state.
        Returns ``ok=False`` (rather than raising) when the device cannot
        be reached or refuses the credentials.
        """

    @abc.abstractmethod
    def power_off(self, timeout: float) -> None:
        """Cut the target node's power at once (no graceful shutdown).

        Returns when the device accepted the command; it does not prove the
        node is off (the caller reads :meth:`power_status` for that).
        Powering off a node that is already off is not an error. Raises
        DriverError when the device refused or failed, DriverTimeout after
        ``timeout`` seconds.
        """

    @abc.abstractmethod
    def power_status(self, timeout: float) -> PowerState:
        """Read the target node's power state from its fence device.

        Returns UNKNOWN when the device answers but cannot tell. Raises
        DriverError when the device cannot be queried, DriverTimeout after
        ``timeout`` seconds.
        """

    # -- optional ---------------------------------------------------------

    def power_on(self, timeout: float) -> None:
        """Power the target node on. Raises DriverError, DriverTimeout.

        Default: raises NotSupported.
        """
        raise NotSupported(f"{type(self).__name__} cannot power nodes on")
