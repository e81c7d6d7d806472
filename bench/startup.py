"""Benchmark: node daemon start to ``run`` with many VMs defined.

--vms VMs are defined in the cluster, --running of them assigned to this node
and already running in its (libvirt test driver) hypervisor, as after a
daemon restart; the rest are assigned to another node and stopped. Measured:
``NodeDaemon.start()`` until state ``run`` (every VM reconciled once: leases
taken for the running ones). Floor, in the same run: the driver alone
defining and starting the same number of domains.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import (  # noqa: E402
    domain_xml,
    new_root,
    node_config,
    node_file,
    quiet,
    zookeeper,
)
from common import emit  # noqa: E402

from pvc_core.daemon import NodeDaemon  # noqa: E402
from pvc_core.drivers.base import DriverContext  # noqa: E402
from pvc_core.keyspace import Keyspace  # noqa: E402
from pvc_core.states import VMState  # noqa: E402
from pvc_core.store import Store  # noqa: E402
from pvc_core.store.zk import ZkClient  # noqa: E402
from pvc_plugins.hypervisor_libvirt.driver import LibvirtHypervisorDriver  # noqa: E402


def one_run(tmp: Path, hosts: str, vms: int, running: int) -> tuple[float, float]:
    root = new_root()
    zk = ZkClient(hosts, op_timeout=60)
    zk.start()
    store = Store(zk, Keyspace(root))
    store.schema.initialise()
    mine: list[tuple[str, str]] = []
    for i in range(vms):
        u, name = str(uuid.uuid4()), f"vm{i}"
        here = i < running
        store.vms.define(u, name, domain_xml(name, u), node="node1" if here else "node2",
                         state=VMState.START if here else VMState.STOP, memory_mib=64, vcpus=1)
        if here:
            mine.append((name, u))
    zk.stop()
    run_dir = tmp / root.strip("/")
    run_dir.mkdir()
    uri = node_file(run_dir / "node1.xml", mine)
    daemon = NodeDaemon(node_config("node1", ["node1", "node2"], hosts, root, uri,
                                    run_dir / "state"))
    start = time.perf_counter()
    daemon.start()
    measured = time.perf_counter() - start
    assert daemon.vms.restarts.expected_running(mine[0][1]), "VMs were not adopted"
    daemon.stop()

    driver = LibvirtHypervisorDriver({"uri": node_file(run_dir / "floor.xml", [])},
                                     DriverContext(node="floor"))
    start = time.perf_counter()
    for name, u in mine:
        driver.define(domain_xml(name, u))
        driver.start(u)
    floor = time.perf_counter() - start
    driver.close()
    return measured, floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--running", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--zk-hosts")
    args = parser.parse_args()
    quiet()
    samples, floors = [], []
    with tempfile.TemporaryDirectory(prefix="pvc-bench-") as tmp, \
            zookeeper(Path(tmp), args.zk_hosts) as hosts:
        for _ in range(args.runs):
            m, f = one_run(Path(tmp), hosts, args.vms, args.running)
            samples.append(m)
            floors.append(f)
    emit("startup", samples, floors, vms=args.vms, running=args.running,
         hypervisor="libvirt test driver")
    return 0


if __name__ == "__main__":
    sys.exit(main())
