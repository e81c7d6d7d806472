"""Drain and undrain as jobs, against daemons in separate processes."""

from __future__ import annotations

import pytest

from pvc_core.ops.flush import plan_flush, request_flush, request_ready
from pvc_core.ops.selector import default_selector
from pvc_core.ops.vms import define_vm, set_vm_state
from pvc_core.states import DomainState, VMState
from pvc_core.store import Store
from tests.cluster.conftest import domain_xml, running_on, wait_for
from tests.cluster.flushing import (
    finished,
    job,
    keepalive_seq,
    logged,
    messages,
    takeover_held,
    transition_lock_held,
)

pytestmark = pytest.mark.zookeeper
T = 60


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
    log = messages(done)
    assert log[0].startswith(f"plan: {len(dry)} VMs: "), log
    for item in dry:  # one line per VM, naming where it went
        assert sum(m.startswith(f"{item['name']}: moved to {item['target']} ") for m in log) == 1
    assert log[-1] == done["message"] == f"flushed: {len(dry)} of {len(dry)} VMs moved or stopped"
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
    # The fake hypervisor moves VMs in milliseconds: a held takeover keeps the first
    # flush holding the flush lock (it waits for the takeover after taking the lock)
    # until the second one has queued behind it.
    with takeover_held(store):
        first = request_flush(store, "node2")
        wait_for(lambda: logged(store, first["id"], "waiting for a primary takeover"), T,
                 "the first flush holding the lock")
        second = request_flush(store, "node3")
        wait_for(lambda: logged(store, second["id"], "queued behind the flush/ready of node2"),
                 T, "the second flush queued")
    wait_for(lambda: finished(store, first["id"]) and finished(store, second["id"]), T,
             "both flushes finished")
    a, b = job(store, first["id"]), job(store, second["id"])
    assert a["state"] == b["state"] == "succeeded", (a, b)
    early, late = sorted((a, b), key=lambda j: j["started"])
    assert early["finished"] <= late["started"], "the two flushes overlapped"
    assert (early["id"], late["id"]) == (first["id"], second["id"])
    # the queued line stays in the log after the job ran and finished
    late_log = messages(late)
    assert late_log[0] == "queued behind the flush/ready of node2", late_log
    assert late_log[-1] == late["message"] == "flushed: 3 of 3 VMs moved or stopped"
    assert not any(m.startswith("queued") for m in messages(early)), messages(early)
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


@pytest.mark.parametrize("held_by", ["record", "lock"])
def test_a_flush_waits_while_a_primary_takeover_is_in_progress(store: Store,
                                                               held_by: str) -> None:
    vms = [define_vm(store, domain_xml(f"tk{held_by}{i}"), node="node1", start=True)
           for i in range(2)]
    wait_for(lambda: {v.uuid for v in vms} <= running_on(store, "node1"), T, "VMs running")
    hold = takeover_held if held_by == "record" else transition_lock_held
    with hold(store) as holder:
        flush = request_flush(store, "node1")
        wait_for(lambda: logged(store, flush["id"], "waiting for a primary takeover"), T,
                 "the flush waiting")
        # several keepalives later (a fake migration takes milliseconds), still waiting
        seq = keepalive_seq(store, "node1")
        wait_for(lambda: keepalive_seq(store, "node1") >= seq + 3, T, "three keepalives")
        waiting = job(store, flush["id"])
        assert waiting["state"] == "queued" and waiting["plan"] is None, waiting
        why = f"{holder} is takeover" if held_by == "record" else holder
        assert waiting["message"] == f"waiting for a primary takeover to complete ({why})"
        assert store.nodes.get("node1").value.domain_state is DomainState.FLUSH
        for vm in vms:
            rec = store.vms.get(vm.uuid)
            assert (rec.state.state, rec.placement.node) == (VMState.START, "node1")
    wait_for(lambda: finished(store, flush["id"]), T, "flush finished")
    done = job(store, flush["id"])
    assert done["state"] == "succeeded", done
    log = messages(done)
    assert log[:2] == [f"waiting for a primary takeover to complete ({why})",
                       "the primary takeover completed"], log
    assert log[2].startswith("plan: 2 VMs: "), log
    for vm in vms:
        assert store.vms.get(vm.uuid).placement.node in ("node2", "node3")
    ready = request_ready(store, "node1")
    wait_for(lambda: finished(store, ready["id"]), T, "ready finished")


