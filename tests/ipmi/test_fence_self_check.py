"""A starting node daemon checks its own BMC through the ``ipmi`` fence driver.

A real daemon (real ZooKeeper) whose fence chain names a real simulated BMC
logs that the device answers; one whose BMC address is a closed loopback
port logs "FENCING WOULD FAIL" loudly and still runs.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvc_core.states import DaemonState
from pvc_local.zookeeper import ZooKeeperServer
from tests.cluster import conftest as cluster_conftest
from tests.cluster.conftest import DaemonFactory
from tests.helpers import RecordingHandler

from .conftest import SimBmc

pytestmark = pytest.mark.zookeeper

#: the cluster tests' module-scoped ZooKeeper server fixture
zk_for_daemons = cluster_conftest.zk_for_daemons


@pytest.fixture
def start_node(zk_for_daemons: ZooKeeperServer, tmp_path: Path) -> Iterator[Any]:
    """Start node1 with the given ipmi chain entry; return (daemon, its fence log lines)."""
    factory = DaemonFactory(zk_for_daemons, tmp_path)
    handler = RecordingHandler()
    log = logging.getLogger("pvc.fence")  # its own handler: whether or not "pvc" propagates
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    def start(entry: dict[str, Any]) -> tuple[Any, list[tuple[int, str]]]:
        chain = {"node1": [{"driver": "ipmi", **entry}]}
        (n1,), _store = factory(1, fencing={"enabled": True, "chain": chain},
                                keepalive_interval=0.3)
        lines = [(r.levelno, r.getMessage()) for r in handler.records
                 if r.name == "pvc.fence.node1"]
        return n1, lines

    try:
        yield start
    finally:
        factory.close()
        log.removeHandler(handler)
        log.setLevel(level)


def closed_udp_port() -> int:
    """A loopback UDP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_reachable_bmc_gives_no_warning(sim_bmc: SimBmc, start_node: Any) -> None:
    n1, lines = start_node(sim_bmc.options())
    assert n1.state is DaemonState.RUN
    assert not [m for _level, m in lines if "FENCING WOULD FAIL" in m]
    answers = [m for level, m in lines if level == logging.INFO
               and m.startswith("fence device ipmi of node1 answers:")]
    assert len(answers) == 1 and "power on" in answers[0], lines
    assert sim_bmc.password not in "\n".join(m for _level, m in lines)


def test_unreachable_bmc_is_a_loud_warning(start_node: Any) -> None:
    port = closed_udp_port()
    n1, lines = start_node({"host": "127.0.0.1", "port": port, "username": "admin",
                            "password": "not-logged-anywhere", "timeout": 1, "retries": 0})
    assert n1.state is DaemonState.RUN  # a dead BMC warns; it does not stop the node
    loud = [(level, m) for level, m in lines if "FENCING WOULD FAIL" in m]
    assert len(loud) == 1, lines
    level, message = loud[0]
    assert level == logging.ERROR
    assert message.startswith("FENCING WOULD FAIL for node1: fence device ipmi: ")
    assert f"127.0.0.1:{port}" in message
    assert "not-logged-anywhere" not in "\n".join(m for _level, m in lines)
