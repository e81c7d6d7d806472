"""Drain and undrain as jobs, against daemons in separate processes."""

from __future__ import annotations

import pytest

from pvc_core.ops.flush import plan_flush, request_flush, request_ready
from pvc_core.ops.vms import define_vm
from pvc_core.states import DomainState, VMState
from pvc_core.store import Store
from tests.cluster.conftest import domain_xml, running_on, wait_for

pytestmark = pytest.mark.zookeeper
T = 60


def job(store: Store, job_id: str) -> dict:  # type: ignore[type-arg]
    return store.jobs.get(job_id).value


def finished(store: Store, job_id: str) -> bool:
    return job(store, job_id)["state"] in ("succeeded", "failed", "cancelled")


def test_dry_run_plan_is_the_executed_plan_and_ready_brings_vms_back(store: Store) -> None:
    vms = [define_vm(store, domain_xml(f"fl{i}", 256 * (i + 1)), node="node1", start=True)
           for i in range(4)]
    for vm in vms:
        wait_for(lambda v=vm: v.uuid in running_on(store, "node1"), T, f"{vm.name} running")
    dry = [item.to_dict() for item in plan_flush(store, "node1")]
    assert {d["name"] for d in dry} >= {v.name for v in vms}
    assert all(d["target"] in ("node2", "node3") for d in dry)

    flush = request_flush(store, "node1")
    wait_for(lambda: finished(store, flush["id"]), T, "flush job finished")
    done = job(store, flush["id"])
    assert done["state"] == "succeeded", done
    assert done["plan"] == dry
    assert done["progress"] == {"done": len(dry), "total": len(dry)}
    assert store.nodes.get("node1").value.domain_state is DomainState.FLUSHED
    for item in dry:
        rec = store.vms.get(item["vm"])
        assert rec.placement.node == item["target"] and rec.placement.last_node == "node1"
        wait_for(lambda u=item["vm"], t=item["target"]: u in running_on(store, t), T,
                 f"{item['name']} on {item['target']}")
    wait_for(lambda: not running_on(store, "node1") & {v.uuid for v in vms}, T,
             "node1's keepalive reporting none of them")

    ready = request_ready(store, "node1")
    wait_for(lambda: finished(store, ready["id"]), T, "ready job finished")
    assert job(store, ready["id"])["state"] == "succeeded"
    assert store.nodes.get("node1").value.domain_state is DomainState.READY
    for vm in vms:
        wait_for(lambda v=vm: v.uuid in running_on(store, "node1"), T, f"{vm.name} home")
        assert store.vms.get(vm.uuid).placement.last_node is None


def test_a_second_flush_waits_for_the_first(store: Store) -> None:
    for i in range(3):
        define_vm(store, domain_xml(f"q2-{i}"), node="node2", start=True)
        define_vm(store, domain_xml(f"q3-{i}"), node="node3", start=True)
    wait_for(lambda: len(running_on(store, "node2")) >= 3
             and len(running_on(store, "node3")) >= 3, T, "VMs running")
    first = request_flush(store, "node2")
    second = request_flush(store, "node3")
    wait_for(lambda: finished(store, first["id"]) and finished(store, second["id"]), T,
             "both flushes finished")
    a, b = job(store, first["id"]), job(store, second["id"])
    assert a["state"] == b["state"] == "succeeded", (a, b)
    early, late = sorted((a, b), key=lambda j: j["started"])
    assert early["finished"] <= late["started"], "the two flushes overlapped"
    assert "queued behind" in late.get("message", "") or late["log"] is not None
    # the second flush planned without the first node (it was flushed): all on node1
    assert {item["target"] for item in late["plan"]} == {"node1"}
    for node in ("node2", "node3"):
        r = request_ready(store, node)
        wait_for(lambda r=r: finished(store, r["id"]), T, f"{node} ready")
        assert store.nodes.get(node).value.domain_state is DomainState.READY
    for vm in store.vms.all():
        if vm.name.startswith(("q2-", "q3-")):
            wait_for(lambda v=vm: store.vms.get(v.uuid).state.state is VMState.START, T,
                     "back")
