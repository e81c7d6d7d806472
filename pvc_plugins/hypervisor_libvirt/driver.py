"""The ``libvirt`` hypervisor driver: any libvirt URI through libvirt-python.

Production nodes use ``qemu:///system``; the local cluster gives every node
its own ``test://PATH`` hypervisor (libvirt's in-process test driver, whose
state lives in the driver's single connection: ENVIRONMENT.md section 4).

Decisions:

- Graceful shutdown waits by polling ``isActive()`` with ``Event.wait``
  (``shutdown_poll_interval``): a bounded wait on a condition. Lifecycle
  events would need ``virEventRegisterDefaultImpl``, which is process-wide
  state, and several daemons may share a process. While a requested
  shutdown has not completed, the domain reports ``shutdown`` (as in the
  fake driver).
- Host memory: see :mod:`.stats`. Load: ``os.getloadavg()`` only for local
  URIs (no host part: ``qemu:///system``, ``qemu+unix://``, ``test://``),
  0.0 for a remote hypervisor.
- ``capabilities().live_migration`` is True for the QEMU driver only (by
  ``conn.getType()``, or the URI scheme before the first connection); the
  test driver cannot migrate (``migrate`` raises NotSupported) and the core
  falls back to shutdown-migration. ``console_log`` is True: the driver
  reports each domain's serial log file (``console_log_path``).
- No libvirt keepalive (it needs the process-wide event loop); every call has
  a hard timeout instead (:mod:`.connection`).
"""

from __future__ import annotations

import os
import threading
import time
import uuid as uuidlib
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import libvirt

from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.hypervisor import (
    ACTION_TIMEOUT_S,
    QUERY_TIMEOUT_S,
    Capabilities,
    DomainInfo,
    DomainState,
    DomainStats,
    HostStats,
    HypervisorDriver,
)
from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    DriverError,
    InvalidInput,
    NotFound,
    NotSupported,
    PVCError,
)
from pvc_plugins.hypervisor_libvirt import stats
from pvc_plugins.hypervisor_libvirt.connection import (
    LibvirtConnection,
    error_code,
    install_error_handler,
)
from pvc_plugins.hypervisor_libvirt.migration import (
    MigrationResult,
    migrate_to,
    split_target,
    with_address,
)
from pvc_plugins.hypervisor_libvirt.xml import console_path_of, parse_domain

#: Undefine flags every driver accepts; QEMU also gets KEEP_NVRAM and checkpoints.
_UNDEFINE_BASE = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
_UNDEFINE_QEMU = (_UNDEFINE_BASE | libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM
                  | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
_MIGRATABLE_TYPES = frozenset({"QEMU"})
#: validate() answers within this many seconds (HypervisorDriver.validate).
VALIDATE_TIMEOUT_S = 5.0


def _driver_error(fn: Any) -> Any:
    """Run ``fn()``; a Conflict from libvirt (operation invalid) becomes DriverError.

    start, shutdown and destroy promise NotFound, DriverError or DriverTimeout.
    """
    try:
        return fn()
    except Conflict as exc:
        raise DriverError(exc.message) from None


def _canonical(uuid: str) -> str:
    try:
        return str(uuidlib.UUID(uuid))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"no domain with UUID {uuid!r}: not a UUID") from None


