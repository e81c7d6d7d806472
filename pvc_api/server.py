"""``ApiServer``: the store session, the cache, and cheroot serving the app.

An object, so tests and the local cluster can run several in one process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pvc_api.auth import KeyRing
from pvc_api.context import ApiContext
from pvc_core import __version__
from pvc_core.config import Config
from pvc_core.daemon import logs
from pvc_core.errors import PVCError
from pvc_core.keyspace import Keyspace
from pvc_core.store import Store
from pvc_core.store.cache import ClusterCache
from pvc_core.store.zk import ZkClient

#: Worker threads of the WSGI server (each serves one request at a time;
#: ``?wait=true`` requests hold one while they wait).
THREADS = 16


class ApiServer:
    """Serve the PVC API for ``config`` on ``config.api.listen:port``."""

    def __init__(self, config: Config, *, port: int | None = None,
                 threads: int = THREADS) -> None:
        self.config = config
        self.port = config.api.port if port is None else port
        self.threads = threads
        self.log = logs.logger("api", config.node.name)
        self.store: Store | None = None
        self.cache: ClusterCache | None = None
        self.ctx: ApiContext | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.config.api.tls else "http"
        host = self.config.api.listen
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> None:
        """Connect, fill the cache, bind the port and serve on a thread."""
        from cheroot import wsgi

        from pvc_api.app import make_app

        zkc = self.config.zookeeper
        zk = ZkClient(zkc.hosts, session_timeout=zkc.session_timeout, op_timeout=zkc.op_timeout)
        zk.start()
        self.store = Store(zk, Keyspace(zkc.root))
        try:
            self.store.schema.check()
            self.cache = ClusterCache(zk, self.store.ks)
            self.cache.start()
            audit = logs.logger("audit", self.config.node.name)
            audit.setLevel(logging.INFO)  # the audit trail whatever logging.level says
            ctx = ApiContext(self.config, self.store, self.cache,
                             KeyRing(self.config.api.keys), audit=audit)
            self.ctx = ctx
            server = wsgi.Server((self.config.api.listen, self.port), make_app(ctx),
                                 numthreads=self.threads, server_name=f"pvcapid/{__version__}")
            tls = self.config.api.tls
            if tls is not None:
                from cheroot.ssl.builtin import BuiltinSSLAdapter

                server.ssl_adapter = BuiltinSSLAdapter(tls.cert_file, tls.key_file)
            server.prepare()
        except (PVCError, OSError):
            self.stop()
            raise
        self._server = server
        self.port = server.bind_addr[1]
        self._thread = threading.Thread(target=server.serve, daemon=True, name="api-serve")
        self._thread.start()
        if not self.config.api.keys:
            self.log.warning("no API keys configured (api.keys): every request but "
                             "/api/v1/openapi.json is refused")
        self.log.info("PVC API %s serving cluster %s at %s (%d threads%s)", __version__,
                      self.config.cluster.name, self.url, self.threads,
                      ", TLS" if self.config.api.tls else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.cache is not None:
            self.cache.stop()
            self.cache = None
        if self.store is not None:
            self.store.close()
            self.store = None
