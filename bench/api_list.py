"""Benchmark: ``GET /api/v1/vm`` latency (p50, p99) against the raw ZooKeeper read.

Starts a private ZooKeeper (unless --zk-hosts is given), writes --vms VMs
(for each size in the list) straight into the keyspace, starts the API server
in this process on a free port, and times --requests sequential list requests
over HTTP (keep-alive off, as the CLI does), both as served from the memo
of an unchanged cluster and "cold" (the memo cleared before each request, as
after any change; ``seconds`` is the cold figure). The floor is the raw read of the
same znodes (three per VM, pipelined kazoo reads, no decoding) in the same run:
what any server that read ZooKeeper per request would pay at least.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import quiet, zookeeper  # noqa: E402
from common import emit, timed_runs  # noqa: E402

from pvc_api.auth import hash_key, new_key  # noqa: E402
from pvc_api.server import ApiServer  # noqa: E402
from pvc_core.config import parse_config  # noqa: E402
from pvc_core.keyspace import Keyspace  # noqa: E402
from pvc_core.states import VMState  # noqa: E402
from pvc_core.store import Store  # noqa: E402
from pvc_core.store.codec import encode  # noqa: E402
from pvc_core.store.records import Placement, VmMeta, VmStateRecord  # noqa: E402
from pvc_core.store.zk import Op, ZkClient  # noqa: E402

BATCH = 200  # VMs per transaction while populating


def populate(store: Store, count: int, start: int) -> None:
    """Write ``count`` VMs (as VmRepository.define would), BATCH per transaction."""
    ks = store.ks
    ops: list[Op] = []
    for i in range(start, start + count):
        u, name = str(uuid.uuid4()), f"bench{i:05d}"
        ops += [Op.create(ks.vm(u), encode({"name": name, "meta": VmMeta(tags=("b",)).to_dict(),
                                            "resources": {"memory_mib": 512, "vcpus": 1}})),
                Op.create(ks.vm_state(u), encode(VmStateRecord(VMState.STOP).to_dict())),
                Op.create(ks.vm_placement(u), encode(Placement("node1").to_dict())),
                Op.create(ks.vm_xml(u), b"<domain/>"),
                Op.create(ks.vm_name(name), u.encode())]
        if len(ops) >= BATCH * 5:
            store.zk.transaction(ops)
            ops = []
    if ops:
        store.zk.transaction(ops)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", default="1000,5000", help="comma-separated sizes")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--zk-hosts", help="use this ZooKeeper instead of a private one")
    args = parser.parse_args()
    sizes = sorted(int(v) for v in args.vms.split(","))
    quiet()
    key = new_key()
    results: dict[str, dict[str, float]] = {}
    samples: list[float] = []
    floor_samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pvc-bench-") as tmp, \
            zookeeper(Path(tmp), args.zk_hosts) as hosts:
        root = f"/bench-{uuid.uuid4().hex[:8]}"
        zk = ZkClient(hosts, op_timeout=60)
        zk.start()
        store = Store(zk, Keyspace(root))
        store.schema.initialise()
        config = parse_config({
            "cluster": {"name": "bench", "nodes": ["node1"], "coordinators": ["node1"]},
            "node": {"name": "node1"},
            "zookeeper": {"hosts": hosts.split(","), "root": root},
            "hypervisor": {"enabled": True, "driver": "fake"},
            "api": {"keys": [{"name": "bench", "hash": hash_key(key), "role": "read-only"}]},
        })
        server = ApiServer(config, port=0, threads=4)
        defined = 0
        try:
            for size in sizes:
                populate(store, size - defined, defined)
                defined = size
                if server.cache is None:
                    server.start()
                assert server.cache is not None
                server.cache.wait_for(lambda s=size: len(server.cache.vms()) == s, 120)
                request = urllib.request.Request(f"{server.url}/api/v1/vm",
                                                 headers={"X-Api-Key": key})

                def get(s: int = size, r: urllib.request.Request = request) -> None:
                    with urllib.request.urlopen(r, timeout=60) as answer:
                        body = answer.read()
                    assert body.count(b'"uuid"') == s

                paths = [p for u in store.vms.uuids()
                         for p in (store.ks.vm(u), store.ks.vm_state(u),
                                   store.ks.vm_placement(u))]

                def floor(p: list[str] = paths) -> None:
                    for result in [zk.kazoo.get_async(x) for x in p]:
                        result.get(timeout=60)

                get()  # warm up (the first list of a generation builds the memo)
                floor()
                lat = timed_runs(get, args.requests)
                assert server.ctx is not None
                memo = server.ctx.memo

                def get_cold(memo: dict = memo) -> None:  # type: ignore[type-arg]
                    memo.clear()  # as after any change in the cluster: rebuild the list
                    get()

                cold = timed_runs(get_cold, args.requests)
                raw = timed_runs(floor, max(5, args.requests // 5))
                results[str(size)] = {
                    "p50_ms": round(statistics.median(lat) * 1000, 2),
                    "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
                    "cold_p50_ms": round(statistics.median(cold) * 1000, 2),
                    "cold_p99_ms": round(percentile(cold, 0.99) * 1000, 2),
                    "floor_p50_ms": round(statistics.median(raw) * 1000, 2),
                    "floor_p99_ms": round(percentile(raw, 0.99) * 1000, 2),
                }
                samples, floor_samples = cold, raw
        finally:
            server.stop()
            zk.delete_tree(root)
            zk.stop()
    emit("api_list", samples, floor_samples, vms=sizes[-1], requests=args.requests,
         by_size=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