class LibvirtHypervisorDriver(HypervisorDriver):
    """Hypervisor driver for libvirt (``hypervisor.driver: libvirt``).

    Config: ``uri`` (required: ``qemu:///system``, ``test:///abs/node.xml``,
    ...); ``migration_uri``: how OTHER nodes' drivers reach this node's
    libvirtd (``qemu+tcp://10.0.0.2/system``,
    ``qemu+unix:///system?socket=/path``); ``migration_address``: the
    ``tcp://HOST[:PORT]`` where incoming migration streams reach this node;
    ``connect_timeout`` (s, default 5); ``shutdown_poll_interval`` (s,
    default 0.25).
    """

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "uri": {"type": "string", "minLength": 1},
            "migration_uri": {"type": "string", "minLength": 1},
            "migration_address": {"type": "string", "pattern": "^tcp://[^/?#]+$"},
            "connect_timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60,
                                "default": 5},
            "shutdown_poll_interval": {"type": "number", "exclusiveMinimum": 0,
                                       "maximum": 5, "default": 0.25},
        },
        "required": ["uri"],
        "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        super().__init__(config, context)
        install_error_handler()
        self.uri: str = self.config["uri"]
        self.connect_timeout = float(self.config.get("connect_timeout", 5.0))
        self.poll_interval = float(self.config.get("shutdown_poll_interval", 0.25))
        self._migration_uri: str | None = self.config.get("migration_uri")
        self._migration_address: str | None = self.config.get("migration_address")
        self._lv = LibvirtConnection(self.uri, connect_timeout=self.connect_timeout,
                                     logger=self.log)
        self._define_lock = threading.Lock()  # check-then-act of define/undefine
        self._state_lock = threading.Lock()  # guards the two fields below
        self._shutting_down: set[str] = set()
        self._last_migration: MigrationResult | None = None
        self._closed = threading.Event()

    # -- helpers ------------------------------------------------------------

    def _hypervisor_type(self) -> str:
        known = self._lv.hypervisor_type
        if known:
            return known
        return urlsplit(self.uri).scheme.split("+", 1)[0].upper()

    def _lookup(self, conn: Any, uuid: str) -> Any:
        try:
            return conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise NotFound(f"no domain with UUID {uuid} on {self.context.node}") from None
            raise

    def _info(self, dom: Any) -> DomainInfo:
        state, max_kib, _mem, vcpus, _cpu = dom.info()
        uuid = dom.UUIDString()
        mapped = stats.STATES.get(state, DomainState.OTHER)
        with self._state_lock:
            if mapped is DomainState.RUNNING and uuid in self._shutting_down:
                mapped = DomainState.SHUTDOWN
            elif not mapped.active:
                self._shutting_down.discard(uuid)
        return DomainInfo(uuid=uuid, name=dom.name(), state=mapped,
                          memory_mib=stats.kib_to_mib(max_kib), vcpus=int(vcpus))

    def _forget_shutdown(self, uuid: str) -> None:
        with self._state_lock:
            self._shutting_down.discard(uuid)

    def _on_domain(self, what: str, uuid: str, fn: Any, timeout: float) -> Any:
        """``fn(dom)`` for the domain ``uuid``, under the hard timeout."""
        canonical = _canonical(uuid)
        return self._lv.call(f"{what} {canonical}",
                             lambda conn: fn(self._lookup(conn, canonical)), timeout)

    # -- required -------------------------------------------------------------

    def validate(self) -> ValidationResult:
        """Connect and report type and version, within 5 s in all."""
        def probe() -> tuple[int, str]:
            return self._lv.call(
                "validate", lambda c: (c.getLibVersion(), c.getType()), VALIDATE_TIMEOUT_S)

        try:
            version, htype = self._lv.run("validate", probe, VALIDATE_TIMEOUT_S)
        except PVCError as exc:
            return ValidationResult(False, f"libvirt at {self.uri} is not usable: {exc}")
        major, minor, micro = version // 1_000_000, version // 1000 % 1000, version % 1000
        text = f"libvirt {major}.{minor}.{micro}, {htype} driver at {self.uri}"
        if htype in _MIGRATABLE_TYPES and not self._migration_uri:
            text += "; migration_uri is not set: other nodes cannot live-migrate VMs here"
        return ValidationResult(True, text)

    def capabilities(self) -> Capabilities:
        """Live migration for QEMU; console logs always (per-domain path may be None)."""
        return Capabilities(live_migration=self._hypervisor_type() in _MIGRATABLE_TYPES,
                            console_log=True)

    def host_stats(self) -> HostStats:
        """Memory and CPUs from libvirt; load from this host for local URIs only."""
        return self._lv.call("host_stats", lambda c: stats.host_stats(c, self._load1()),
                            QUERY_TIMEOUT_S)

    def _load1(self) -> float:
        if urlsplit(self.uri).hostname:
            return 0.0  # a remote hypervisor: this host's load says nothing about it
        return os.getloadavg()[0]

    def list_domains(self) -> list[DomainInfo]:
        """Every defined domain (a domain that vanishes meanwhile is skipped)."""
        def fn(conn: Any) -> list[DomainInfo]:
            out = []
            for dom in conn.listAllDomains(0):
                try:
                    out.append(self._info(dom))
                except libvirt.libvirtError as exc:
                    if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
            return sorted(out, key=lambda i: i.name)
        return self._lv.call("list_domains", fn, QUERY_TIMEOUT_S)

    def domain_info(self, uuid: str) -> DomainInfo:
        """Identity and state of one domain; NotFound when unknown."""
        return self._on_domain("domain_info", uuid, self._info, QUERY_TIMEOUT_S)  # type: ignore[no-any-return]

    def define(self, xml: str) -> DomainInfo:
        """Define or redefine; AlreadyExists when another UUID (or none) has the name."""
        parsed = parse_domain(xml)

        def fn(conn: Any) -> DomainInfo:
            try:
                other = conn.lookupByName(parsed.name)
            except libvirt.libvirtError as exc:
                if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                other = None
            if other is not None and other.UUIDString() != parsed.uuid:
                raise AlreadyExists(f"domain {parsed.name!r} already exists with UUID "
                                    f"{other.UUIDString()} on {self.context.node}")
            return self._info(conn.defineXML(xml))

        with self._define_lock:
            return self._lv.call(f"define {parsed.name}", fn, ACTION_TIMEOUT_S, xml=True)

    def undefine(self, uuid: str) -> None:
        """Remove an inactive domain's definition; Conflict while it is active."""
        flags = _UNDEFINE_QEMU if self._hypervisor_type() == "QEMU" else _UNDEFINE_BASE

        def fn(dom: Any) -> None:
            if dom.isActive():
                raise Conflict(f"domain {dom.name()} is active on {self.context.node}: "
                               "stop it first")
            dom.undefineFlags(flags)

        with self._define_lock:
            self._on_domain("undefine", uuid, fn, ACTION_TIMEOUT_S)
        self._forget_shutdown(_canonical(uuid))

    def start(self, uuid: str) -> None:
        """Start a defined domain; an active one is left alone."""
        def fn(dom: Any) -> None:
            if dom.isActive():
                return
            try:
                dom.create()
            except libvirt.libvirtError:
                if not dom.isActive():
                    raise

        _driver_error(lambda: self._on_domain("start", uuid, fn, ACTION_TIMEOUT_S))
        self._forget_shutdown(_canonical(uuid))

    def shutdown(self, uuid: str, timeout: float) -> bool:
        """Ask the guest to stop; poll ``isActive()`` until ``timeout``."""
        canonical = _canonical(uuid)
        # Real time, not the injected clock: the wait below is a real Event wait.
        deadline = time.monotonic() + max(0.0, timeout)

        def request(dom: Any) -> bool:
            if not dom.isActive():
                return False
            try:
                dom.shutdown()
            except libvirt.libvirtError as exc:
                if dom.isActive() or error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                return False
            return True

        if _driver_error(lambda: self._on_domain("shutdown", canonical, request,
                                                  ACTION_TIMEOUT_S)):
            with self._state_lock:
                self._shutting_down.add(canonical)
        while True:
            try:
                active = self._on_domain("isActive", canonical, lambda d: d.isActive(),
                                         QUERY_TIMEOUT_S)
            except NotFound:
                active = False  # a transient domain that stopped is gone
            if not active:
                self._forget_shutdown(canonical)
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._closed.wait(min(self.poll_interval, remaining)):
                raise DriverError(f"shutdown of {canonical}: the driver was closed")

    def destroy(self, uuid: str) -> None:
        """Power the domain off at once; idempotent."""
        def fn(dom: Any) -> None:
            if not dom.isActive():
                return
            try:
                dom.destroy()
            except libvirt.libvirtError:
                if dom.isActive():
                    raise

        _driver_error(lambda: self._on_domain("destroy", uuid, fn, ACTION_TIMEOUT_S))
        self._forget_shutdown(_canonical(uuid))

    def domain_xml(self, uuid: str) -> str:
        """The persistent definition (``VIR_DOMAIN_XML_INACTIVE``), as defined."""
        return self._on_domain(  # type: ignore[no-any-return]
            "domain_xml", uuid, lambda d: d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
            QUERY_TIMEOUT_S)

    # -- optional ---------------------------------------------------------------

    def domain_stats(self, uuid: str) -> DomainStats:
        """Counters of a running domain; other states get memory and vCPUs only."""
        return self._on_domain(  # type: ignore[no-any-return]
            "domain_stats", uuid, lambda d: stats.domain_stats(d, self._info(d)),
            QUERY_TIMEOUT_S)

    def migrate(self, uuid: str, target_uri: str, *, max_downtime_ms: int, timeout: float,
                migration_address: str | None = None) -> None:
        """Live-migrate with ``migrate3`` (LIVE | PERSIST_DEST | UNDEFINE_SOURCE).

        ``max_downtime_ms`` (> 0) is set with ``migrateSetMaxDowntime`` before
        the migration starts (0 keeps QEMU's default). ``migration_address``
        (driver-only keyword) overrides the data address carried by
        ``target_uri`` (see :mod:`.migration`). After ``timeout`` seconds the
        job is aborted and DriverTimeout raised; the domain stays here.
        NotSupported for hypervisors that cannot migrate (the test driver).
        """
        if not self.capabilities().live_migration:
            raise NotSupported(f"the {self._hypervisor_type()} hypervisor at {self.uri} "
                               "cannot live-migrate; use shutdown-migration")
        if max_downtime_ms < 0 or timeout <= 0:
            raise InvalidInput(f"migrate: max_downtime_ms={max_downtime_ms} and "
                               f"timeout={timeout} must be >= 0 and > 0")
        canonical = _canonical(uuid)
        dest_uri, address = split_target(target_uri)
        address = migration_address or address
        if dest_uri == self.uri:
            raise InvalidInput(f"migrate {canonical}: {dest_uri} is this node")
        dom = self._on_domain("migrate", canonical, lambda d: d, QUERY_TIMEOUT_S)
        state = self._on_domain("migrate", canonical, self._info, QUERY_TIMEOUT_S).state
        if state not in (DomainState.RUNNING, DomainState.PAUSED):
            raise Conflict(f"migrate {canonical}: the domain is {state}, not running")
        result = migrate_to(self._lv, dom, dest_uri, address, max_downtime_ms=max_downtime_ms,
                            timeout=timeout, connect_timeout=self.connect_timeout, log=self.log)
        self._forget_shutdown(canonical)
        with self._state_lock:
            self._last_migration = result

    @property
    def last_migration(self) -> MigrationResult | None:
        """Figures of the last successful outgoing migration (None before)."""
        with self._state_lock:
            return self._last_migration

    def migration_uri(self) -> str | None:
        """``migration_uri`` (with ``migration_address`` attached); None if not migratable."""
        if self._hypervisor_type() not in _MIGRATABLE_TYPES or not self._migration_uri:
            return None
        return with_address(self._migration_uri, self._migration_address)

    def console_log_path(self, uuid: str) -> str | None:
        """The serial console log file in the domain's (live) XML, or None."""
        return self._on_domain(  # type: ignore[no-any-return]
            "console_log_path", uuid, lambda d: console_path_of(d.XMLDesc(0)),
            QUERY_TIMEOUT_S)

    def close(self) -> None:
        """Close the connection and wake waiting shutdowns; idempotent."""
        self._closed.set()
        self._lv.close()
