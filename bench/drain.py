"""Benchmark: drain (flush) a node running many VMs, test driver.

--nodes node daemons (objects in this process, libvirt test driver each)
share a private ZooKeeper; --vms VMs run on node1. Measured: from the flush
request to the flush job's success (every VM running elsewhere). Floor, in
the same run: the drivers alone doing the same shutdown migrations (stop and
undefine on the source, define and start on a target) one after another.
Between runs node1 is readied again (its VMs come back) and not measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import domain_xml, new_root, node_config, node_file, quiet  # noqa: E402
from common import emit  # noqa: E402

from pvc_core.daemon import NodeDaemon  # noqa: E402
from pvc_core.drivers.base import DriverContext  # noqa: E402
from pvc_core.ops.flush import request_flush, request_ready  # noqa: E402
from pvc_core.ops.vms import define_vm  # noqa: E402
from pvc_core.states import VMState  # noqa: E402
from pvc_core.store import Store  # noqa: E402
from pvc_local.zookeeper import ZooKeeperServer  # noqa: E402
from pvc_plugins.hypervisor_libvirt.driver import LibvirtHypervisorDriver  # noqa: E402

TIMEOUT = 600.0


def wait(what: str, done: object) -> None:
    end = time.monotonic() + TIMEOUT
    while not done():  # type: ignore[operator]
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.02)


def finished(store: Store, job_id: str) -> str | None:
    state = store.jobs.get(job_id).value["state"]
    return state if state in ("succeeded", "failed", "cancelled") else None


def floor_run(tmp: Path, vms: int, nodes: int) -> float:
    ctx = DriverContext(node="floor")
    src = LibvirtHypervisorDriver({"uri": node_file(tmp / "floor-src.xml", [])}, ctx)
    dsts = [LibvirtHypervisorDriver({"uri": node_file(tmp / f"floor-{i}.xml", [])}, ctx)
            for i in range(nodes - 1)]
    names = [(f"vm{i}", str(uuid.uuid4())) for i in range(vms)]
    for name, u in names:
        src.define(domain_xml(name, u))
        src.start(u)
    start = time.perf_counter()
    for i, (name, u) in enumerate(names):
        src.shutdown(u, timeout=10)
        src.undefine(u)
        dst = dsts[i % len(dsts)]
        dst.define(domain_xml(name, u))
        dst.start(u)
    took = time.perf_counter() - start
    for d in (src, *dsts):
        d.close()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    quiet()
    samples, floors = [], []
    with tempfile.TemporaryDirectory(prefix="pvc-bench-") as tmpdir:
        tmp = Path(tmpdir)
        server = ZooKeeperServer(tmp / "zk")
        server.start()
        root = new_root()
        names = [f"node{i + 1}" for i in range(args.nodes)]
        daemons = []
        try:
            for n in names:
                uri = node_file(tmp / f"{n}.xml", [])
                d = NodeDaemon(node_config(n, names, server.hosts, root, uri, tmp / n))
                d.start()
                daemons.append(d)
            store = Store.connect(server.hosts, root=root)
            vms = [define_vm(store, domain_xml(f"vm{i}", str(uuid.uuid4())), node="node1",
                             start=True) for i in range(args.vms)]
            wait("VMs running", lambda: sum(
                1 for v in store.vms.all() if v.state.state is VMState.START) == args.vms
                and daemons[0].keepalive.collect().get("vms_running") == args.vms)
            for _ in range(args.runs):
                start = time.perf_counter()
                job = request_flush(store, "node1")
                wait("flush", lambda j=job: finished(store, j["id"]))
                samples.append(time.perf_counter() - start)
                assert finished(store, job["id"]) == "succeeded", store.jobs.get(job["id"])
                ready = request_ready(store, "node1")
                wait("ready", lambda j=ready: finished(store, j["id"]))
                wait("VMs home", lambda: all(store.vms.by_uuid(v.uuid).placement.node == "node1"
                                             and store.vms.by_uuid(v.uuid).state.state
                                             is VMState.START for v in vms))
                floors.append(floor_run(tmp, args.vms, args.nodes))
            store.close()
        finally:
            for d in daemons:
                d.stop()
            server.stop()
    emit("drain", samples, floors, vms=args.vms, nodes=args.nodes,
         parallel_limit=8, hypervisor="libvirt test driver (shutdown migration)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
