"""Benchmark: read every VM record through the store vs raw kazoo reads.

Starts a private ZooKeeper (unless --zk-hosts is given), defines --vms VMs,
then times ``store.vms.all()`` (pipelined reads, decoding, records) against
the floor: the same znodes read with kazoo's async API and no decoding.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import zookeeper  # noqa: E402
from common import emit, timed_runs  # noqa: E402

from pvc_core.keyspace import Keyspace  # noqa: E402
from pvc_core.store import Store  # noqa: E402
from pvc_core.store.zk import ZkClient  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--zk-hosts", help="use this ZooKeeper instead of a private one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pvc-bench-") as tmp, \
            zookeeper(Path(tmp), args.zk_hosts) as hosts:
        root = f"/bench-{uuid.uuid4().hex[:8]}"
        zk = ZkClient(hosts, op_timeout=60)
        zk.start()
        try:
            store = Store(zk, Keyspace(root))
            store.schema.initialise()
            for i in range(args.vms):
                store.vms.define(str(uuid.uuid4()), f"vm{i}", "<domain/>")
            uuids = store.vms.uuids()
            paths = [p for u in uuids for p in
                     (store.ks.vm(u), store.ks.vm_state(u), store.ks.vm_placement(u))]

            def floor() -> None:
                for result in [zk.kazoo.get_async(p) for p in paths]:
                    result.get(timeout=60)

            def measured() -> None:
                assert len(store.vms.all()) == args.vms

            measured()  # warm up both paths once
            floor()
            samples = timed_runs(measured, args.runs)
            floor_samples = timed_runs(floor, args.runs)
        finally:
            zk.delete_tree(root)
            zk.stop()
    emit("store_list", samples, floor_samples, vms=args.vms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
