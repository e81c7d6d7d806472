"""Fixtures: a local cluster of real node daemons and real ZooKeeper, and an
API server (in this process, port chosen by the kernel) with three keys."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc_api.auth import hash_key, new_key
from pvc_api.server import ApiServer
from pvc_core.config import load_config
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_local.cluster import LocalCluster
from tests.api.client import Http
from tests.cluster.conftest import domain_xml, wait_for

__all__ = ["domain_xml", "wait_for"]

KEYS = {"admin": new_key(), "viewer": new_key()}
API = "/api/v1"


class AuditCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    return dict(KEYS)


def key_config() -> dict[str, object]:
    return {"api": {"keys": [
        {"name": "admin", "hash": hash_key(KEYS["admin"]), "role": "admin"},
        {"name": "viewer", "hash": hash_key(KEYS["viewer"]), "role": "read-only"}]}}


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("apicluster"))
    c.up(nodes=3, coordinators=2, hypervisor="fake", wait=90, bmc=False,
         config_overrides=key_config())
    yield c
    c.down(timeout=30)


@pytest.fixture(scope="package")
def api_server(cluster: LocalCluster) -> Iterator[ApiServer]:
    state = cluster.record()
    config = load_config(state.node("node1").config)
    server = ApiServer(config, port=0, threads=8)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def audit(api_server: ApiServer) -> Iterator[AuditCapture]:
    handler = AuditCapture()
    logger = logging.getLogger(f"pvc.audit.{api_server.config.node.name}")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def admin(api_server: ApiServer) -> Http:
    return Http(api_server.url, KEYS["admin"])


@pytest.fixture
def viewer(api_server: ApiServer) -> Http:
    return Http(api_server.url, KEYS["viewer"])


@pytest.fixture
def anonymous(api_server: ApiServer) -> Http:
    return Http(api_server.url)


@pytest.fixture
def store(cluster: LocalCluster) -> Iterator[Store]:
    """A store; VMs the test defined are stopped and removed afterwards."""
    s = cluster.store()
    before = set(s.vms.uuids())
    yield s
    for vm in set(s.vms.uuids()) - before:
        try:
            s.vms.set_state(vm, VMState.STOP, "test cleanup")
            wait_for(lambda v=vm: all(v not in _running(s, n) for n in s.nodes.names()),
                     30, f"{vm} stopped")
            s.vms.remove(vm)
        except Exception:  # noqa: BLE001 - removed by the test itself
            pass
    s.close()


def _running(s: Store, node: str) -> set[str]:
    from pvc_core.ops.view import reported_running

    return reported_running(s, node)


@pytest.fixture
def xml_file(tmp_path: Path) -> Path:
    return tmp_path
