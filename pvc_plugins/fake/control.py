"""Drive a fake hypervisor that lives in another process (tests only).

With the optional ``control_socket`` option the fake hypervisor driver
serves a Unix stream socket (mode 0600; a relative path is taken from the
node's ``state_dir``), so a test can crash a guest, hang or finish its
shutdown, make its start fail, define and start a domain by hand, and read
the driver's domains and recorded calls while the driver runs inside a
separate ``pvcnoded`` process. :class:`FakeHypervisorControl` is the client.

Protocol: one request per connection, one JSON object per line each way.
The request is ``{"op": NAME, ...arguments}``; the answer is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": TYPE,
"message": TEXT}``, where ``TYPE`` is the name of the PVC error the driver
raised (``NotFound``, ``Conflict``, ``AlreadyExists``, ``DriverError``,
``InvalidInput``), which the client raises again. Operations:

=====================  ====================  =======================================================
op                     arguments             what it does
=====================  ====================  =======================================================
``crash``              ``uuid``              the guest crashed (state ``crashed``)
``pause``              ``uuid``              pause a running guest
``hang_shutdown``      ``uuid``              its graceful shutdowns hang from now on
``finish_shutdown``    ``uuid``              let a hanging shutdown complete
``fail_start``         ``uuid``, ``fail``    make its starts fail (or work again)
``define``             ``xml``, ``start``    define (and start) a domain by hand, at once
``start``              ``uuid``              start a domain by hand
``destroy``            ``uuid``              power a domain off by hand
``domains``                                  every domain (uuid, name, state, active, memory, vCPUs);
                                             reading them is not recorded as a call
``calls``              ``method``            the argument lists of every call to it
=====================  ====================  =======================================================

The socket is for tests on one machine: it is created by the driver's
process, readable and writable by its user only, and removed when the
driver closes. A stale socket left by a killed process is replaced; a path
where something else lives, or where another live driver already answers,
is refused with a DriverError.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pvc_core.drivers.hypervisor import DomainInfo
from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    DriverError,
    InvalidInput,
    NotFound,
    PVCError,
)

if TYPE_CHECKING:
    from pvc_plugins.fake.hypervisor import FakeHypervisorDriver

#: Longest request accepted (a domain XML fits easily).
MAX_REQUEST = 1 << 20
#: Seconds a connection may take to send its request.
REQUEST_TIMEOUT = 5.0
#: Longest path a Unix socket address can hold on Linux (108 bytes with the NUL).
MAX_SOCKET_PATH = 107
#: Errors that travel back to the client by name.
_ERRORS: dict[str, type[PVCError]] = {
    cls.__name__: cls for cls in (NotFound, AlreadyExists, Conflict, InvalidInput, DriverError)}


def _info(dom: DomainInfo) -> dict[str, Any]:
    return {"uuid": dom.uuid, "name": dom.name, "state": dom.state.value,
            "active": dom.state.active, "memory_mib": dom.memory_mib, "vcpus": dom.vcpus}


def _operations(driver: FakeHypervisorDriver) -> dict[str, Callable[..., Any]]:
    """The operations the socket offers, each taking the request's arguments."""

    def hang_shutdown(uuid: str) -> None:
        with driver._cond:
            driver.hang_shutdown.add(uuid)

    def fail_start(uuid: str, fail: bool = True) -> None:
        with driver._cond:
            (driver.fail_start.add if fail else driver.fail_start.discard)(uuid)

    def define(xml: str, start: bool = False) -> dict[str, Any]:
        with driver._cond:  # at once: no reconcile round sees it defined but not started
            info = driver.define(xml)
            if start:
                driver.start(info.uuid)
                info = next(d for d in driver.peek() if d.uuid == info.uuid)
            return _info(info)

    return {
        "crash": lambda uuid: driver.crash(str(uuid)),
        "pause": lambda uuid: driver.pause(str(uuid)),
        "hang_shutdown": lambda uuid: hang_shutdown(str(uuid)),
        "finish_shutdown": lambda uuid: driver.finish_shutdown(str(uuid)),
        "fail_start": lambda uuid, fail=True: fail_start(str(uuid), bool(fail)),
        "define": lambda xml, start=False: define(str(xml), bool(start)),
        "start": lambda uuid: driver.start(str(uuid)),
        "destroy": lambda uuid: driver.destroy(str(uuid)),
        "domains": lambda: [_info(d) for d in driver.peek()],
        "calls": lambda method: [list(args) for args in driver.calls_to(str(method))],
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: str, operations: dict[str, Callable[..., Any]]) -> None:
        self.operations = operations
        super().__init__(path, _Handler)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.connection.settimeout(REQUEST_TIMEOUT)
        try:
            line = self.rfile.readline(MAX_REQUEST + 1)
        except OSError:
            return
        self.wfile.write(json.dumps(self._answer(line)).encode() + b"\n")

    def _answer(self, line: bytes) -> dict[str, Any]:
        if len(line) > MAX_REQUEST:
            return _error(InvalidInput(f"request longer than {MAX_REQUEST} bytes"))
        try:
            request = json.loads(line)
        except ValueError as exc:
            return _error(InvalidInput(f"request is not JSON: {exc}"))
        if not isinstance(request, dict):
            return _error(InvalidInput("request must be a JSON object"))
        op = request.pop("op", None)
        fn = self.server.operations.get(op) if isinstance(op, str) else None
        if fn is None:
            return _error(InvalidInput(f"unknown operation {op!r} (one of "
                                       f"{', '.join(sorted(self.server.operations))})"))
        try:
            return {"ok": True, "result": fn(**request)}
        except TypeError as exc:
            return _error(InvalidInput(f"{op}: bad arguments: {exc}"))
        except PVCError as exc:
            return _error(exc)


