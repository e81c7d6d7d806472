"""Self-fence: a node cut off from ZooKeeper stops its own VMs, and runs them
again once ZooKeeper is back (their desired state never changed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvc_core.drivers.hypervisor import DomainState
from pvc_core.ops.vms import define_vm
from pvc_local.zookeeper import ZooKeeperServer
from tests.cluster.conftest import DaemonFactory, domain_xml, wait_for

pytestmark = pytest.mark.zookeeper
T = 30


def test_cut_off_node_stops_its_vms(tmp_path: Path) -> None:
    server = ZooKeeperServer(tmp_path / "zk", tick_ms=200)
    server.start()
    factory = DaemonFactory(server, tmp_path)
    try:
        (n1,), store = factory(1, fencing={"enabled": True, "self_fence_after": 1.5},
                               keepalive_interval=0.5)
        assert n1.ctx is not None
        hv = n1.ctx.hv

        def state() -> DomainState | None:
            return next((d.state for d in hv.list_domains() if d.uuid == vm.uuid), None)

        vm = define_vm(store, domain_xml("island"), node="node1", start=True)
        wait_for(lambda: state() is DomainState.RUNNING, T, "running")

        server.stop()  # the node (and everyone) is cut off from ZooKeeper
        wait_for(lambda: n1.self_fence.fenced.is_set(), T, "self-fence")
        assert state() is DomainState.SHUTOFF

        server.start()
        wait_for(lambda: state() is DomainState.RUNNING, 60,
                 "VM running again once ZooKeeper is back")
    finally:
        factory.close()
        server.stop()
