"""The N-1 reserve fault, raised and cleared by the primary of a 3-node local cluster.

Each node's fake hypervisor reports 4096 MiB, so the cluster keeps its N-1
reserve while its running VMs need at most 8192 MiB (what two nodes have).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pvc_core.daemon.reserve import FAULT_KIND, FAULT_SUBJECT
from pvc_core.ops.vms import define_vm, set_vm_state
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_core.store.faults import fault_id
from pvc_local.cluster import LocalCluster
from tests.cluster.conftest import domain_xml, running_on, wait_for

pytestmark = pytest.mark.zookeeper
T = 30
NODE_MIB = 4096


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Overrides conftest's: nodes small enough for a few VMs to use up the reserve."""
    c = LocalCluster(tmp_path_factory.mktemp("reserve"))
    c.up(nodes=3, hypervisor="fake", node_memory_mib=NODE_MIB, wait=90, bmc=False)
    yield c
    c.down(timeout=30)


def reserve_fault(store: Store) -> dict[str, Any] | None:
    return next((f for f in store.faults.all() if f["kind"] == FAULT_KIND), None)


def reserve_decisions(store: Store) -> list[Any]:
    return [d for d in store.decisions.query() if d.kind == "n-minus-one"]


def test_reserve_fault_is_raised_when_the_cluster_cannot_lose_a_node_and_cleared_after(
        store: Store) -> None:
    assert reserve_fault(store) is None
    vms = [define_vm(store, domain_xml(f"big{i}", 3000), node=f"node{i}", start=True)
           for i in (1, 2, 3)]
    for i, vm in enumerate(vms, 1):
        wait_for(lambda n=f"node{i}", v=vm.uuid: v in running_on(store, n), T,
                 f"big{i} running")

    # 3 x 3000 MiB running; losing a 4096 MiB node leaves 2 x 4096 = 8192 MiB
    fault = wait_for(lambda: reserve_fault(store), T, "the N-1 fault")
    assert fault["id"] == fault_id(FAULT_KIND, FAULT_SUBJECT)
    assert (fault["subject"], fault["severity"]) == ("cluster", "warning")
    assert "need 9000 MiB" in fault["message"] and "have 8192 MiB" in fault["message"]
    primary = store.cluster.get_primary().value
    # the decision is written just after the fault
    lost = wait_for(lambda: reserve_decisions(store), T, "the reserve-lost decision")
    assert [(d.outcome, d.by) for d in lost] == [("reserve lost", primary)]
    assert lost[0].inputs == {"needed_mib": 9000, "available_mib": 8192,
                              "largest_node": "node3"}

    set_vm_state(store, "big3", VMState.STOP)  # 6000 MiB left running: the reserve is back
    wait_for(lambda: reserve_fault(store) is None, T, "the N-1 fault cleared")
    restored = wait_for(lambda: reserve_decisions(store)[1:], T,
                        "the reserve-restored decision")
    assert [d.outcome for d in restored] == ["reserve restored"]
    assert restored[0].inputs["needed_mib"] == 6000
