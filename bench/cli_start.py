"""Benchmark: cold starts of the ``pvc`` executable (one new process per run).

Times ``pvc --help`` (``seconds``: its median; goal < 300 ms) and
``pvc vm list -f json`` against a running API: a private ZooKeeper (unless
--zk-hosts is given) with --vms VMs written straight into the keyspace, and
the API server in this process on a free port; the client reads a temporary
``PVC_CLIENT_CONFIG``. The floor is ``python -c pass`` with the same
interpreter in the same run: the interpreter's own start-up, which no
command can go below.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _api import api_cluster  # noqa: E402
from _cluster import quiet  # noqa: E402
from common import emit, timed_runs  # noqa: E402

from pvc_cli.connections import add_connection  # noqa: E402
from pvc_local.demo import client_env, pvc_argv  # noqa: E402


def runner(argv: list[str], env: dict[str, str],
           check_stdout: bytes | None = None) -> Callable[[], bytes]:
    """A function that runs ``argv`` once (stdout captured) and checks its exit code."""
    def run() -> bytes:
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                              capture_output=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"cli_start: {' '.join(argv)} exited {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace')[-500:]}")
        if check_stdout is not None and check_stdout not in proc.stdout:
            raise SystemExit(f"cli_start: {' '.join(argv)}: {check_stdout!r} not in its output")
        return proc.stdout
    return run


def ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    parser.add_argument("--vms", type=int, default=100, help="VMs in the cluster for vm list")
    parser.add_argument("--zk-hosts", help="use this ZooKeeper instead of a private one")
    args = parser.parse_args()
    quiet()
    pvc = pvc_argv()
    with api_cluster(args.zk_hosts) as bench:
        bench.populate(args.vms, 0)
        bench.serve(args.vms)
        client_config = bench.tmp / "client.yaml"
        add_connection("bench", "127.0.0.1", bench.server.port, bench.key, default=True,
                       path=client_config)
        env = client_env(client_config)
        floor = runner([sys.executable, "-c", "pass"], env)
        help_ = runner([*pvc, "--help"], env, b"vm list")
        last = f"bench{args.vms - 1:05d}".encode() if args.vms else b"[]"
        vm_list = runner([*pvc, "vm", "list", "-f", "json"], env, last)
        for warm in (floor, help_, vm_list):  # page cache and bytecode caches warm
            warm()
        # Interleaved, so that a noisy moment weighs on all three alike.
        floor_s: list[float] = []
        help_s: list[float] = []
        list_s: list[float] = []
        for _ in range(args.runs):
            floor_s += timed_runs(floor, 1)
            help_s += timed_runs(help_, 1)
            list_s += timed_runs(vm_list, 1)
    emit("cli_start", help_s, floor_s, vms=args.vms, help_ms=ms(help_s), list_ms=ms(list_s),
         floor_ms=ms(floor_s), list_samples=[round(s, 6) for s in list_s])
    return 0


if __name__ == "__main__":
    sys.exit(main())
