"""Self-fence: a node cut off from ZooKeeper acts on its own once
``self_fence_after`` has passed: ``stop-vms`` stops its VMs (they run again
once ZooKeeper is back: their desired state never changed), ``command`` runs
the configured argument list, ``none`` only logs and leaves them running."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.ops.vms import define_vm
from pvc_local.zookeeper import ZooKeeperServer
from tests.cluster.conftest import DaemonFactory, domain_xml, wait_for

pytestmark = pytest.mark.zookeeper
T = 30

#: Writes its arguments, one per line, to the file named by the first.
RECORD_ARGV = "import sys; open(sys.argv[1], 'w').write('\\n'.join(sys.argv[2:]))"


@contextmanager
def lone_node(tmp_path: Path, **fencing: Any) -> Iterator[tuple[ZooKeeperServer, NodeDaemon,
                                                                 str]]:
    """A one-node cluster on its own ZooKeeper (the test stops it), with one VM running."""
    server = ZooKeeperServer(tmp_path / "zk", tick_ms=200)
    server.start()
    factory = DaemonFactory(server, tmp_path)
    try:
        (n1,), store = factory(1, fencing={"enabled": True, "self_fence_after": 1.5,
                                           **fencing}, keepalive_interval=0.5)
        vm = define_vm(store, domain_xml("island"), node="node1", start=True)
        wait_for(lambda: state(n1, vm.uuid) is DomainState.RUNNING, T, "running")
        yield server, n1, vm.uuid
    finally:
        if not server.running():
            server.start()  # back for a clean shutdown
        factory.close()
        server.stop()


def state(node: NodeDaemon, uuid: str) -> DomainState | None:
    assert node.ctx is not None
    return next((d.state for d in node.ctx.hv.list_domains() if d.uuid == uuid), None)


def test_cut_off_node_stops_its_vms(tmp_path: Path) -> None:
    with lone_node(tmp_path) as (server, n1, vm):
        server.stop()  # the node (and everyone) is cut off from ZooKeeper
        wait_for(lambda: n1.self_fence.fenced.is_set(), T, "self-fence")
        assert state(n1, vm) is DomainState.SHUTOFF

        server.start()
        wait_for(lambda: state(n1, vm) is DomainState.RUNNING, 60,
                 "VM running again once ZooKeeper is back")


def test_self_fence_command_runs_the_configured_argv(tmp_path: Path) -> None:
    out = tmp_path / "self-fence ran"  # a space: an argument list, never a shell line
    argv = [sys.executable, "-c", RECORD_ARGV, str(out), "two words", "$HOME;true"]
    with lone_node(tmp_path, self_fence_action="command", self_fence_command=argv) as (
            server, n1, vm):
        assert not out.exists()
        server.stop()
        wait_for(lambda: n1.self_fence.fenced.is_set(), T, "self-fence")
        assert out.read_text().split("\n") == ["two words", "$HOME;true"]
        assert state(n1, vm) is DomainState.RUNNING  # the command is the whole action


def test_self_fence_none_leaves_the_vms_running(tmp_path: Path) -> None:
    with lone_node(tmp_path, self_fence_action="none") as (server, n1, vm):
        server.stop()
        wait_for(lambda: n1.self_fence.fenced.is_set(), T, "self-fence")
        assert state(n1, vm) is DomainState.RUNNING
