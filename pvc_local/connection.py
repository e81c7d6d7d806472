"""The ``local`` connection of the ``pvc`` client, kept pointing at the local cluster.

``pvc-local up`` registers the cluster's first API server (node1's) with
the local admin key as the client's connection ``local`` and makes it the
default; ``pvc-local down`` removes it again, but only while it still
points at this cluster (its loopback port is one of this cluster's API
ports and its key is this cluster's key): a ``local`` connection that
another cluster or the user has since rewritten is left alone.

The connections file is the client's (``$PVC_CLIENT_CONFIG``, else
``~/.config/pvc/client.yaml``), written through
:mod:`pvc_cli.connections`; :class:`LocalCluster` itself never touches it,
so tests and scripts using the Python API leave the user's file alone.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from pvc_local.cluster import LocalCluster, LocalClusterError

#: Name of the client connection that ``pvc-local up`` registers.
CONNECTION = "local"
#: Where the API servers listen (and what the connection's address is).
ADDRESS = "127.0.0.1"

PathLike = str | os.PathLike[str] | None


def register(cluster: LocalCluster, path: PathLike = None) -> str:
    """Make ``local`` (the default connection) reach the cluster's first API server.

    Returns one line saying so. Raises ImportError when the ``pvc`` client
    is not installed, ``pvc_cli.errors.ConfigError`` (a ``CliError``) when
    the connections file is invalid, LocalClusterError when the cluster
    has no API server.
    """
    from pvc_cli.connections import add_connection

    state = cluster.record()
    if not state.apis:
        raise LocalClusterError("the local cluster runs no API server (up --no-api)")
    entry = state.apis[0]
    conn = add_connection(CONNECTION, ADDRESS, entry.port, cluster.api_key(), default=True,
                          path=path)
    return (f"pvc connection {CONNECTION!r} (the default) -> {conn.url} with the "
            f"local-admin key, in {conn.source}")


def unregister(ports: Collection[int], key: str | None, path: PathLike = None) -> str | None:
    """Remove ``local`` if it reaches one of ``ports`` on loopback (with ``key``, if given).

    Returns one line when it was removed, None when there was nothing of this
    cluster's to remove (no file, no ``local``, or it points elsewhere).
    """
    from pvc_cli import connections

    cfg = connections.load(path)
    conn = cfg.connections.get(CONNECTION)
    if cfg.derived or conn is None or conn.address != ADDRESS or conn.port not in ports:
        return None
    if key is not None and conn.key != key:
        return None
    connections.remove_connection(CONNECTION, path=path)
    return f"removed pvc connection {CONNECTION!r} from {cfg.path}"
