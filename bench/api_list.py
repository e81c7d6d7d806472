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
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _api import api_cluster  # noqa: E402
from _cluster import quiet  # noqa: E402
from common import emit, timed_runs  # noqa: E402


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
    results: dict[str, dict[str, float]] = {}
    samples: list[float] = []
    floor_samples: list[float] = []
    with api_cluster(args.zk_hosts) as bench:
        store, server = bench.store, bench.server
        defined = 0
        for size in sizes:
            bench.populate(size - defined, defined)
            defined = size
            bench.serve(size)
            request = urllib.request.Request(f"{server.url}/api/v1/vm",
                                             headers={"X-Api-Key": bench.key})

            def get(s: int = size, r: urllib.request.Request = request) -> None:
                with urllib.request.urlopen(r, timeout=60) as answer:
                    body = answer.read()
                assert body.count(b'"uuid"') == s

            paths = [p for u in store.vms.uuids()
                     for p in (store.ks.vm(u), store.ks.vm_state(u),
                               store.ks.vm_placement(u))]

            def floor(p: list[str] = paths) -> None:
                for result in [store.zk.kazoo.get_async(x) for x in p]:
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
    emit("api_list", samples, floor_samples, vms=sizes[-1], requests=args.requests,
         by_size=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
