"""Following a keyspace schema upgrade made by another node.

When the cluster's schema version moves past what this running code knows,
the daemon asks the code *installed on disk* (a fresh interpreter) which
version it knows. If the installed code knows the new version (the package
was upgraded under the running daemon), the daemon stops and its process
re-executes itself in place (``os.execv``), so the new code runs. If not, it
stops acting and exits with :data:`EXIT_SCHEMA_TOO_NEW`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from pvc_core.errors import PVCError
from pvc_core.keyspace import SCHEMA_VERSION

if TYPE_CHECKING:
    from pvc_core.daemon.node import NodeDaemon

#: Exit code of a daemon that found a schema newer than its installed code knows.
EXIT_SCHEMA_TOO_NEW = 3
#: Exit code by which a daemon asks ``pvcnoded`` to re-execute itself.
EXIT_REEXEC = 75


def installed_schema_version(timeout: float = 30.0) -> int | None:
    """The schema version the PVC installed on disk knows (None if it cannot tell)."""
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-c",
             "from pvc_core.keyspace import SCHEMA_VERSION as v; print(v)"],
            capture_output=True, text=True, timeout=timeout, check=True)
        return int(out.stdout.strip())
    except (subprocess.SubprocessError, OSError, ValueError):
        return None


def handle_schema_change(daemon: NodeDaemon) -> None:
    """Called (off the watch thread) when the schema znode changed."""
    ctx = daemon.ctx
    if ctx is None:
        return
    log = ctx.log("daemon")
    try:
        version = ctx.store.schema.version()
    except PVCError as exc:
        log.warning("could not read the schema version: %s", exc)
        return
    if version is None or version <= SCHEMA_VERSION:
        return
    installed = installed_schema_version()
    if installed is not None and installed >= version:
        log.warning("cluster keyspace schema moved to version %d; the installed PVC knows "
                    "it (up to %d): re-executing in place to apply it", version, installed)
        daemon.request_exit(EXIT_REEXEC, "re-executing for the new schema")
    else:
        daemon.request_exit(EXIT_SCHEMA_TOO_NEW,
                            f"cluster keyspace schema moved to version {version}, newer than "
                            f"this PVC knows ({SCHEMA_VERSION}): stopping, upgrade PVC")


def reexec(log: logging.Logger) -> None:
    """Replace this process with a fresh run of the same command (same PID)."""
    from pvc_core.daemon import logs

    log.warning("re-executing %s", " ".join(sys.orig_argv))
    logs.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606
