"""The built-in ``health_basic`` hook plugin: root file system and memory checks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pvc_core.hooks.manager import HookManager
from pvc_plugins.health_basic import BasicHealth
from pvc_plugins.health_basic.plugin import read_meminfo

GIB = 2**30


def statvfs_of(total_gib: float, free_gib: float,
               frsize: int = 4096) -> Callable[[str], os.statvfs_result]:
    """A statvfs answer with ``free_gib`` available to users out of ``total_gib``."""
    blocks, avail = int(total_gib * GIB / frsize), int(free_gib * GIB / frsize)
    result = os.statvfs_result((frsize, frsize, blocks, avail + 10, avail, 1000, 500, 500, 0,
                                255))

    def statvfs(path: str) -> os.statvfs_result:
        assert path == "/srv"
        return result
    return statvfs


def meminfo(tmp_path: Path, total_kb: int, available_kb: int | None) -> str:
    lines = [f"MemTotal:       {total_kb} kB", "MemFree:         1000 kB",
             "HugePages_Total:       0"]
    if available_kb is not None:
        lines.insert(2, f"MemAvailable:   {available_kb} kB")
    path = tmp_path / "meminfo"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_healthy_node(tmp_path: Path) -> None:
    plugin = BasicHealth(root="/srv", meminfo=meminfo(tmp_path, 16 * 2**20, 8 * 2**20),
                         statvfs=statvfs_of(100, 40))
    assert plugin.pvc_collect_health_checks(node="node1") == [
        {"name": "root_filesystem", "ok": True,
         "message": "/srv: 40.0 GiB free of 100.0 GiB (40.0%)"},
        {"name": "memory", "ok": True,
         "message": "8.0 GiB of 16.0 GiB memory available (50.0%)"},
    ]


def test_thresholds(tmp_path: Path) -> None:
    plugin = BasicHealth(root="/srv", meminfo=meminfo(tmp_path, 16 * 2**20, 512 * 1024),
                         statvfs=statvfs_of(100, 5))
    disk, memory = plugin.pvc_collect_health_checks(node="node1")
    assert disk == {"name": "root_filesystem", "ok": False,
                    "message": "/srv: 5.0 GiB free of 100.0 GiB (5.0%), below the 10% "
                               "minimum: free some space"}
    assert memory["ok"] is False
    assert memory["message"].startswith("512 MiB of 16.0 GiB memory available (3.1%), below "
                                        "the 10% minimum")
    lenient = BasicHealth(root="/srv", meminfo=meminfo(tmp_path, 16 * 2**20, 512 * 1024),
                          statvfs=statvfs_of(100, 5), min_free_percent=5,
                          min_available_percent=3)
    assert [c["ok"] for c in lenient.pvc_collect_health_checks(node="node1")] == [True, True]


def test_unreadable_figures_fail_with_the_reason(tmp_path: Path) -> None:
    def no_fs(path: str) -> os.statvfs_result:
        raise FileNotFoundError(2, "No such file or directory")

    plugin = BasicHealth(root="/srv", meminfo=str(tmp_path / "absent"), statvfs=no_fs)
    disk, memory = plugin.pvc_collect_health_checks(node="node1")
    assert disk == {"name": "root_filesystem", "ok": False,
                    "message": "cannot read /srv: No such file or directory"}
    assert memory["ok"] is False and memory["message"].startswith(
        f"cannot read {tmp_path / 'absent'}: ")
    old_kernel = BasicHealth(meminfo=meminfo(tmp_path, 16 * 2**20, None))
    assert old_kernel.memory() == {"name": "memory", "ok": False,
                                   "message": f"{tmp_path / 'meminfo'} has no MemTotal or "
                                              "MemAvailable"}
    empty = BasicHealth(root="/srv", statvfs=statvfs_of(0, 0))
    assert empty.root_filesystem()["ok"] is False


def test_read_meminfo_converts_kb(tmp_path: Path) -> None:
    info = read_meminfo(meminfo(tmp_path, 2048, 1024))
    assert info == {"MemTotal": 2048 * 1024, "MemFree": 1000 * 1024,
                    "MemAvailable": 1024 * 1024, "HugePages_Total": 0}


def test_this_host_through_the_entry_point() -> None:
    """Enabled by name like any third-party plugin, on this machine's real figures."""
    hooks = HookManager()
    assert hooks.load_entrypoints(["health_basic"]) == ["health_basic"]
    results = hooks.call_with_deadline("pvc_collect_health_checks", 10.0, node="node1")
    assert results.ok
    checks = results.by_plugin()["health_basic"]
    assert [c["name"] for c in checks] == ["root_filesystem", "memory"]
    for check in checks:
        assert isinstance(check["ok"], bool)
        assert check["message"] and "cannot read" not in check["message"]


def test_zero_memory_total_is_a_failure(tmp_path: Path) -> None:
    assert BasicHealth(meminfo=meminfo(tmp_path, 0, 0)).memory()["ok"] is False
