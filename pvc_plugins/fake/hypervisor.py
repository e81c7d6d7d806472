"""An in-memory hypervisor: domains live in the driver instance.

Each instance is an independent hypervisor, so a test or the simulator can
run many fake nodes in one process. Fault injection for tests:
:meth:`FakeHypervisorDriver.crash`, :meth:`~FakeHypervisorDriver.pause`,
``hang_shutdown`` (UUIDs whose graceful shutdown never completes until
:meth:`~FakeHypervisorDriver.finish_shutdown` or ``destroy``), ``fail_start``
(UUIDs whose start raises DriverError).

**State file.** With the optional ``state_file`` option (an absolute path,
or one relative to the node's ``state_dir``) the driver also writes its
domains and their states to that file as JSON, atomically (a temporary file
in the same directory, then a rename), when it starts and after every
change, so a test in another process can read the hypervisor directly (the
chaos tests' invariant sampler does, every 100 ms)::

    {"node": "node2", "pid": 4242, "pid_start": 123456, "seq": 17,
     "domains": {"<uuid>": {"name": "vm1", "state": "running", "active": true}}}

``pid`` and ``pid_start`` (the start time from ``/proc/self/stat``, in
clock ticks since boot; null where unknown) identify the writing process:
the guests of this in-memory hypervisor exist only while that process does
(SIGKILL is a power loss), so a reader counts a domain as running only
while that process exists. ``seq`` grows with every write. The file never
under-reports: a domain becoming active is written *before* its state
changes in memory, one becoming inactive *after*. A write that fails is
logged and the driver goes on (the file is for observers, never the
hypervisor's own truth).

**Control socket.** With the optional ``control_socket`` option (a path
like ``state_file``'s) the driver also serves the fault injection above,
and defining or starting a domain by hand, on a Unix socket, so a test can
drive the hypervisor of a daemon running in another process: see
:mod:`pvc_plugins.fake.control` and its client
:class:`~pvc_plugins.fake.control.FakeHypervisorControl`.

**Live migration.** Off by default (``capabilities().live_migration`` is
False, ``migration_uri()`` None, ``migrate`` raises NotSupported). With
``live_migration: true`` the driver registers itself as ``fake://NODE`` in
the :class:`~pvc_plugins.fake.livemigration.FakeMigrationRegistry` found in
``context.extras["fake_hypervisors"]`` (a private one without it, so
migrations to other nodes then fail) and ``migrate`` moves a running or
paused domain, at once, to the driver registered at the target URI: same
UUID, XML, state and boot (:meth:`FakeHypervisorDriver.boot_id`), defined
there and undefined here, as libvirt's ``PERSIST_DEST | UNDEFINE_SOURCE``.
Only fake hypervisors in the same process can migrate to each other. The
target's state file is written before the source's. Fault injection:
``fail_migrate`` (UUIDs, or :data:`ALL_DOMAINS`, whose migration raises
DriverError and leaves the domain running here).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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
from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    DriverError,
    InvalidInput,
    NotFound,
    NotSupported,
)
from pvc_plugins.fake._recorder import CallRecorder
from pvc_plugins.fake.control import ControlServer
from pvc_plugins.fake.livemigration import (
    MIGRATION_REGISTRY_KEY,
    FakeMigrationRegistry,
    migration_uri,
)

#: In ``fail_migrate``: every live migration from this hypervisor fails.
ALL_DOMAINS = "*"


@dataclass
class _Domain:
    uuid: str
    name: str
    memory_mib: int
    vcpus: int
    xml: str
    state: DomainState = DomainState.SHUTOFF
    #: A new value each time the guest boots (None while it never ran); a live
    #: migration carries it over, a restart or a shutdown migration does not.
    boot_id: str | None = None

    def info(self) -> DomainInfo:
        return DomainInfo(uuid=self.uuid, name=self.name, state=self.state,
                          memory_mib=self.memory_mib, vcpus=self.vcpus)


class FakeHypervisorDriver(CallRecorder, HypervisorDriver):
    """The ``fake`` hypervisor driver.

    Config: ``memory_mib`` (host memory, default 32768), ``cpus`` (default
    8), ``load1`` (reported load, default 0.0), ``state_file`` (optional:
    where to publish the domains, see the module docstring),
    ``control_socket`` (optional: where to serve the fault injection to
    other processes, see the module docstring), ``live_migration``
    (default false: live migration between the fake hypervisors of one
    process, see the module docstring).
    """

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "memory_mib": {"type": "integer", "minimum": 1, "default": 32768},
            "cpus": {"type": "integer", "minimum": 1, "default": 8},
            "load1": {"type": "number", "minimum": 0, "default": 0.0},
            "state_file": {"type": "string", "minLength": 1},
            "control_socket": {"type": "string", "minLength": 1},
            "live_migration": {"type": "boolean"},  # no default: off, and not filled in
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
        #: UUIDs (or ALL_DOMAINS) whose live migration fails with DriverError.
        self.fail_migrate: set[str] = set()
        self.state_file = _state_path(self.config.get("state_file"), context.state_dir)
        self._state_seq = 0
        self._pid = (os.getpid(), _process_start(os.getpid()))
        with self._cond:
            self._publish()  # a new process: its hypervisor starts empty
        self._uri = migration_uri(context.node)
        shared = context.extras.get(MIGRATION_REGISTRY_KEY)
        #: Where this driver is registered for live migration (None: it cannot migrate).
        self.registry: FakeMigrationRegistry[FakeHypervisorDriver] | None = None
        self._private_registry = not isinstance(shared, FakeMigrationRegistry)
        if self.config.get("live_migration", False):
            registry: FakeMigrationRegistry[FakeHypervisorDriver] = (
                shared if isinstance(shared, FakeMigrationRegistry)
                else FakeMigrationRegistry())
            registry.register(self._uri, self)  # AlreadyExists: another driver is there
            self.registry = registry
        self._control: ControlServer | None = None
        control = _state_path(self.config.get("control_socket"), context.state_dir)
        if control is not None:
            self._control = ControlServer(self, control)

    # -- required ---------------------------------------------------------

    def validate(self) -> ValidationResult:
        self._record("validate")
        text = f"fake hypervisor for {self.context.node}"
        if self.registry is not None:
            text += f"; live migration at {self._uri}"
            if self._private_registry:
                text += (f" (no shared registry in context.extras[{MIGRATION_REGISTRY_KEY!r}]:"
                         " migrations to other nodes will fail)")
        return ValidationResult(True, text)

    def capabilities(self) -> Capabilities:
        return Capabilities(live_migration=self.registry is not None, console_log=False)

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
                          state=old.state if old else DomainState.SHUTOFF,
                          boot_id=old.boot_id if old else None)
            self._domains[dom.uuid] = dom
            self._publish()
            return dom.info()

    def undefine(self, uuid: str) -> None:
        self._record("undefine", uuid)
        with self._cond:
            dom = self._get(uuid)
            if dom.state.active:
                raise Conflict(f"domain {dom.name} is {dom.state}: stop it first")
            del self._domains[uuid]
            self._publish()

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
            dom.boot_id = uuidlib.uuid4().hex
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

    def migrate(self, uuid: str, target_uri: str, *, max_downtime_ms: int,
                timeout: float) -> None:
        """Move a running (or paused) domain to the fake hypervisor at ``target_uri``.

        At once and atomically: the domain is defined and active there, with
        the same UUID, XML, state and boot, and no longer defined here. Raises
        NotSupported without ``live_migration``, InvalidInput for bad limits
        or this node's own URI, NotFound, Conflict when the domain is not
        running or paused, DriverError when no fake hypervisor answers at
        ``target_uri``, when the target cannot take the domain (no room, the
        name taken, already active there), or for an injected fault
        (``fail_migrate``); on every error the domain stays here untouched.
        """
        self._record("migrate", uuid, target_uri, max_downtime_ms, timeout)
        if self.registry is None:
            raise NotSupported(f"the fake hypervisor of {self.context.node} has no live "
                               "migration (config live_migration)")
        if max_downtime_ms < 0 or timeout <= 0:
            raise InvalidInput(f"migrate: max_downtime_ms={max_downtime_ms} and "
                               f"timeout={timeout} must be >= 0 and > 0")
        if target_uri == self._uri:
            raise InvalidInput(f"migrate {uuid}: {target_uri} is this node")
        with self.registry.transfer(target_uri) as target, self._cond, target._cond:
            dom = self._get(uuid)
            if dom.state not in (DomainState.RUNNING, DomainState.PAUSED):
                raise Conflict(f"migrate {dom.name}: the domain is {dom.state}, not running")
            if uuid in self.fail_migrate or ALL_DOMAINS in self.fail_migrate:
                raise DriverError(f"live migration of {dom.name} to {target_uri} failed "
                                  "(injected fault)")
            target._arrive(dom, self._uri)
            del self._domains[uuid]
            self.registry.moved(uuid, self._uri, target_uri)
            self._publish()
            self._cond.notify_all()

    def migration_uri(self) -> str | None:
        """``fake://NODE`` with ``live_migration``, else None."""
        return self._uri if self.registry is not None else None

    def close(self) -> None:
        """Stop serving the control socket (if any) and leave the migration
        registry (if in one). Idempotent."""
        control, self._control = self._control, None
        if control is not None:
            control.close()
        if self.registry is not None:
            self.registry.unregister(self._uri, self)

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

    def peek(self) -> list[DomainInfo]:
        """Every domain, for observers: like ``list_domains`` but not recorded as a call."""
        with self._cond:
            return sorted((d.info() for d in self._domains.values()), key=lambda i: i.name)

    def boot_id(self, uuid: str) -> str | None:
        """The identifier of the guest's current boot (None if it never ran).

        A live migration keeps it; every start from shut off makes a new one,
        so a guest that kept running through a migration keeps its boot id.
        """
        with self._cond:
            return self._get(uuid).boot_id

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

    def _arrive(self, dom: _Domain, source: str) -> None:
        """Take over ``dom``, active, from the hypervisor at ``source``; the caller
        holds this driver's ``_cond`` (and the migration slot). DriverError (and
        nothing changed) when it cannot."""
        for other in self._domains.values():
            if other.name == dom.name and other.uuid != dom.uuid:
                raise DriverError(f"live migration of {dom.name} to {self.context.node}: "
                                  f"the name is taken there by {other.uuid}")
        old = self._domains.get(dom.uuid)
        if old is not None and old.state.active:
            raise DriverError(f"live migration of {dom.name}: already {old.state} on "
                              f"{self.context.node}")
        used = sum(d.memory_mib for d in self._domains.values() if d.state.active)
        if used + dom.memory_mib > self.memory_mib:
            raise DriverError(f"live migration of {dom.name} to {self.context.node}: needs "
                              f"{dom.memory_mib} MiB, {self.memory_mib - used} MiB free")
        self._record("migrate_in", dom.uuid, source)
        self._domains[dom.uuid] = _Domain(uuid=dom.uuid, name=dom.name,
                                          memory_mib=dom.memory_mib, vcpus=dom.vcpus,
                                          xml=dom.xml, state=dom.state, boot_id=dom.boot_id)
        self._publish()
        self._cond.notify_all()

    def _set_state(self, dom: _Domain, state: DomainState) -> None:
        """Change a domain's state; the caller holds ``self._cond``.

        The state file is written first when the domain becomes active and
        after the change otherwise, so it never under-reports a guest.
        """
        activating = state.active and not dom.state.active
        if activating:
            self._publish((dom.uuid, state))
        if self.registry is not None and state.active != dom.state.active:
            self.registry.note(self._uri, dom.uuid, state.active)
        dom.state = state
        if not activating:
            self._publish()
        self._cond.notify_all()

    def _publish(self, pending: tuple[str, DomainState] | None = None) -> None:
        """Write the state file (if configured); the caller holds ``self._cond``."""
        if self.state_file is None:
            return
        self._state_seq += 1
        domains = {}
        for dom in self._domains.values():
            state = pending[1] if pending and pending[0] == dom.uuid else dom.state
            domains[dom.uuid] = {"name": dom.name, "state": state.value,
                                 "active": state.active}
        doc = {"node": self.context.node, "pid": self._pid[0], "pid_start": self._pid[1],
               "seq": self._state_seq, "domains": domains}
        try:
            _atomic_write(self.state_file, json.dumps(doc, sort_keys=True))
        except OSError as exc:
            self.log.warning("fake hypervisor: cannot write %s: %s", self.state_file, exc)


def read_state_file(path: Path | str) -> dict[str, Any] | None:
    """The document a driver wrote to its state file; None when there is none yet."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return doc if isinstance(doc, dict) else None


def _state_path(value: str | None, state_dir: str | None) -> Path | None:
    """The state file or control socket: absolute, or relative to the node's state
    directory."""
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute() and state_dir:
        path = Path(state_dir) / path
    return path.absolute()


def _process_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc``), None where unknown."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        return int(raw[raw.rfind(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (temporary file in the same directory, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
