"""The demo: a 3-node local cluster, 6 VMs, a drain of node1 and its return.

Until the ``pvc`` CLI exists the demo drives the cluster through the core
operations (the same calls the API will make): define and start VMs, show
where they run, flush node1 with its plan and progress, ready it again, show
the result, and stop the cluster (when the demo started it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pvc_core.ops.flush import plan_flush, request_flush, request_ready
from pvc_core.ops.vms import define_vm
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_local.cluster import LocalCluster

VM_COUNT = 6
STEP_TIMEOUT = 120.0
POLL = 0.2

Out = Callable[[str], None]


def _vm_xml(i: int) -> str:
    return (f"<domain type='test'><name>demo{i}</name>"
            f"<memory unit='MiB'>{256 * (1 + i % 3)}</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


def _table(store: Store) -> str:
    rows = [("VM", "STATE", "NODE", "LAST NODE", "MEMORY")]
    for vm in sorted(store.vms.all(), key=lambda v: v.name):
        rows.append((vm.name, vm.state.state.value, vm.placement.node or "-",
                     vm.placement.last_node or "-", f"{vm.memory_mib} MiB"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _wait(what: str, done: Callable[[], bool], out: Out) -> None:
    end = time.monotonic() + STEP_TIMEOUT
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"demo: {what} did not happen within {STEP_TIMEOUT:g}s")
        time.sleep(POLL)


def _follow_job(store: Store, job_id: str, out: Out) -> dict[str, Any]:
    seen = None
    end = time.monotonic() + STEP_TIMEOUT
    while True:
        job = store.jobs.get(job_id).value
        progress = (job["state"], job["progress"]["done"], job["progress"]["total"])
        if progress != seen:
            out(f"  job {job['kind']}: {job['state']} "
                f"{job['progress']['done']}/{job['progress']['total']}"
                + (f" ({job['message']})" if job.get("message") else ""))
            seen = progress
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        if time.monotonic() > end:
            raise TimeoutError(f"demo: job {job_id} did not finish within {STEP_TIMEOUT:g}s")
        time.sleep(POLL)


def run_demo(cluster: LocalCluster, *, hypervisor: str = "test", out: Out = print) -> int:
    """Run the demo; return 0 when every step did what it should."""
    started = False
    if not cluster.is_up():
        out(f"== starting a 3-node local cluster in {cluster.directory} "
            f"(hypervisor {hypervisor})")
        cluster.up(nodes=3, hypervisor=hypervisor, wait=90)
        started = True
    store = cluster.store()
    try:
        return _scenes(store, out)
    finally:
        store.close()
        if started:
            out("== stopping the local cluster")
            cluster.down()


def _scenes(store: Store, out: Out) -> int:
    out(f"== defining and starting {VM_COUNT} VMs")
    vms = [define_vm(store, _vm_xml(i), start=True, by="demo") for i in range(VM_COUNT)]
    _wait("VMs placed", lambda: all(store.vms.get(v.uuid).state.state is VMState.START
                                    for v in vms), out)
    out(_table(store))

    out("== draining node1: the plan (dry run)")
    plan = plan_flush(store, "node1")
    for item in plan:
        out(f"  {item.name} -> {item.target or 'stop'} ({item.method}): {item.reason}")
    out("== draining node1")
    job = _follow_job(store, request_flush(store, "node1", by="demo")["id"], out)
    out(_table(store))
    if job["state"] != "succeeded" or any(v.placement.node == "node1" and
                                          v.state.state is VMState.START
                                          for v in store.vms.all()):
        out("demo: the drain did not empty node1")
        return 1

    out("== readying node1: its VMs come back")
    job = _follow_job(store, request_ready(store, "node1", by="demo")["id"], out)
    out(_table(store))
    back = {item.vm for item in plan if item.target}
    home = {v.uuid for v in store.vms.all() if v.placement.node == "node1"}
    if job["state"] != "succeeded" or not back <= home:
        out("demo: not every VM came back to node1")
        return 1
    out("== demo finished: node1 was drained and readied, and every VM is running")
    return 0
