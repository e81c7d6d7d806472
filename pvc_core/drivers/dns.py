"""The DNS driver interface: the cluster's DNS aggregator and its records.

Zero or one DNS driver serves the cluster (``dns.driver``, entry-point group
``pvc.drivers.dns``). The aggregator is a floating service: the core starts
it on the primary coordinator when it takes over and stops it when it
relinquishes, through :meth:`DnsDriver.start_aggregator` and
:meth:`DnsDriver.stop_aggregator`.

Timeouts: every method returns or raises within the budget its docstring
states, raising :class:`~pvc_core.errors.DriverTimeout` when exceeded.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.errors import NotSupported

#: Budget of starting or stopping the aggregator, in seconds.
SERVICE_TIMEOUT_S = 60.0
#: Budget of one record change, in seconds.
RECORD_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DnsRecord:
    """One resource record set entry."""

    zone: str
    name: str
    rtype: str
    content: str
    ttl: int = 300


class DnsDriver(Driver):
    """Base class of DNS drivers (``pvc.drivers.dns``)."""

    category: ClassVar[str] = "dns"

    # -- required ---------------------------------------------------------

    @abc.abstractmethod
    def validate(self) -> ValidationResult:
        """Check, within 5 s, that the configured services can be managed.

        Must not change anything. Returns ``ok=False`` with a message rather
        than raising for a misconfiguration; raises only for programming errors.
        """

    @abc.abstractmethod
    def start_aggregator(self) -> None:
        """Start the aggregator on this node; idempotent.

        Called when this node becomes primary. Timeout:
        :data:`SERVICE_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def stop_aggregator(self) -> None:
        """Stop the aggregator on this node; idempotent.

        Called when this node relinquishes or loses primary. Timeout:
        :data:`SERVICE_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def set_record(self, zone: str, name: str, rtype: str, content: str,
                   ttl: int = 300) -> None:
        """Create or replace the record ``(zone, name, rtype)``; idempotent.

        Timeout: :data:`RECORD_TIMEOUT_S`. Raises InvalidInput for a bad
        type or content, DriverError, DriverTimeout.
        """

    @abc.abstractmethod
    def remove_record(self, zone: str, name: str, rtype: str) -> None:
        """Remove the record ``(zone, name, rtype)``; absent is ignored.

        Timeout: :data:`RECORD_TIMEOUT_S`. Raises DriverError, DriverTimeout.
        """

    # -- optional ---------------------------------------------------------

    def list_records(self, zone: str) -> list[DnsRecord]:
        """The records of ``zone``, sorted by (name, rtype).

        Timeout: :data:`RECORD_TIMEOUT_S`. Default: raises NotSupported.
        """
        raise NotSupported(f"{type(self).__name__} cannot list records")
