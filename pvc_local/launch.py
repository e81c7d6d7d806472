"""What the launcher runs and where: default directories and command lines.

Kept apart from :mod:`pvc_local.cluster` so the CLI, tests and the demo can
use the defaults without pulling in the process management.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Environment variable naming the default cluster directory.
DIR_ENV = "PVC_LOCAL_DIR"
#: Default cluster directory (relative to the working directory).
DEFAULT_DIR = ".pvc-local"
#: Environment variable naming the guest-image cache of qemu mode.
CACHE_ENV = "PVC_LOCAL_CACHE"
#: Exit codes of pvcnoded (and of pvc_local.multinode, and pvcapid) and what they mean.
EXIT_MEANINGS: Mapping[int, str] = {
    1: "fatal error",
    2: "configuration invalid",
    3: "cluster schema newer than this code",
}


def default_directory(env: Mapping[str, str] | None = None) -> Path:
    """``$PVC_LOCAL_DIR`` if set and not empty, else ``./.pvc-local`` (absolute)."""
    environ = os.environ if env is None else env
    return Path(environ.get(DIR_ENV) or DEFAULT_DIR).absolute()


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Guest-image cache of qemu mode: ``$PVC_LOCAL_CACHE``, else ``~/.cache/pvc-local``.

    Outside the cluster directory on purpose: ``down --purge`` keeps the
    (slow to build) kernel and initramfs for the next cluster.
    """
    environ = os.environ if env is None else env
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).absolute()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pvc-local"


#: The module run as one node daemon (``python -m pvc_core.daemon``).
DAEMON_MODULE = "pvc_core.daemon"
#: The module run as the shared process of in-process mode.
MULTINODE_MODULE = "pvc_local.multinode"


def daemon_argv(configs: list[str], in_process: bool, *, python: str = sys.executable,
                module: str = DAEMON_MODULE) -> list[str]:
    """The command line of one node daemon, or of the shared multi-node process.

    Always the module form (``python -m pvc_core.daemon``) rather than the
    ``pvcnoded`` console script: it runs the code of this very interpreter
    and works before the script is installed. ``module`` replaces the
    daemon module (tests run the launcher against a stand-in).
    """
    if not configs:
        raise ValueError("no configuration files to run")
    if in_process:
        argv = [python, "-m", MULTINODE_MODULE]
        for cfg in configs:
            argv += ["--config", cfg]
        return argv
    if len(configs) != 1:
        raise ValueError("one node daemon runs one configuration")
    return [python, "-m", module, "--config", configs[0]]


#: The module run as a coordinator's API server (``python -m pvc_api.cli``, i.e. pvcapid).
API_MODULE = "pvc_api.cli"


def api_argv(config: str, port: int, *, python: str = sys.executable,
             module: str = API_MODULE) -> list[str]:
    """The command line of one API server: the node's configuration, an explicit port."""
    return [python, "-m", module, "--config", config, "--port", str(port)]


def libvirt_available() -> bool:
    """True when libvirt-python can be imported (the ``test`` kind needs it)."""
    return importlib.util.find_spec("libvirt") is not None


def qemu_unavailable_reason() -> str | None:
    """Why ``--hypervisor qemu`` cannot run here (None: it can); detected, not assumed."""
    from pvc_local.qemu import unavailable_reason

    return unavailable_reason()


def exit_meaning(code: int | None) -> str:
    """A few words on a daemon's exit code (signals are negative)."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        return f"killed by signal {-code}"
    return EXIT_MEANINGS.get(code, "error")


def libvirtd_dir(node_dir: Path) -> Path:
    """Where a node's private libvirtd keeps its files (qemu mode)."""
    return node_dir / "libvirtd"


def node_libvirtd(node_dir: Path, name: str, index: int) -> Any:
    """The node's libvirtd manager, ``pvc_local.qemu.NodeLibvirtd`` (imported only now).

    ``down`` runs in a later process than ``up``: it builds a new manager
    from the same arguments and calls ``stop()``, which finds the daemons
    by the PID files under :func:`libvirtd_dir`.
    """
    from pvc_local.qemu import NodeLibvirtd

    return NodeLibvirtd(libvirtd_dir(node_dir), name, index)


def guest_images(cache_dir: Path) -> dict[str, str]:
    """Build or reuse the tiny guest's kernel and initramfs (qemu mode)."""
    from pvc_local.qemu import ensure_guest_images

    images = ensure_guest_images(cache_dir)
    return {"kernel": str(images.kernel), "initrd": str(images.initrd)}
