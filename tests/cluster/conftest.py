"""Fixtures for node-daemon tests against real ZooKeeper and real daemons.

``cluster``: a 3-node local cluster, one daemon process per node (the
``fake`` in-memory hypervisor in each), shared by a test module; each test
defines its own VMs and removes them. ``hv_cluster``: a 2-node local
cluster (one process per node) whose fake hypervisors a test drives from
outside through their control sockets (``hv_control``: crash a guest, hang
its shutdown, start a VM by hand on the wrong node), with ``hv_store``.
``daemons``: node daemons as objects in the test process, for the tests
that need a daemon configured apart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pvc_core.config import parse_config
from pvc_core.daemon import NodeDaemon
from pvc_core.ops.view import reported_running as running_on
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_local.cluster import LocalCluster
from pvc_local.zookeeper import ZooKeeperServer
from pvc_plugins.fake.control import FakeHypervisorControl
from pvc_plugins.fake.fence import BMC_REGISTRY_KEY, FakeBmcRegistry

POLL = 0.05


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = predicate()
        if last:
            return last
        time.sleep(POLL)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


def domain_xml(name: str, memory_mib: int = 256, vcpus: int = 1) -> str:
    return (f"<domain type='test'><name>{name}</name><uuid>{uuid.uuid4()}</uuid>"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("cluster"))
    c.up(nodes=3, hypervisor="fake", wait=90, bmc=False)  # lifecycle, not fencing
    yield c
    c.down(timeout=30)


@pytest.fixture
def store(cluster: LocalCluster) -> Iterator[Store]:
    s = cluster.store()
    before = set(s.vms.uuids())
    yield s
    for vm in set(s.vms.uuids()) - before:  # leave the cluster as the test found it
        s.vms.set_state(vm, VMState.STOP, "test cleanup")
        wait_for(lambda v=vm: all(v not in running_on(s, n) for n in s.nodes.names()),
                 30, f"{vm} stopped")
        s.vms.remove(vm)
    s.close()


@pytest.fixture(scope="module")
def zk_for_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    server = ZooKeeperServer(tmp_path_factory.mktemp("zk"), tick_ms=200)
    server.start()
    yield server
    server.stop()


class DaemonFactory:
    """Makes NodeDaemon objects on a fresh ZooKeeper root, sharing fake BMCs.

    :param hypervisor: options of the fake hypervisor (over ``memory_mib: 8192``).
    :param extras: driver extras shared by every daemon (beside the BMC registry).
    """

    def __init__(self, zk: ZooKeeperServer, tmp_path: Path,
                 hypervisor: dict[str, Any] | None = None,
                 extras: dict[str, Any] | None = None) -> None:
        self.zk = zk
        self.tmp_path = tmp_path
        self.started: list[NodeDaemon] = []
        self.stores: list[Store] = []
        self.bmcs = FakeBmcRegistry()
        self.hypervisor = {"memory_mib": 8192, **(hypervisor or {})}
        self.extras = {BMC_REGISTRY_KEY: self.bmcs, **(extras or {})}

    def __call__(self, nodes: int = 2, migration: dict[str, Any] | None = None,
                 fencing: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                 **timers: Any) -> tuple[list[NodeDaemon], Store]:
        root = f"/pvc-{uuid.uuid4().hex[:8]}"
        names = [f"node{i + 1}" for i in range(nodes)]
        base_timers = {"keepalive_interval": 0.5, "vm_shutdown_timeout": 5,
                       "restart_backoff": 0.2}
        base_timers.update(timers)
        made = []
        for name in names:
            cfg = parse_config({
                "node": {"name": name, "state_dir": str(self.tmp_path / name)},
                "cluster": {"nodes": names},
                "zookeeper": {"hosts": [self.zk.hosts], "root": root, "session_timeout": 4},
                "timers": base_timers, "fencing": fencing or {"enabled": False},
                "migration": migration or {},
                "hypervisor": {"driver": "fake", "fake": dict(self.hypervisor)},
                **(extra or {})})
            d = NodeDaemon(cfg, driver_extras=dict(self.extras))
            d.start()
            self.started.append(d)
            made.append(d)
        s = Store.connect(self.zk.hosts, root=root)
        self.stores.append(s)
        return made, s

    def close(self) -> None:
        for d in self.started:
            d.stop(timeout=20)
        for s in self.stores:
            s.close()


@pytest.fixture
def daemons(zk_for_daemons: ZooKeeperServer, tmp_path: Path) -> Iterator[DaemonFactory]:
    """Start node daemon objects on a fresh ZooKeeper root; all stopped afterwards."""
    factory = DaemonFactory(zk_for_daemons, tmp_path)
    yield factory
    factory.close()


#: Timers of ``hv_cluster``: quick crash restarts (2 tries) and a short shutdown timeout.
HV_TIMERS = {"keepalive_interval": 0.5, "vm_shutdown_timeout": 6, "restart_max_tries": 2,
             "restart_backoff": 0.3}
#: Each ``hv_cluster`` node's fake-hypervisor control socket, in its state directory.
HV_CONTROL_SOCKET = "hv-control.sock"


@pytest.fixture(scope="module")
def hv_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 2-node local cluster, one ``pvcnoded`` process per node, whose fake
    hypervisors a test drives through their control sockets (``hv_control``)."""
    c = LocalCluster(tmp_path_factory.mktemp("hvcluster"))
    c.up(nodes=2, hypervisor="fake", wait=90, bmc=False, config_overrides={
        "timers": HV_TIMERS, "hypervisor": {"fake": {"control_socket": HV_CONTROL_SOCKET}}})
    yield c
    c.down(timeout=30)


@pytest.fixture
def hv_control(hv_cluster: LocalCluster) -> Callable[[str], FakeHypervisorControl]:
    """``hv_control("node1")``: a client of that node daemon's fake hypervisor."""

    def control(node: str) -> FakeHypervisorControl:
        state_dir = Path(hv_cluster.record().node(node).state_dir)
        return FakeHypervisorControl(state_dir / HV_CONTROL_SOCKET)

    return control


@pytest.fixture
def hv_store(hv_cluster: LocalCluster) -> Iterator[Store]:
    """A store on ``hv_cluster``; the VMs a test defined are stopped and removed after it."""
    s = hv_cluster.store()
    before = set(s.vms.uuids())
    yield s
    for vm in set(s.vms.uuids()) - before:
        s.vms.set_state(vm, VMState.STOP, "test cleanup")
        wait_for(lambda v=vm: all(v not in running_on(s, n) for n in s.nodes.names()),
                 30, f"{vm} stopped")
        s.vms.remove(vm)
    s.close()
