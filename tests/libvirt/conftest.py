"""Fixtures for the libvirt driver against libvirt's test driver (no daemon).

Every test gets its own node file (ENVIRONMENT.md section 4) and drivers
with ``uri = test://<that file>``; the contract fixture ``hv`` runs the same
test against the fake driver and the libvirt driver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.hypervisor import HypervisorDriver
from pvc_plugins.fake.hypervisor import FakeHypervisorDriver
from pvc_plugins.hypervisor_libvirt.driver import LibvirtHypervisorDriver

#: The host of every node file: 16 GiB, 8 CPUs (getInfo: ['i686', 16384, 8, ...]).
HOST_MEMORY_MIB = 16384
HOST_CPUS = 8
PREEXISTING_UUID = "11111111-2222-3333-4444-555555555555"
NODE_XML = """<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>2</threads>
          <active>8</active><mhz>2400</mhz><model>i686</model></cpu>
  <memory>16777216</memory>{domains}
</node>
"""
PREEXISTING = f"""
  <domain type="test"><name>preexisting-vm</name><uuid>{PREEXISTING_UUID}</uuid>
    <memory>1048576</memory><vcpu>2</vcpu><os><type arch="x86_64">hvm</type></os></domain>"""


def domain_xml(name: str, uuid: str | None = None, *, memory_mib: int = 512, vcpus: int = 2,
               devices: str = "") -> str:
    """Domain XML that both the fake driver and libvirt's test driver accept."""
    uuid_el = f"<uuid>{uuid}</uuid>" if uuid else ""
    return (f"<domain type='test'><name>{name}</name>{uuid_el}"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>"
            f"<os><type arch='x86_64'>hvm</type></os><devices>{devices}</devices></domain>")


def write_node_file(directory: Path, *, preexisting: bool = False) -> Path:
    """A libvirt test-driver node file in ``directory``."""
    path = directory / "node.xml"
    path.write_text(NODE_XML.format(domains=PREEXISTING if preexisting else ""))
    return path


@pytest.fixture
def node_file(tmp_path: Path) -> Path:
    return write_node_file(tmp_path)


@pytest.fixture
def make_libvirt(node_file: Path) -> Iterator[Callable[..., LibvirtHypervisorDriver]]:
    """Make libvirt drivers on the test's node file (or ``uri=``); all closed afterwards."""
    made: list[LibvirtHypervisorDriver] = []

    def make(**config: object) -> LibvirtHypervisorDriver:
        config.setdefault("uri", f"test://{node_file}")
        drv = LibvirtHypervisorDriver(config, DriverContext(node="hv1"))
        made.append(drv)
        return drv

    yield make
    for drv in made:
        drv.close()


@pytest.fixture
def libvirt_driver(make_libvirt: Callable[..., LibvirtHypervisorDriver]) -> LibvirtHypervisorDriver:
    return make_libvirt()


@pytest.fixture(params=["fake", "libvirt"])
def hv(request: pytest.FixtureRequest,
       make_libvirt: Callable[..., LibvirtHypervisorDriver]) -> Iterator[HypervisorDriver]:
    """The same host (16 GiB, 8 CPUs) behind the fake driver and the libvirt test driver."""
    if request.param == "fake":
        fake = FakeHypervisorDriver({"memory_mib": HOST_MEMORY_MIB, "cpus": HOST_CPUS},
                                    DriverContext(node="hv1"))
        yield fake
        fake.close()
    else:
        yield make_libvirt()
