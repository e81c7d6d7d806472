"""Two real QEMU nodes for the session: private libvirtds, a tiny TCG guest.

Skipped, with the reason, where real QEMU nodes cannot run (not root, tools
missing, no namespaces: :func:`pvc_local.qemu.unavailable_reason`). The
guest images are cached in ``$PVC_QEMU_CACHE`` (default
``/var/cache/pvc-test``) and built once per machine. Teardown stops both
nodes by their PIDs, then checks that the host was left as found: no
``pvcq*`` namespace, the same nft tables in the root namespace, and the
same ``/etc/libvirt/qemu.conf``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_local import qemu
from pvc_plugins.hypervisor_libvirt.driver import LibvirtHypervisorDriver

CACHE_ENV = "PVC_QEMU_CACHE"
DEFAULT_CACHE = Path("/var/cache/pvc-test")
QEMU_CONF = Path("/etc/libvirt/qemu.conf")


@dataclass(frozen=True)
class QemuCluster:
    """The session's two nodes, a shared console directory and the guest images."""

    a: qemu.NodeLibvirtd
    b: qemu.NodeLibvirtd
    images: qemu.GuestImages
    console_dir: Path


def _host_state() -> dict[str, object]:
    """What the QEMU nodes must not change on the host (root namespaces)."""
    mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
    return {
        "nft tables": qemu.run(["nft", "list", "tables"]).decode(),
        "qemu.conf": hashlib.sha256(QEMU_CONF.read_bytes()).hexdigest() if QEMU_CONF.exists() else "",
        "pvcq namespaces": sorted(n for n in qemu.run(["ip", "netns", "list"]).decode().split()
                                  if n.startswith("pvcq")),
        "mounts": sorted(mounts - {"/run/netns"}),  # ip netns creates /run/netns once
    }


@pytest.fixture(scope="session")
def qemu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QemuCluster]:
    reason = qemu.unavailable_reason()
    if reason:
        print(f"\nreal-QEMU tests skipped: {reason}")
        pytest.skip(f"real QEMU nodes unavailable here: {reason}")
    images = qemu.ensure_guest_images(Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE))
    before = _host_state()
    state = tmp_path_factory.mktemp("qemu")
    console_dir = state / "console"
    console_dir.mkdir()
    nodes = [qemu.NodeLibvirtd(state / "nodeA", "A", 0), qemu.NodeLibvirtd(state / "nodeB", "B", 1)]
    try:
        for node in nodes:
            node.start()
        yield QemuCluster(a=nodes[0], b=nodes[1], images=images, console_dir=console_dir)
    finally:
        errors = []
        for node in nodes:
            try:
                node.stop()
            except qemu.QemuError as exc:
                errors.append(str(exc))
        assert not errors, errors
    after = _host_state()
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def make_driver(node: qemu.NodeLibvirtd) -> LibvirtHypervisorDriver:
    """A libvirt driver for one node, configured as the local cluster does."""
    return LibvirtHypervisorDriver(
        {"uri": node.uri, "migration_uri": node.migration_uri,
         "migration_address": node.migration_address},
        DriverContext(node=node.name))


@pytest.fixture
def drivers(qemu_cluster: QemuCluster) -> Iterator[tuple[LibvirtHypervisorDriver, LibvirtHypervisorDriver]]:
    """Drivers for nodes A and B; every domain left on either is destroyed and undefined."""
    a, b = make_driver(qemu_cluster.a), make_driver(qemu_cluster.b)
    yield a, b
    for drv in (a, b):
        for info in drv.list_domains():
            drv.destroy(info.uuid)
            drv.undefine(info.uuid)
        drv.close()
