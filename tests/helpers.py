"""Helpers shared by tests (not fixtures)."""

from __future__ import annotations

import logging

from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.store.zk import ZkClient
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver


def snapshot(client: ZkClient, path: str = "/") -> dict[str, bytes]:
    """Every znode under ``path`` with its data, to show that nothing changed."""
    out: dict[str, bytes] = {}
    stack = [path]
    while stack:
        p = stack.pop()
        data, _ = client.get(p)
        out[p] = data
        for kid in client.children(p):
            stack.append(f"{p.rstrip('/')}/{kid}")
    return out


def fake_hv(daemon: NodeDaemon) -> FakeHypervisorDriver:
    """The fake hypervisor of an in-process daemon."""
    assert daemon.ctx is not None
    driver = daemon.ctx.hv
    assert isinstance(driver, FakeHypervisorDriver)
    return driver


def local_state(daemon: NodeDaemon, uuid: str) -> DomainState | None:
    """What an in-process daemon's fake hypervisor says of ``uuid`` (None: not defined)."""
    try:
        return fake_hv(daemon).domain_info(uuid).state
    except Exception:  # noqa: BLE001 - not defined there
        return None


class RecordingHandler(logging.Handler):
    """Keeps every log record it is given (attach it to a logger in a test)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