def test_no_target_stops_the_vm_and_ready_starts_it_with_the_autostart_vms(
        store: Store) -> None:
    moved = define_vm(store, domain_xml("nt-moved"), node="node1", start=True)
    pinned = define_vm(store, domain_xml("nt-pinned"), meta={"node_limit": ["node1"]},
                       node="node1", start=True)
    auto = define_vm(store, domain_xml("nt-auto"), meta={"autostart": True}, node="node1")
    kept_off = define_vm(store, domain_xml("nt-off"), meta={"autostart": True}, node="node1")
    set_vm_state(store, kept_off.uuid, VMState.DISABLE)
    plain = define_vm(store, domain_xml("nt-plain"), node="node1")
    wait_for(lambda: {moved.uuid, pinned.uuid} <= running_on(store, "node1"), T, "running")

    dry = {item.name: item for item in plan_flush(store, "node1")}
    assert set(dry) == {"nt-moved", "nt-pinned"}  # only running VMs are moved
    assert (dry["nt-pinned"].target, dry["nt-pinned"].method) == (None, "stop")
    assert dry["nt-pinned"].reason.startswith("no target: will stop and autostart later")
    assert "node2: not in the VM's node limit" in dry["nt-pinned"].reason

    flush = request_flush(store, "node1")
    wait_for(lambda: finished(store, flush["id"]), T, "flush finished")
    done = job(store, flush["id"])
    assert done["state"] == "succeeded", done
    rec = store.vms.get(pinned.uuid)
    assert rec.state.state is VMState.STOP
    assert (rec.placement.node, rec.placement.wait_for) == ("node1", "node1")
    wait_for(lambda: pinned.uuid not in running_on(store, "node1"), T, "nt-pinned stopped")
    assert any(m.startswith("nt-pinned: stopped (no target: starts again when node1 is "
                            "ready)") for m in messages(done)), messages(done)

    ready = request_ready(store, "node1")
    wait_for(lambda: finished(store, ready["id"]), T, "ready finished")
    back = job(store, ready["id"])
    assert back["state"] == "succeeded", back
    # phases in order: back home, then what waited for this node, then autostart
    assert [(i["name"], i["method"], i["reason"]) for i in back["plan"]] == [
        ("nt-moved", "unmigrate", "returns home"),
        ("nt-pinned", "autostart", "waited for this node"),
        ("nt-auto", "autostart", "autostart is set")]
    log = messages(back)
    assert log[0] == "plan: 1 to bring back, 1 waiting for node1, 1 to autostart", log
    assert [m.split(":")[0] for m in log[1:4]] == ["nt-moved", "nt-pinned", "nt-auto"], log
    assert log[-1] == back["message"] == "ready: 3 of 3 VMs back or started"
    for vm in (moved, pinned, auto):
        wait_for(lambda v=vm: v.uuid in running_on(store, "node1"), T, f"{vm.name} on node1")
        rec = store.vms.get(vm.uuid)
        assert (rec.state.state, rec.placement.node, rec.placement.wait_for) == (
            VMState.START, "node1", None)
    assert store.vms.get(kept_off.uuid).state.state is VMState.DISABLE  # "keep it off"
    assert store.vms.get(plain.uuid).state.state is VMState.STOP  # no autostart
    assert not {kept_off.uuid, plain.uuid} & running_on(store, "node1")


def test_the_cluster_default_selector_is_seeded_from_the_daemons_config(store: Store) -> None:
    # the daemons seeded it at start (their migration.default_selector: the default, mem)
    assert store.cluster.get_config().value["default_selector"] == "mem"
    assert default_selector(store) == "mem"
