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
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
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
from pvc_core.errors import AlreadyExists, Conflict, DriverError, NotFound
from pvc_plugins.fake._recorder import CallRecorder
from pvc_plugins.fake.control import ControlServer


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
    8), ``load1`` (reported load, default 0.0), ``state_file`` (optional:
    where to publish the domains, see the module docstring),
    ``control_socket`` (optional: where to serve the fault injection to
    other processes, see the module docstring).
    """

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "memory_mib": {"type": "integer", "minimum": 1, "default": 32768},
            "cpus": {"type": "integer", "minimum": 1, "default": 8},
            "load1": {"type": "number", "minimum": 0, "default": 0.0},
            "state_file": {"type": "string", "minLength": 1},
            "control_socket": {"type": "string", "minLength": 1},
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
        self.state_file = _state_path(self.config.get("state_file"), context.state_dir)
        self._state_seq = 0
        self._pid = (os.getpid(), _process_start(os.getpid()))
        with self._cond:
            self._publish()  # a new process: its hypervisor starts empty
        self._control: ControlServer | None = None
        control = _state_path(self.config.get("control_socket"), context.state_dir)
        if control is not None:
            self._control = ControlServer(self, control)

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

    def close(self) -> None:
        """Stop serving the control socket (if any). Idempotent."""
        control, self._control = self._control, None
        if control is not None:
            control.close()

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
        """Change a domain's state; the caller holds ``self._cond``.

        The state file is written first when the domain becomes active and
        after the change otherwise, so it never under-reports a guest.
        """
        activating = state.active and not dom.state.active
        if activating:
            self._publish((dom.uuid, state))
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
