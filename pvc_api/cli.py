"""``pvcapid --config FILE``: serve the PVC API in the foreground.

Exit codes: 0 stopped (SIGTERM/SIGINT); 1 could not start; 2 invalid
configuration; 3 the cluster's keyspace schema is newer than this PVC knows.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence

from pvc_core import __version__
from pvc_core.daemon import logs
from pvc_core.daemon.cli import EXIT_CONFIG, EXIT_FAILED, daemon_parser, load_daemon_config
from pvc_core.daemon.upgrade import EXIT_SCHEMA_TOO_NEW
from pvc_core.errors import PVCError, SchemaTooNew


def main(argv: Sequence[str] | None = None) -> int:
    parser = daemon_parser("pvcapid", "PVC REST API server")
    parser.add_argument("--port", type=int, help="listen on this port instead of api.port "
                                                 "(0: any free port)")
    args = parser.parse_args(argv)
    config = load_daemon_config("pvcapid", args.config)
    if config is None:
        return EXIT_CONFIG

    from pvc_api.server import ApiServer

    server = ApiServer(config, port=args.port)
    log = logs.logger("api", config.node.name)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except SchemaTooNew as exc:
        log.error("%s", exc)
        return EXIT_SCHEMA_TOO_NEW
    except (PVCError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return EXIT_FAILED
    print(f"PVC API {__version__} | cluster {config.cluster.name} | {server.url} | "
          f"ZooKeeper {config.zookeeper.hosts}{config.zookeeper.root} | pid {os.getpid()}",
          file=sys.stderr, flush=True)
    while not stop.wait(3600):
        pass
    log.info("stopping")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
