"""An in-memory hypervisor: domains live in the driver instance.

Each instance is an independent hypervisor, so a test or the simulator can
run many fake nodes in one process. Fault injection for tests:
:meth:`FakeHypervisorDriver.crash`, :meth:`~FakeHypervisorDriver.pause`,
``hang_shutdown`` (UUIDs whose graceful shutdown never completes until
:meth:`~FakeHypervisorDriver.finish_shutdown` or ``destroy``), ``fail_start``
(UUIDs whose start raises DriverError).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pvc_core.domainxml import parse_domain_xml
from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.hypervisor import (
    Capabilities,
    DomainInfo,
    DomainState,
    HostStats,
    HypervisorDriver,
)
from pvc_core.errors import AlreadyExists, Conflict, DriverError, NotFound
from pvc_plugins.fake._recorder import CallRecorder


@dataclass
class _Domain:
    uuid: str
    name: str
    memory_mib: int
    vcpus: int
    xml: str
    state: DomainState = DomainState.SHUTOFF

    def info(self) -> DomainInfo:
        return DomainInfo(uuid=self.uuid, name=self.name, state=self.state,
                          memory_mib=self.memory_mib, vcpus=self.vcpus)


class FakeHypervisorDriver(CallRecorder, HypervisorDriver):
    """The ``fake`` hypervisor driver.

    Config: ``memory_mib`` (host memory, default 32768), ``cpus`` (default
    8), ``load1`` (reported load, default 0.0).
    """

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "memory_mib": {"type": "integer", "minimum": 1, "default": 32768},
            "cpus": {"type": "integer", "minimum": 1, "default": 8},
            "load1": {"type": "number", "minimum": 0, "default": 0.0},
        },
        "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        CallRecorder.__init__(self)
        HypervisorDriver.__init__(self, config, context)
        self.memory_mib = int(self.config.get("memory_mib", 32768))
        self.cpus = int(self.config.get("cpus", 8))
        self.load1 = float(self.config.get("load1", 0.0))
        self._cond = threading.Condition()
        self._domains: dict[str, _Domain] = {}
        #: UUIDs whose graceful shutdown hangs (tests add to it).
        self.hang_shutdown: set[str] = set()
        #: UUIDs whose start fails with DriverError (tests add to it).
        self.fail_start: set[str] = set()

    # -- required ---------------------------------------------------------

    def validate(self) -> ValidationResult:
        self._record("validate")
        return ValidationResult(True, f"fake hypervisor for {self.context.node}")

    def capabilities(self) -> Capabilities:
        return Capabilities(live_migration=False, console_log=False)

    def host_stats(self) -> HostStats:
        self._record("host_stats")
        with self._cond:
            used = sum(d.memory_mib for d in self._domains.values() if d.state.active)
        return HostStats(memory_total_mib=self.memory_mib, memory_used_mib=used,
                         memory_free_mib=max(0, self.memory_mib - used),
                         cpu_count=self.cpus, load1=self.load1)

    def list_domains(self) -> list[DomainInfo]:
        self._record("list_domains")
        with self._cond:
            return sorted((d.info() for d in self._domains.values()), key=lambda i: i.name)

    def domain_info(self, uuid: str) -> DomainInfo:
        self._record("domain_info", uuid)
        with self._cond:
            return self._get(uuid).info()

    def define(self, xml: str) -> DomainInfo:
        self._record("define", xml)
        parsed = parse_domain_xml(xml)
        with self._cond:
            for other in self._domains.values():
                if other.name == parsed.name and other.uuid != parsed.uuid:
                    raise AlreadyExists(
                        f"domain {parsed.name!r} already exists with UUID {other.uuid}")
            old = self._domains.get(parsed.uuid)
            dom = _Domain(uuid=parsed.uuid, name=parsed.name, memory_mib=parsed.memory_mib,
                          vcpus=parsed.vcpus, xml=parsed.xml,
                          state=old.state if old else DomainState.SHUTOFF)
            self._domains[dom.uuid] = dom
            return dom.info()

    def undefine(self, uuid: str) -> None:
        self._record("undefine", uuid)
        with self._cond:
            dom = self._get(uuid)
            if dom.state.active:
                raise Conflict(f"domain {dom.name} is {dom.state}: stop it first")
            del self._domains[uuid]

    def start(self, uuid: str) -> None:
        self._record("start", uuid)
        with self._cond:
            dom = self._get(uuid)
            if dom.state.active:
                return
            if uuid in self.fail_start:
                raise DriverError(f"domain {dom.name} failed to start (injected fault)")
            used = sum(d.memory_mib for d in self._domains.values() if d.state.active)
            if used + dom.memory_mib > self.memory_mib:
                raise DriverError(
                    f"domain {dom.name} needs {dom.memory_mib} MiB; "
                    f"{self.memory_mib - used} MiB free on {self.context.node}")
            self._set_state(dom, DomainState.RUNNING)

    def shutdown(self, uuid: str, timeout: float) -> bool:
        self._record("shutdown", uuid, timeout)
        with self._cond:
            dom = self._get(uuid)
            if not dom.state.active:
                return True
            if uuid not in self.hang_shutdown:
                self._set_state(dom, DomainState.SHUTOFF)
                return True
            self._set_state(dom, DomainState.SHUTDOWN)
            self._cond.wait_for(lambda: dom.state is not DomainState.SHUTDOWN, timeout)
            return not dom.state.active

    def destroy(self, uuid: str) -> None:
        self._record("destroy", uuid)
        with self._cond:
            dom = self._get(uuid)
            if dom.state is not DomainState.SHUTOFF:
                self._set_state(dom, DomainState.SHUTOFF)

    def domain_xml(self, uuid: str) -> str:
        self._record("domain_xml", uuid)
        with self._cond:
            return self._get(uuid).xml

    # -- fault injection (not part of the interface) ------------------------

    def crash(self, uuid: str) -> None:
        """The guest crashed: its state becomes ``crashed``."""
        with self._cond:
            self._set_state(self._get(uuid), DomainState.CRASHED)

    def pause(self, uuid: str) -> None:
        """Pause a running domain."""
        with self._cond:
            dom = self._get(uuid)
            if dom.state is not DomainState.RUNNING:
                raise Conflict(f"domain {dom.name} is {dom.state}, not running")
            self._set_state(dom, DomainState.PAUSED)

    def finish_shutdown(self, uuid: str) -> None:
        """Let a hanging graceful shutdown complete (the guest finally stops)."""
        with self._cond:
            self.hang_shutdown.discard(uuid)
            dom = self._get(uuid)
            if dom.state is DomainState.SHUTDOWN:
                self._set_state(dom, DomainState.SHUTOFF)

    def wait_for_state(self, uuid: str, state: DomainState, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a domain to reach ``state``."""
        with self._cond:
            dom = self._get(uuid)
            return self._cond.wait_for(lambda: dom.state is state, timeout)

    # -- internals --------------------------------------------------------

    def _get(self, uuid: str) -> _Domain:
        try:
            return self._domains[uuid]
        except KeyError:
            raise NotFound(f"no domain with UUID {uuid} on {self.context.node}") from None

    def _set_state(self, dom: _Domain, state: DomainState) -> None:
        """Change a domain's state; the caller holds ``self._cond``."""
        dom.state = state
        self._cond.notify_all()