def _error(exc: PVCError) -> dict[str, Any]:
    kind = next((c.__name__ for c in type(exc).__mro__ if c.__name__ in _ERRORS),
                "DriverError")
    return {"ok": False, "error": kind, "message": str(exc)}


class ControlServer:
    """Serves one driver's control socket on a thread until :meth:`close`."""

    def __init__(self, driver: FakeHypervisorDriver, path: Path) -> None:
        self.path = path
        text = str(path)
        if len(text.encode()) > MAX_SOCKET_PATH:
            raise DriverError(f"fake hypervisor control_socket {text}: longer than "
                              f"{MAX_SOCKET_PATH} bytes (a Unix socket path cannot be)")
        path.parent.mkdir(parents=True, exist_ok=True)
        _clear_stale(path)
        try:
            self._server = _Server(text, _operations(driver))
        except OSError as exc:
            raise DriverError(f"fake hypervisor control_socket {text}: {exc}") from exc
        os.chmod(path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name=f"fake-hv-control-{driver.context.node}",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and remove the socket. Idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
        self.path.unlink(missing_ok=True)


def _clear_stale(path: Path) -> None:
    """Remove a socket left by a dead process; refuse anything else found there."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise DriverError(f"fake hypervisor control_socket {path}: exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody answers: left by a process that died
        return
    finally:
        probe.close()
    raise DriverError(f"fake hypervisor control_socket {path}: another driver answers there")


class FakeHypervisorControl:
    """Client of a fake hypervisor's control socket (see the module docstring).

    Its methods mirror the driver's fault injection: :meth:`crash`,
    :meth:`pause`, :meth:`hang_shutdown`, :meth:`finish_shutdown`,
    :meth:`fail_start`; and a hand on the host: :meth:`define`,
    :meth:`start`, :meth:`destroy`, :meth:`domains`, :meth:`calls_to`.
    Each call opens one connection; errors of the driver are raised again
    as the same PVC error, a socket that does not answer as DriverError.
    """

    def __init__(self, path: Path | str, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def request(self, op: str, **args: Any) -> Any:
        """Send one operation; return its result."""
        payload = json.dumps({"op": op, **args}).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall(payload)
                with sock.makefile("rb") as reader:
                    line = reader.readline(MAX_REQUEST)
        except OSError as exc:
            raise DriverError(f"fake hypervisor control {self.path}: {op}: {exc}") from exc
        if not line:
            raise DriverError(f"fake hypervisor control {self.path}: {op}: no answer")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise _ERRORS.get(answer.get("error"), DriverError)(answer.get("message", "?"))
        return answer.get("result")

    def crash(self, uuid: str) -> None:
        self.request("crash", uuid=uuid)

    def pause(self, uuid: str) -> None:
        self.request("pause", uuid=uuid)

    def hang_shutdown(self, uuid: str) -> None:
        self.request("hang_shutdown", uuid=uuid)

    def finish_shutdown(self, uuid: str) -> None:
        self.request("finish_shutdown", uuid=uuid)

    def fail_start(self, uuid: str, fail: bool = True) -> None:
        self.request("fail_start", uuid=uuid, fail=fail)

    def define(self, xml: str, start: bool = False) -> dict[str, Any]:
        """Define a domain (and with ``start``, start it in the same step); its info."""
        result: dict[str, Any] = self.request("define", xml=xml, start=start)
        return result

    def start(self, uuid: str) -> None:
        self.request("start", uuid=uuid)

    def destroy(self, uuid: str) -> None:
        self.request("destroy", uuid=uuid)

    def domains(self) -> dict[str, dict[str, Any]]:
        """UUID -> ``{"uuid", "name", "state", "active", "memory_mib", "vcpus"}`` of
        every domain defined there (reading them is not recorded as a call)."""
        return {d["uuid"]: d for d in self.request("domains")}

    def state(self, uuid: str) -> str | None:
        """A domain's state there (``running``, ``shutoff``, ...), None when not defined."""
        dom = self.domains().get(uuid)
        return None if dom is None else str(dom["state"])

    def calls_to(self, method: str) -> list[list[Any]]:
        """The argument lists of every call to ``method`` the driver recorded."""
        result: list[list[Any]] = self.request("calls", method=method)
        return result
