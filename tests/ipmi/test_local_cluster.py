"""BMC fencing in the local cluster: real node daemons, one simulated BMC each.

Powering node2 off through the ``ipmi`` fence driver (the way the primary
fences) kills node2's daemon, and only it; powering it on makes the BMC run
``pvc-local restart node2``, which brings node2 back to ``run``.
"""

from __future__ import annotations

import importlib.util
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc_core.config import load_config
from pvc_core.drivers.fence import PowerState
from pvc_local import cli, procs
from pvc_local.cluster import LocalCluster
from pvc_local.power import fence_driver
from pvc_local.status import running_as

from .conftest import wait_for

if importlib.util.find_spec("pvc_core.daemon.__main__") is None:
    pytest.skip("pvc_core.daemon has no __main__ yet", allow_module_level=True)

pytestmark = pytest.mark.zookeeper


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "c")
    try:
        yield c
    finally:
        c.down(timeout=15)


def runs_as_recorded(cluster: LocalCluster, node: str) -> bool:
    """The node is ``run``, written by the process the record names now, which is alive."""
    entry = cluster.record().node(node)
    if entry.process is None or not procs.is_running(entry.process):
        return False
    store = cluster.store()
    try:
        return running_as(store, node, entry.process.pid)
    finally:
        store.close()


def test_power_off_kills_the_node_and_power_on_restarts_it(
        cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    state = cluster.up(nodes=2, hypervisor="fake", wait=90)
    assert [b.node for b in state.bmcs] == ["node1", "node2"]
    config = load_config(state.node("node1").config)
    assert config.fencing.enabled
    for node in ("node1", "node2"):
        (entry,) = config.fencing.chain[node]
        assert entry.driver == "ipmi"
        assert entry.options["port"] == state.bmc(node).port
        password_file = Path(entry.options["password_file"])
        assert password_file.is_relative_to(cluster.directory)
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600

    node1, node2 = state.node("node1").process, state.node("node2").process
    assert node1 is not None and node2 is not None
    driver = fence_driver(state.bmc("node2"))
    assert driver.validate().ok
    assert driver.power_status(10) is PowerState.ON

    driver.power_off(30)  # proved off
    assert procs.proc_state(node2) is procs.ProcState.DEAD
    rows = {r.name: r.process for r in cluster.status()}
    assert rows == {"node1": "alive", "node2": "dead"}
    assert driver.power_status(10) is PowerState.OFF

    driver.power_on(10)
    assert driver.power_status(10) is PowerState.ON
    wait_for(lambda: cluster.record().node("node2").process != node2
             and runs_as_recorded(cluster, "node2"), 90, "node2 back in run")
    assert cluster.record().node("node1").process == node1 and procs.is_running(node1)

    # The same through the CLI: pvc-local power NODE status|off.
    d = str(cluster.directory)
    assert cli.main(["--dir", d, "power", "node1", "status"]) == 0
    assert capsys.readouterr().out.strip() == "node1: power on"
    assert cli.main(["--dir", d, "power", "node1", "off"]) == 0
    assert capsys.readouterr().out.startswith("node1: power off (proved off")
    assert procs.proc_state(node1) is procs.ProcState.DEAD
    assert cli.main(["--dir", d, "power", "node9", "status"]) == 1
    assert "no node 'node9'" in capsys.readouterr().err

    bmcs = [b.process for b in cluster.record().bmcs]
    cluster.down(timeout=15)
    assert bmcs and not any(procs.is_running(r) for r in bmcs)
    assert all(b.process is None for b in cluster.record().bmcs)


def test_no_bmcs_when_disabled(cluster: LocalCluster) -> None:
    state = cluster.up(nodes=1, hypervisor="fake", wait=90, bmc=False)
    assert state.bmcs == ()
    config = load_config(state.node("node1").config)
    assert not config.fencing.enabled
