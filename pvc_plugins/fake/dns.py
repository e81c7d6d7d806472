"""An in-memory DNS driver: an aggregator flag and a dict of records."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.dns import DnsDriver, DnsRecord
from pvc_core.errors import InvalidInput
from pvc_plugins.fake._recorder import CallRecorder

#: Record types the fake accepts.
RECORD_TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"})


class FakeDnsDriver(CallRecorder, DnsDriver):
    """The ``fake`` DNS driver."""

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {}, "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        CallRecorder.__init__(self)
        DnsDriver.__init__(self, config, context)
        self._lock = threading.Lock()
        self._running = False
        self._records: dict[tuple[str, str, str], DnsRecord] = {}

    def validate(self) -> ValidationResult:
        self._record("validate")
        return ValidationResult(True, "fake DNS driver")

    def start_aggregator(self) -> None:
        self._record("start_aggregator")
        with self._lock:
            self._running = True

    def stop_aggregator(self) -> None:
        self._record("stop_aggregator")
        with self._lock:
            self._running = False

    def set_record(self, zone: str, name: str, rtype: str, content: str,
                   ttl: int = 300) -> None:
        self._record("set_record", zone, name, rtype, content, ttl)
        if rtype.upper() not in RECORD_TYPES:
            raise InvalidInput(f"unknown DNS record type {rtype!r}")
        if ttl < 0:
            raise InvalidInput(f"TTL must not be negative, not {ttl}")
        record = DnsRecord(zone, name, rtype.upper(), content, ttl)
        with self._lock:
            self._records[(zone, name, record.rtype)] = record

    def remove_record(self, zone: str, name: str, rtype: str) -> None:
        self._record("remove_record", zone, name, rtype)
        with self._lock:
            self._records.pop((zone, name, rtype.upper()), None)

    def list_records(self, zone: str) -> list[DnsRecord]:
        self._record("list_records", zone)
        with self._lock:
            return [r for key, r in sorted(self._records.items()) if key[0] == zone]

    @property
    def aggregator_running(self) -> bool:
        """Whether the aggregator is started (test helper)."""
        with self._lock:
            return self._running
