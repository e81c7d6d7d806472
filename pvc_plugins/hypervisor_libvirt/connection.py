"""One libvirt connection per driver, with hard timeouts and error mapping.

Hard timeouts: a libvirt call can block for as long as libvirtd does (a hung
daemon, a stuck QEMU monitor). Every call on a daemon-backed URI therefore
runs in a short-lived daemon thread while the caller waits on an Event with
the method's budget; when the budget is exceeded the caller gets
:class:`~pvc_core.errors.DriverTimeout` and the thread is abandoned (it ends
when libvirtd answers). At most :data:`MAX_HUNG_CALLS` such threads may be
outstanding; beyond that calls fail at once instead of piling up threads.
``test://`` URIs are served in-process by libvirt's test driver, which
cannot hang, so their calls run inline.

Reconnection: a connection to a daemon that died (``isAlive()`` false, or
an RPC/system error) is dropped and reopened, and the failed call is
retried once (:meth:`LibvirtConnection.call`). A
``test://`` connection is never reopened, because the test driver's state
lives in that connection (ENVIRONMENT.md section 4): losing it is a crash
of that fake node.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    DriverError,
    DriverTimeout,
    InvalidInput,
    NotFound,
    NotSupported,
    PVCError,
)

T = TypeVar("T")

#: Calls allowed to be stuck in libvirt at once before new calls fail fast.
MAX_HUNG_CALLS = 8

_XML_ERRORS = frozenset({
    libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_ERR_XML_DETAIL, libvirt.VIR_ERR_NO_NAME,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_ERR_XML_INVALID_SCHEMA,
    libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_OS, libvirt.VIR_ERR_OS_TYPE,
})
_CONNECTION_ERRORS = frozenset({
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_AUTH_FAILED,
})


def _quiet_error_handler(_ctx: object, error: tuple[Any, ...]) -> None:
    """libvirt's default handler prints every error to stderr; log instead."""
    logging.getLogger("pvc.driver.libvirt").debug("libvirt: %s", error[2] if len(error) > 2 else error)


def install_error_handler() -> None:
    """Route libvirt's own error printing to the debug log (process-wide, idempotent)."""
    libvirt.registerErrorHandler(_quiet_error_handler, None)


def map_error(exc: BaseException, what: str, *, xml: bool = False) -> PVCError:
    """Translate a libvirt error into the PVC hierarchy.

    ``xml``: the call parsed user-supplied XML, so XML and argument errors
    are the caller's fault (InvalidInput) rather than the driver's.
    """
    if isinstance(exc, PVCError):
        return exc
    if not isinstance(exc, libvirt.libvirtError):
        return DriverError(f"{what}: {type(exc).__name__}: {exc}")
    code = exc.get_error_code()
    message = f"{what}: {exc.get_error_message() or exc}"
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return NotFound(message)
    if xml and code in _XML_ERRORS:
        return InvalidInput(message)
    if code == libvirt.VIR_ERR_DOM_EXIST or (
            xml and code == libvirt.VIR_ERR_OPERATION_FAILED and "already exists" in message):
        return AlreadyExists(message)
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return Conflict(message)
    if code in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED):
        return NotSupported(message)
    if code in (libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_ERR_AGENT_UNRESPONSIVE):
        return DriverTimeout(message)
    return DriverError(message)


def error_code(exc: BaseException) -> int | None:
    """The libvirt error code of an exception, None for anything else."""
    return exc.get_error_code() if isinstance(exc, libvirt.libvirtError) else None


