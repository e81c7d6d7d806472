"""Basic node health checks: root file system free space and available memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pvc_core.hooks.specs import hookimpl

#: Check names, as they appear in the node's ``health_checks``.
ROOT_CHECK = "root_filesystem"
MEMORY_CHECK = "memory"


def _size(n_bytes: float) -> str:
    gib = n_bytes / 2**30
    return f"{gib:.1f} GiB" if gib >= 1 else f"{n_bytes / 2**20:.0f} MiB"


def _check(name: str, ok: bool, message: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "message": message}


def read_meminfo(path: str) -> dict[str, int]:
    """``/proc/meminfo`` as field -> bytes (``kB`` values converted)."""
    out: dict[str, int] = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                scale = 1024 if parts[1:] == ["kB"] else 1
                out[key.strip()] = int(parts[0]) * scale
    return out


class BasicHealth:
    """The plugin: a class the hook manager instantiates without arguments.

    :param root: the file system to check (default ``/``).
    :param meminfo: where memory figures are read (default ``/proc/meminfo``).
    :param min_free_percent: ``root_filesystem`` fails below this share free.
    :param min_available_percent: ``memory`` fails below this share available.
    :param statvfs: how file system figures are read (tests inject their own).
    """

    def __init__(self, root: str = "/", meminfo: str = "/proc/meminfo",
                 min_free_percent: float = 10.0, min_available_percent: float = 10.0,
                 statvfs: Callable[[str], os.statvfs_result] = os.statvfs) -> None:
        self.root = root
        self.meminfo = meminfo
        self.min_free_percent = min_free_percent
        self.min_available_percent = min_available_percent
        self.statvfs = statvfs

    @hookimpl
    def pvc_collect_health_checks(self, node: str) -> list[dict[str, Any]]:
        """Both checks of this node, each ``{name, ok, message}``."""
        return [self.root_filesystem(), self.memory()]

    def root_filesystem(self) -> dict[str, Any]:
        """Free space of :attr:`root` against :attr:`min_free_percent`."""
        try:
            st = self.statvfs(self.root)
        except OSError as exc:
            return _check(ROOT_CHECK, False, f"cannot read {self.root}: {exc.strerror or exc}")
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        if total <= 0:
            return _check(ROOT_CHECK, False, f"{self.root} reports a size of 0")
        percent = 100.0 * free / total
        message = f"{self.root}: {_size(free)} free of {_size(total)} ({percent:.1f}%)"
        ok = percent >= self.min_free_percent
        if not ok:
            message += f", below the {self.min_free_percent:g}% minimum: free some space"
        return _check(ROOT_CHECK, ok, message)

    def memory(self) -> dict[str, Any]:
        """``MemAvailable`` against :attr:`min_available_percent` of ``MemTotal``."""
        try:
            info = read_meminfo(self.meminfo)
        except (OSError, ValueError) as exc:
            return _check(MEMORY_CHECK, False, f"cannot read {self.meminfo}: {exc}")
        total, available = info.get("MemTotal"), info.get("MemAvailable")
        if not total or available is None:
            return _check(MEMORY_CHECK, False,
                          f"{self.meminfo} has no MemTotal or MemAvailable")
        percent = 100.0 * available / total
        message = f"{_size(available)} of {_size(total)} memory available ({percent:.1f}%)"
        ok = percent >= self.min_available_percent
        if not ok:
            message += (f", below the {self.min_available_percent:g}% minimum: move VMs "
                        "off this node or stop what uses the memory")
        return _check(MEMORY_CHECK, ok, message)
