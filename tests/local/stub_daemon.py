"""A stand-in for ``pvcnoded`` that follows its process contract and nothing more.

``python -m tests.local.stub_daemon --config FILE``: validates the file
(exit 2 with one line on stderr when invalid), initialises the keyspace,
registers the node with ``daemon_state`` ``init`` then ``run``, waits for
SIGTERM, writes ``shutdown`` then ``stop`` and exits 0. It lets the
launcher's own tests (start, wait, kill, hang, resume, restart, down) run
before and independently of the real node daemon.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from pvc_core.config import load_config
from pvc_core.errors import ConfigError
from pvc_core.keyspace import Keyspace
from pvc_core.states import DaemonState
from pvc_core.store import Store, ZkClient


def main() -> int:
    parser = argparse.ArgumentParser(prog="stub-daemon")
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"stub-daemon: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    zk = ZkClient(config.zookeeper.hosts, session_timeout=config.zookeeper.session_timeout,
                  op_timeout=config.zookeeper.op_timeout)
    zk.start()
    store = Store(zk, Keyspace(config.zookeeper.root))
    store.schema.initialise()
    name = config.node.name
    store.nodes.register(name, {"stub": True, "pid": os.getpid()})
    store.nodes.set_states(name, daemon_state=DaemonState.INIT)
    store.nodes.set_states(name, daemon_state=DaemonState.RUN)
    print(f"stub-daemon: {name} running", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    store.nodes.set_states(name, daemon_state=DaemonState.SHUTDOWN)
    store.nodes.set_states(name, daemon_state=DaemonState.STOP)
    store.close()
    print(f"stub-daemon: {name} stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