class CallGuard:
    """Run callables in daemon threads with a deadline (see the module docstring)."""

    def __init__(self, max_hung: int = MAX_HUNG_CALLS) -> None:
        self.max_hung = max_hung
        self._slots = threading.BoundedSemaphore(max_hung)

    def run(self, what: str, fn: Callable[[], T], timeout: float) -> T:
        """Return ``fn()``; raise DriverTimeout after ``timeout`` seconds.

        Exceptions of ``fn`` are re-raised unchanged in the caller.
        """
        if not self._slots.acquire(blocking=False):
            raise DriverTimeout(f"{what}: {self.max_hung} earlier libvirt calls are still "
                                "blocked; libvirtd is not answering")
        done = threading.Event()
        box: dict[str, Any] = {}

        def worker() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc
            finally:
                self._slots.release()
                done.set()

        threading.Thread(target=worker, name=f"libvirt: {what}", daemon=True).start()
        if not done.wait(timeout):
            raise DriverTimeout(f"{what}: no answer from libvirt within {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]


def is_test_uri(uri: str) -> bool:
    """True for libvirt's in-process test driver (``test:///default``, ``test://PATH``)."""
    return uri.split(":", 1)[0].split("+", 1)[0] == "test"


class LibvirtConnection:
    """A lazily opened, thread-safe libvirt connection with hard timeouts."""

    def __init__(self, uri: str, *, connect_timeout: float, logger: logging.Logger) -> None:
        self.uri = uri
        self.connect_timeout = connect_timeout
        self.log = logger
        self.in_process = is_test_uri(uri)
        self._guard = CallGuard()
        self._lock = threading.Lock()
        self._conn: libvirt.virConnect | None = None
        self._closed = False
        self._type: str | None = None

    @property
    def hypervisor_type(self) -> str | None:
        """``conn.getType()`` of the open connection (``QEMU``, ``TEST``), None before."""
        return self._type

    def run(self, what: str, fn: Callable[[], T], timeout: float) -> T:
        """Run a callable with this connection's hard-timeout policy."""
        if self.in_process:
            return fn()
        return self._guard.run(what, fn, timeout)

    def open_uri(self, uri: str, timeout: float) -> libvirt.virConnect:
        """Open another connection (e.g. to a migration target) within ``timeout``."""
        try:
            return self.run(f"connect to {uri}", lambda: libvirt.open(uri), timeout)
        except libvirt.libvirtError as exc:
            raise map_error(exc, f"cannot connect to {uri}") from None

    def _get(self) -> libvirt.virConnect:
        with self._lock:
            if self._closed:
                raise DriverError(f"the libvirt connection to {self.uri} is closed")
            conn = self._conn
            if conn is not None and not self.in_process:
                try:
                    alive = bool(conn.isAlive())  # local socket state, no RPC
                except libvirt.libvirtError:
                    alive = False
                if not alive:
                    self.log.warning("libvirt connection to %s is dead; reconnecting", self.uri)
                    self._conn = conn = None
            if conn is None:
                conn = self.open_uri(self.uri, self.connect_timeout)
                self._type = str(conn.getType())
                self._conn = conn
            return conn

    def call(self, what: str, fn: Callable[[libvirt.virConnect], T], timeout: float, *,
             xml: bool = False) -> T:
        """Return ``fn(conn)`` within ``timeout``, libvirt errors mapped to PVC errors.

        When the call failed because the daemon connection died (libvirtd
        restarted: the client only notices on its next RPC), it is retried
        once on a new connection; every driver operation is idempotent.
        """
        for attempt in (1, 2):
            conn = self._get()
            try:
                return self.run(what, functools.partial(fn, conn), timeout)
            except libvirt.libvirtError as exc:
                dropped = (not self.in_process and error_code(exc) in _CONNECTION_ERRORS
                           and self._drop_if_dead(conn))
                if not (dropped and attempt == 1):
                    raise map_error(exc, what, xml=xml) from None
                self.log.warning("%s: the connection to %s died (%s); reconnecting",
                                 what, self.uri, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop_if_dead(self, conn: libvirt.virConnect) -> bool:
        """Forget ``conn`` when it is dead; True when it was."""
        try:
            alive = bool(conn.isAlive())
        except libvirt.libvirtError:
            alive = False
        if not alive:
            with self._lock:
                if self._conn is conn:
                    self._conn = None
        return not alive

    def close(self) -> None:
        """Close the connection; idempotent. Later calls raise DriverError."""
        with self._lock:
            conn, self._conn, self._closed = self._conn, None, True
        if conn is not None:
            try:
                self.run("close", conn.close, self.connect_timeout)
            except (libvirt.libvirtError, DriverTimeout) as exc:
                self.log.warning("closing the libvirt connection to %s: %s", self.uri, exc)
