"""``pvc-local``: start, inspect, break and stop a local PVC cluster.

Every command works on the cluster directory ``--dir`` (default
``$PVC_LOCAL_DIR``, else ``./.pvc-local``); see ``docs/local-cluster.md``.
Errors are one line on stderr and a non-zero exit code (1: the operation
failed, 2: bad arguments, 130: interrupted); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from pvc_core.errors import PVCError
from pvc_local import configgen, connection, launch
from pvc_local.cluster import LocalCluster, LocalClusterError
from pvc_local.power import ACTIONS as POWER_ACTIONS
from pvc_local.state import StateError, load_state
from pvc_local.status import ApiStatus, NodeStatus
from pvc_local.zookeeper import ZooKeeperError

PROG = "pvc-local"
#: Failures reported as one line (anything else is a bug: traceback).
EXPECTED = (LocalClusterError, StateError, PVCError, ZooKeeperError, OSError)
COLUMNS = (("NODE", "name"), ("PID", "pid"), ("PROCESS", "process"),
           ("DAEMON", "daemon_state"), ("COORDINATOR", "coordinator_state"),
           ("DOMAIN", "domain_state"), ("VMS", "vms"))


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def build_parser() -> OneLineParser:
    """The argument parser (``--dir`` and ``--debug`` work before or after the command)."""
    common = OneLineParser(add_help=False)
    common.add_argument("--dir", type=Path, default=argparse.SUPPRESS,
                        help=f"cluster directory (default: ${launch.DIR_ENV}, "
                             f"else ./{launch.DEFAULT_DIR})")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logging")
    parser = OneLineParser(prog=PROG, parents=[common],
                           description="Start, inspect, break and stop a local PVC cluster.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", parents=[common], help="start ZooKeeper and N node daemons")
    up.add_argument("--nodes", type=positive_int, default=3, help="number of nodes (3)")
    up.add_argument("--hypervisor", choices=configgen.HYPERVISORS, default="test",
                    help="test: libvirt test driver (default); fake: in-memory, no libvirt; "
                         "qemu: a real libvirtd per node in its own namespaces")
    up.add_argument("--memory", type=positive_int, default=16384, metavar="MIB",
                    help="memory of each simulated node in MiB (16384)")
    up.add_argument("--cpus", type=positive_int, default=8, help="CPUs of each node (8)")
    up.add_argument("--coordinators", type=positive_int, default=configgen.MAX_COORDINATORS,
                    help="coordinators: the first N nodes (3)")
    up.add_argument("--in-process", action="store_true",
                    help="run every node daemon in ONE process (scale runs; kill/hang then "
                         "hit all nodes)")
    up.add_argument("--wait", type=positive_float, default=60.0, metavar="SECONDS",
                    help="how long to wait for every node to reach run (60)")
    up.add_argument("--zk-members", type=positive_int, default=1, metavar="N",
                    help="ZooKeeper: 1 server (default) or an ensemble of N members (odd)")
    up.add_argument("--no-api", dest="api", action="store_false",
                    help="start no API servers (and register no pvc connection 'local')")

    down = sub.add_parser("down", parents=[common], help="stop everything (idempotent)")
    down.add_argument("--purge", action="store_true",
                      help="also remove the cluster's files (logs, configs, ZooKeeper data)")
    down.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDS",
                      help="grace period after SIGTERM before SIGKILL (30)")

    status = sub.add_parser("status", parents=[common], help="show every node")
    status.add_argument("--json", action="store_true", help="print JSON")

    for name, text in (("kill", "SIGKILL a node's daemon (a crash)"),
                       ("hang", "SIGSTOP a node's daemon (a hang)"),
                       ("resume", "SIGCONT a hung node's daemon"),
                       ("restart", "start a killed node's daemon again")):
        cmd = sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("node", metavar="NODE", help="node name, e.g. node2")
        if name == "restart":
            cmd.add_argument("--wait", type=positive_float, default=60.0, metavar="SECONDS",
                             help="how long to wait for the node to reach run (60)")

    power = sub.add_parser("power", parents=[common],
                           help="power a node off/on or read its power state through its "
                                "simulated BMC (real IPMI, the fence driver's way)")
    power.add_argument("node", metavar="NODE", help="node name, e.g. node2")
    power.add_argument("action", choices=POWER_ACTIONS,
                       help="off: kill the node (returns once the BMC reads off); on: start "
                            "it again (in the background); status: read the power state")
    power.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDS",
                       help="deadline of the whole operation (30)")

    demo = sub.add_parser("demo", parents=[common],
                          help="start a cluster (unless one is up), run the demo, stop it")
    demo.add_argument("--hypervisor", choices=configgen.HYPERVISORS, default=None,
                      help="hypervisor of the demo cluster (default: test when "
                           "libvirt-python is installed, else fake)")
    return parser


def format_table(rows: Sequence[NodeStatus]) -> str:
    """The status rows as an aligned text table ('-' for unknown values)."""
    cells = [[title for title, _ in COLUMNS]]
    for row in rows:
        values = row.to_dict()
        cells.append(["-" if values[key] is None else str(values[key]) for _, key in COLUMNS])
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


def format_apis(rows: Sequence[ApiStatus], key_file: str) -> str:
    """One line on the API servers: their URLs (process state unless alive) and key file."""
    urls = ", ".join(r.url + ("" if r.process == "alive" else f" ({r.process})")
                     for r in rows)
    return f"API: {urls} (admin key: {key_file})" if key_file else f"API: {urls}"


def warn(text: str) -> None:
    print(f"{PROG}: warning: {' '.join(text.split())}", file=sys.stderr)


def cmd_up(cluster: LocalCluster, args: argparse.Namespace) -> int:
    state = cluster.up(nodes=args.nodes, hypervisor=args.hypervisor,
                       node_memory_mib=args.memory, node_cpus=args.cpus,
                       in_process=args.in_process, wait=args.wait,
                       coordinators=args.coordinators, zk_members=args.zk_members,
                       api=args.api)
    mode = ", in one process" if state.in_process else ""
    print(f"local cluster up in {cluster.directory}: {len(state.nodes)} nodes "
          f"(hypervisor {state.hypervisor}{mode}), ZooKeeper {state.zk_hosts}")
    print(format_table(cluster.status()))
    if state.apis:
        print(format_apis(cluster.api_status(), state.api_key_file))
        try:  # the cluster is up either way: a failure here is a warning
            print(connection.register(cluster))
        except ImportError as exc:
            warn(f"pvc connection 'local' not registered: the pvc client is not "
                 f"available ({exc})")
        except Exception as exc:
            if getattr(args, "debug", False):
                raise
            warn(f"pvc connection 'local' not registered: {exc}")
    return 0


def cmd_down(cluster: LocalCluster, args: argparse.Namespace) -> int:
    before = load_state(cluster.directory)
    done = cluster.down(purge=args.purge, timeout=args.timeout)
    print("; ".join(done) if done else f"nothing running in {cluster.directory}")
    if before is not None and before.apis:
        key = None
        if before.api_key_file:
            try:
                key = Path(before.api_key_file).read_text(encoding="utf-8").strip()
            except OSError:
                pass  # purged or lost: match on the port alone
        try:
            removed = connection.unregister({a.port for a in before.apis}, key)
        except ImportError:
            removed = None  # no pvc client: nothing was registered
        except Exception as exc:
            if getattr(args, "debug", False):
                raise
            warn(f"pvc connection 'local' not removed: {exc}")
            removed = None
        if removed:
            print(removed)
    return 0


def cmd_status(cluster: LocalCluster, args: argparse.Namespace) -> int:
    state = cluster.record()
    rows = cluster.status()
    zk = cluster.zookeeper_state().value if state.zk_processes() else "down"
    apis = cluster.api_status()
    if args.json:
        print(json.dumps({"directory": str(cluster.directory), "hypervisor": state.hypervisor,
                          "in_process": state.in_process,
                          "zookeeper": {"hosts": state.zk_hosts, "process": zk},
                          "nodes": [r.to_dict() for r in rows],
                          "api": {"servers": [a.to_dict() for a in apis],
                                  "key_file": state.api_key_file or None}}, indent=2))
        return 0
    mode = ", in one process" if state.in_process else ""
    print(f"local cluster in {cluster.directory}: hypervisor {state.hypervisor}{mode}, "
          f"ZooKeeper {state.zk_hosts} ({zk})")
    print(format_table(rows))
    if apis:
        print(format_apis(apis, state.api_key_file))
    return 0


def cmd_node(cluster: LocalCluster, args: argparse.Namespace) -> int:
    if args.command == "restart":
        cluster.restart(args.node, wait=args.wait)
    else:
        {"kill": cluster.kill, "hang": cluster.hang, "resume": cluster.resume}[args.command](
            args.node)
    shared = " (shared process: every node)" if cluster.record().in_process else ""
    print(f"{args.node}: {args.command} done{shared}")
    return 0


def cmd_power(cluster: LocalCluster, args: argparse.Namespace) -> int:
    state = cluster.power(args.node, args.action, timeout=args.timeout)
    notes = {"off": " (proved off: the daemon is gone)",
             "on": " (the BMC is starting its daemon: see pvc-local status)"}
    print(f"{args.node}: power {state}" + (notes.get(args.action, "")
                                           if state == args.action else ""))
    return 0


def cmd_demo(cluster: LocalCluster, args: argparse.Namespace) -> int:
    try:
        from pvc_local.demo import run_demo
    except ImportError as exc:
        raise LocalClusterError(f"the demo is not available ({exc})") from None
    hypervisor = args.hypervisor or ("test" if launch.libvirt_available() else "fake")
    return run_demo(cluster, hypervisor=hypervisor)


COMMANDS: dict[str, Callable[[LocalCluster, argparse.Namespace], int]] = {
    "up": cmd_up, "down": cmd_down, "status": cmd_status, "kill": cmd_node,
    "hang": cmd_node, "resume": cmd_node, "restart": cmd_node, "power": cmd_power,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pvc-local``; returns the exit code."""
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format=f"{PROG}: %(levelname)s: %(message)s")
    cluster = LocalCluster(getattr(args, "dir", None) or launch.default_directory())
    try:
        return COMMANDS[args.command](cluster, args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, EXPECTED):
            text = f"internal error: {type(exc).__name__}: {text} (--debug shows the traceback)"
        print(f"{PROG}: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
