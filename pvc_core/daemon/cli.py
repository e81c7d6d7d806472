"""``pvcnoded --config FILE``: run one node daemon in the foreground.

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT); 1 could not start or a
fatal error; 2 invalid configuration; 3 the cluster's keyspace schema is
newer than this PVC knows. When another node upgraded the schema to one the
installed PVC knows, the process re-executes itself in place (os.execv).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from pvc_core import __version__
from pvc_core.config import Config, load_config
from pvc_core.daemon import logs
from pvc_core.daemon.process import signals_for_main_thread
from pvc_core.daemon.upgrade import EXIT_REEXEC, EXIT_SCHEMA_TOO_NEW, reexec
from pvc_core.errors import ConfigError, PVCError, SchemaTooNew

EXIT_FAILED = 1
EXIT_CONFIG = 2


def daemon_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every PVC daemon takes: ``--config`` and ``--version``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", help="configuration file (default: $PVC_CONFIG, "
                                         "then /etc/pvc/pvc.yaml)")
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    return parser


def load_daemon_config(prog: str, path: str | None) -> Config | None:
    """Load and validate the configuration and set up logging from it; on an
    invalid file print its one line (``prog: key: reason``) and return None."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    lg = config.logging
    logs.setup(lg.level, lg.color, lg.file)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = daemon_parser("pvcnoded", "PVC node daemon").parse_args(argv)
    config = load_daemon_config("pvcnoded", args.config)
    if config is None:
        return EXIT_CONFIG
    print(f"PVC node daemon {__version__} | node {config.node.name} | cluster "
          f"{config.cluster.name} | ZooKeeper {config.zookeeper.hosts}{config.zookeeper.root}"
          f" | pid {os.getpid()}", file=sys.stderr, flush=True)

    from pvc_core.daemon.node import NodeDaemon

    daemon = NodeDaemon(config)

    def on_signal(signum: int, _frame: object) -> None:
        daemon.request_exit(0, f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log = logs.logger("daemon", config.node.name)
    try:
        with signals_for_main_thread():
            daemon.start()
    except SchemaTooNew as exc:
        log.error("%s", exc)
        return EXIT_SCHEMA_TOO_NEW
    except PVCError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_FAILED
    while not daemon.exit_requested.wait(3600):
        pass
    daemon.stop()
    code = daemon.exit_code or 0
    if code == EXIT_REEXEC:
        reexec(log)
    return code


if __name__ == "__main__":
    sys.exit(main())
