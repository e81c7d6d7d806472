"""Migration logic without a second hypervisor: target URIs, ordering, abort.

The real thing (two libvirtds, a TCG guest) is tests/qemu; here stub
domains record what the driver asks libvirt to do.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import libvirt
import pytest

from pvc_core.errors import DriverTimeout, InvalidInput
from pvc_plugins.hypervisor_libvirt.connection import CallGuard
from pvc_plugins.hypervisor_libvirt.migration import (
    MIGRATE_FLAGS,
    migrate_to,
    run_migration,
    split_target,
    with_address,
)

LOG = logging.getLogger("test")
UNIX = "qemu+unix:///system?socket=/srv/pvc/node2/run/libvirt-sock"


@pytest.mark.parametrize(("target", "expected"), [
    (UNIX, (UNIX, None)),
    (with_address(UNIX, "tcp://10.250.0.2"), (UNIX, "tcp://10.250.0.2")),
    (with_address("qemu:///system", "tcp://10.0.0.2:49152"), ("qemu:///system", "tcp://10.0.0.2:49152")),
    ("qemu+tcp://10.0.0.2/system", ("qemu+tcp://10.0.0.2/system", "tcp://10.0.0.2")),
    ("qemu+ssh://root@hv2.example/system?keyfile=/k", ("qemu+ssh://root@hv2.example/system?keyfile=/k", "tcp://hv2.example")),
    ("qemu+tcp://[fd00::2]/system", ("qemu+tcp://[fd00::2]/system", "tcp://[fd00::2]")),
])
def test_split_target(target: str, expected: tuple[str, str | None]) -> None:
    assert split_target(target) == expected


def test_with_address_keeps_the_libvirt_query_verbatim() -> None:
    uri = "qemu+unix:///system?socket=/a%20b/sock"
    assert with_address(uri, None) == uri
    assert split_target(with_address(uri, "tcp://h"))[0] == uri


def test_split_target_rejects_garbage() -> None:
    with pytest.raises(InvalidInput):
        split_target("/not/a/uri")


class StubDomain:
    """Records calls; ``migrate3`` blocks until released or aborted."""

    def __init__(self, *, block: bool = False, finish_on_abort: bool = False,
                 refuse_aborts: int = 0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.release = threading.Event()
        self.block, self.finish_on_abort = block, finish_on_abort
        self.refuse_aborts = refuse_aborts
        self.aborted = False

    def UUIDString(self) -> str:  # noqa: N802 - libvirt's name
        return "5c0ffee0-0000-4000-8000-000000000001"

    def migrateSetMaxDowntime(self, ms: int, flags: int) -> int:  # noqa: N802
        self.calls.append(("migrateSetMaxDowntime", (ms, flags)))
        return 0

    def migrate3(self, dest: Any, params: dict[str, Any], flags: int) -> Any:
        self.calls.append(("migrate3", (dest, params, flags)))
        if self.block:
            self.release.wait(10)
        if self.aborted and not self.finish_on_abort:
            raise libvirt.libvirtError("operation aborted: migration out job: canceled by client")
        return StubNewDomain()

    def abortJob(self) -> int:  # noqa: N802
        self.calls.append(("abortJob", None))
        if self.refuse_aborts > 0:
            self.refuse_aborts -= 1
            raise libvirt.libvirtError("Requested operation is not valid: no job is active")
        self.aborted = True
        self.release.set()
        return 0


class StubNewDomain:
    def jobStats(self, flags: int) -> dict[str, int]:  # noqa: N802
        assert flags == libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED
        return {"downtime": 142, "time_elapsed": 480, "data_processed": 70_000_000}


class StubConnection:
    """What migrate_to needs from LibvirtConnection."""

    def __init__(self) -> None:
        self.guard = CallGuard()
        self.opened: list[str] = []
        self.closed = 0

    def run(self, what: str, fn: Any, timeout: float) -> Any:
        return self.guard.run(what, fn, timeout)

    def open_uri(self, uri: str, timeout: float) -> Any:
        self.opened.append(uri)
        return self

    def close(self) -> int:
        self.closed += 1
        return 0


def test_migrate_to_sets_the_downtime_first_and_uses_the_address() -> None:
    dom, lv = StubDomain(), StubConnection()
    result = migrate_to(lv, dom, UNIX, "tcp://10.250.0.2", max_downtime_ms=250,  # type: ignore[arg-type]
                        timeout=10, connect_timeout=1, log=LOG)
    assert dom.calls == [("migrateSetMaxDowntime", (250, 0)),
                         ("migrate3", (lv, {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://10.250.0.2"},
                                       MIGRATE_FLAGS))]
    assert MIGRATE_FLAGS == (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
                             | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    assert (lv.opened, lv.closed) == ([UNIX], 1)
    assert (result.downtime_ms, result.total_ms, result.data_bytes) == (142, 480, 70_000_000)


def test_zero_downtime_keeps_the_default_and_no_address_lets_libvirt_choose() -> None:
    dom, lv = StubDomain(), StubConnection()
    migrate_to(lv, dom, UNIX, None, max_downtime_ms=0, timeout=10, connect_timeout=1,  # type: ignore[arg-type]
               log=LOG)
    assert dom.calls == [("migrate3", (lv, {}, MIGRATE_FLAGS))]


def test_timeout_aborts_and_raises() -> None:
    dom = StubDomain(block=True)
    with pytest.raises(DriverTimeout, match="aborted, the domain stays"):
        run_migration(dom, object(), None, timeout=0.1, guard=CallGuard().run, log=LOG)
    assert [c[0] for c in dom.calls] == ["migrate3", "abortJob"]


def test_a_refused_abort_is_retried() -> None:
    dom = StubDomain(block=True, refuse_aborts=2)
    with pytest.raises(DriverTimeout, match="aborted"):
        run_migration(dom, object(), None, timeout=0.05, guard=CallGuard().run, log=LOG)
    assert [c[0] for c in dom.calls] == ["migrate3", "abortJob", "abortJob", "abortJob"]


def test_a_migration_that_completes_while_aborted_counts_as_done() -> None:
    dom = StubDomain(block=True, finish_on_abort=True)
    result = run_migration(dom, object(), None, timeout=0.1, guard=CallGuard().run, log=LOG)
    assert result.downtime_ms == 142


def test_libvirt_errors_are_mapped() -> None:
    class Failing(StubDomain):
        def migrate3(self, dest: Any, params: dict[str, Any], flags: int) -> Any:
            raise libvirt.libvirtError("unable to connect to server")

    with pytest.raises(Exception) as info:
        migrate_to(StubConnection(), Failing(), UNIX, None, max_downtime_ms=0,  # type: ignore[arg-type]
                   timeout=5, connect_timeout=1, log=LOG)
    assert type(info.value).__name__ == "DriverError"
    assert "unable to connect" in str(info.value)


def test_call_guard() -> None:
    guard = CallGuard(max_hung=1)
    assert guard.run("ok", lambda: 42, 1) == 42
    with pytest.raises(KeyError):
        guard.run("raises", lambda: {}["x"], 1)
    stuck = threading.Event()
    with pytest.raises(DriverTimeout, match="no answer"):
        guard.run("hangs", lambda: stuck.wait(10), 0.05)
    with pytest.raises(DriverTimeout, match="still blocked"):
        guard.run("next", lambda: 1, 1)  # the one slot is taken by the hung call
    stuck.set()  # the hung call returns and frees its slot
    deadline = time.monotonic() + 5
    while True:
        try:
            assert guard.run("after", lambda: 7, 1) == 7
            break
        except DriverTimeout:
            if time.monotonic() > deadline:
                raise
            threading.Event().wait(0.01)
