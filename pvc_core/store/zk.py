"""A bounded, retrying wrapper around one kazoo client.

Every call here completes or raises within ``op_timeout`` seconds: with quorum
lost a plain kazoo call blocks forever (ENVIRONMENT.md section 3), so each
operation is issued asynchronously and its result awaited with a deadline.
Connection losses are retried (``KazooRetry``) until that deadline. kazoo's
exceptions are translated into :mod:`pvc_core.errors`.

Only the store layer and the coordination recipes use this class; domain code
goes through the repositories.

A write that times out has an *unknown* outcome (it may still be applied when
the connection returns). Writes are therefore made compare-and-set or
idempotent by their callers, and a timeout is reported as
:class:`~pvc_core.errors.StoreUnavailable`, never as success.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    RolledBackError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState, ZnodeStat
from kazoo.retry import KazooRetry, RetryFailedError

from pvc_core.clock import Clock, Deadline, SystemClock
from pvc_core.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    PVCError,
    StoreUnavailable,
    VersionConflict,
)
from pvc_core.keyspace import child

log = logging.getLogger("pvc.store")

T = TypeVar("T")

StateListener = Callable[[str], None]


@dataclass(frozen=True)
class Op:
    """One operation of a multi-key transaction (see :meth:`ZkClient.transaction`).

    ``kind`` is ``create``, ``set``, ``delete`` or ``check``. ``version`` -1
    means "any version" for set/delete; for check it must be given.
    """

    kind: str
    path: str
    data: bytes = b""
    version: int = -1
    ephemeral: bool = False

    @staticmethod
    def create(path: str, data: bytes = b"", ephemeral: bool = False) -> Op:
        return Op("create", path, data, ephemeral=ephemeral)

    @staticmethod
    def set(path: str, data: bytes, version: int = -1) -> Op:
        return Op("set", path, data, version)

    @staticmethod
    def delete(path: str, version: int = -1) -> Op:
        return Op("delete", path, version=version)

    @staticmethod
    def check(path: str, version: int) -> Op:
        return Op("check", path, version=version)


def translate(exc: BaseException, path: str = "") -> PVCError:
    """Map a kazoo exception to the PVC hierarchy (``path`` names the znode)."""
    where = f" ({path})" if path else ""
    if isinstance(exc, PVCError):
        return exc
    if isinstance(exc, NoNodeError):
        return NotFound(f"no such key{where}")
    if isinstance(exc, NodeExistsError):
        return AlreadyExists(f"key already exists{where}")
    if isinstance(exc, BadVersionError):
        return VersionConflict(f"changed since it was read{where}")
    if isinstance(exc, NotEmptyError):
        return Conflict(f"key has children{where}")
    if isinstance(exc, KazooTimeoutError | RetryFailedError | ConnectionLoss
                  | OperationTimeoutError):
        return StoreUnavailable(f"ZooKeeper did not answer in time{where}")
    if isinstance(exc, SessionExpiredError | ConnectionClosedError):
        return StoreUnavailable(f"ZooKeeper session is gone{where}")
    if isinstance(exc, KazooException):
        return StoreUnavailable(f"ZooKeeper error {type(exc).__name__}{where}")
    raise exc


class ZkClient:
    """One ZooKeeper session with bounded operations.

    :param hosts: kazoo hosts string (``host:port,host:port[/chroot]``).
    :param session_timeout: requested session timeout in seconds (the server
        clamps it to 2-20 x its tickTime).
    :param op_timeout: the deadline of every single operation, retries included.
    :param connect_timeout: how long :meth:`start` waits for a session.
    """

    def __init__(
        self,
        hosts: str,
        *,
        session_timeout: float = 10.0,
        op_timeout: float = 5.0,
        connect_timeout: float = 15.0,
        clock: Clock | None = None,
        client_id: tuple[int, bytes] | None = None,
    ) -> None:
        self.hosts = hosts
        self.op_timeout = op_timeout
        self.connect_timeout = connect_timeout
        self.clock = clock or SystemClock()
        self.kazoo = KazooClient(
            hosts=hosts,
            timeout=session_timeout,
            client_id=client_id,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            logger=logging.getLogger("pvc.kazoo"),
        )
        self._state_cond = threading.Condition()
        self._listeners: list[StateListener] = []
        self.kazoo.add_listener(self._on_state)

    # -- session -----------------------------------------------------------

    def start(self) -> None:
        """Open the session; raise :class:`StoreUnavailable` after ``connect_timeout``."""
        try:
            self.kazoo.start(timeout=self.connect_timeout)
        except KazooTimeoutError as exc:
            self.kazoo.stop()
            self.kazoo.close()
            raise StoreUnavailable(
                f"cannot connect to ZooKeeper at {self.hosts} within {self.connect_timeout:g}s"
            ) from exc

    def stop(self) -> None:
        """Close the session (ephemeral znodes vanish at once). Idempotent."""
        try:
            self.kazoo.stop()
        finally:
            self.kazoo.close()

    @property
    def connected(self) -> bool:
        return bool(self.kazoo.connected)

    @property
    def session_id(self) -> tuple[int, bytes] | None:
        """(session id, password) while a session exists, else None."""
        cid = self.kazoo.client_id
        return (int(cid[0]), bytes(cid[1])) if cid else None

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(state)`` with ``CONNECTED``, ``SUSPENDED`` or ``LOST``.

        It runs in kazoo's thread: it must only set flags or events.
        """
        with self._state_cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        with self._state_cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _on_state(self, state: str) -> None:
        with self._state_cond:
            listeners = list(self._listeners)
            self._state_cond.notify_all()
        name = {KazooState.CONNECTED: "CONNECTED", KazooState.SUSPENDED: "SUSPENDED",
                KazooState.LOST: "LOST"}.get(state, str(state))
        for listener in listeners:
            try:
                listener(name)
            except Exception:  # a listener must never break kazoo's thread
                log.exception("state listener %r failed", listener)

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a live connection."""
        deadline = Deadline(timeout, self.clock)
        with self._state_cond:
            while not self.kazoo.connected:
                left = deadline.remaining()
                if left <= 0:
                    return False
                self._state_cond.wait(min(left, 0.1))
        return True

    # -- bounded calls ------------------------------------------------------

    def call(self, start: Callable[[], Any], path: str = "",
             timeout: float | None = None) -> Any:
        """Run one async kazoo operation to completion within the deadline.

        ``start`` issues the operation and returns kazoo's async result.
        Connection losses are retried until the deadline.
        """
        deadline = Deadline(self.op_timeout if timeout is None else timeout, self.clock)

        def attempt() -> Any:
            if not self.wait_connected(deadline.remaining()):
                raise KazooTimeoutError("not connected")
            left = deadline.remaining()
            if left <= 0:
                raise KazooTimeoutError("deadline passed")
            return start().get(timeout=left)

        retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5,
                           deadline=deadline.remaining(), ignore_expire=False)
        try:
            return retry(attempt)
        except Exception as exc:  # translated, or re-raised if foreign
            raise translate(exc, path) from exc

    def get(self, path: str) -> tuple[bytes, ZnodeStat]:
        data, stat = self.call(lambda: self.kazoo.get_async(path), path)
        return bytes(data or b""), stat

    def get_many(self, paths: Sequence[str]) -> list[tuple[bytes, ZnodeStat] | None]:
        """Read many znodes pipelined (all requests in flight at once).

        Returns ``(data, stat)`` per path, or None for a path that does not
        exist. The whole batch shares one deadline of ``op_timeout``.
        """
        if not paths:
            return []
        deadline = Deadline(self.op_timeout, self.clock)
        if not self.wait_connected(deadline.remaining()):
            raise StoreUnavailable("ZooKeeper is not connected")
        pending = [self.kazoo.get_async(p) for p in paths]
        out: list[tuple[bytes, ZnodeStat] | None] = []
        for path, result in zip(paths, pending, strict=True):
            try:
                data, stat = result.get(timeout=max(deadline.remaining(), 0.001))
            except NoNodeError:
                out.append(None)
                continue
            except Exception as exc:
                raise translate(exc, path) from exc
            out.append((bytes(data or b""), stat))
        return out

    def exists(self, path: str) -> ZnodeStat | None:
        stat: ZnodeStat | None = self.call(lambda: self.kazoo.exists_async(path), path)
        return stat

    def children(self, path: str) -> list[str]:
        return list(self.call(lambda: self.kazoo.get_children_async(path), path))

    def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False,
               sequence: bool = False, makepath: bool = False) -> str:
        """Create a znode; return its real path (with the sequence suffix)."""
        return str(self.call(lambda: self.kazoo.create_async(
            path, data, ephemeral=ephemeral, sequence=sequence, makepath=makepath), path))

    def ensure_path(self, path: str) -> None:
        """Create ``path`` and its parents when missing; no error when present."""
        self.call(lambda: self.kazoo.ensure_path_async(path), path)

    def set(self, path: str, data: bytes, version: int = -1) -> ZnodeStat:
        """Write ``data``; with ``version`` >= 0 only if the znode is at that version."""
        return self.call(lambda: self.kazoo.set_async(path, data, version), path)

    def delete(self, path: str, version: int = -1) -> None:
        self.call(lambda: self.kazoo.delete_async(path, version), path)

    def delete_tree(self, path: str) -> None:
        """Delete ``path`` and everything under it (bounded per call, not atomic)."""
        try:
            kids = self.children(path)
        except NotFound:
            return
        for kid in kids:
            self.delete_tree(child(path, kid))
        try:
            self.delete(path)
        except NotFound:
            pass

    def transaction(self, ops: Sequence[Op] | Iterable[Op]) -> list[Any]:
        """Apply all ``ops`` atomically, or none of them.

        Raises the translated error of the first operation that failed
        (:class:`VersionConflict`, :class:`AlreadyExists`, :class:`NotFound`).
        """
        ops = list(ops)
        if not ops:
            return []

        def start() -> Any:
            tx = self.kazoo.transaction()
            for op in ops:
                if op.kind == "create":
                    tx.create(op.path, op.data, ephemeral=op.ephemeral)
                elif op.kind == "set":
                    tx.set_data(op.path, op.data, op.version)
                elif op.kind == "delete":
                    tx.delete(op.path, op.version)
                elif op.kind == "check":
                    tx.check(op.path, op.version)
                else:
                    raise ValueError(f"unknown transaction op {op.kind!r}")
            return tx.commit_async()

        results = self.call(start, "transaction")
        for op, result in zip(ops, results, strict=False):
            if isinstance(result, Exception) and not isinstance(result, RolledBackError):
                raise translate(result, op.path)
        return list(results)
