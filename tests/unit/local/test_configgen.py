"""Per-node configuration of the local cluster: every generated file is a valid pvc.yaml."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pvc_core.config import load_config, parse_config
from pvc_core.drivers.factory import driver_class
from pvc_core.errors import ConfigError
from pvc_local import configgen

from .conftest import lookup_with_libvirt_stub


@dataclass(frozen=True)
class FakeLibvirtd:
    """A stand-in for pvc_local.qemu.NodeLibvirtd: only the URIs the config needs."""

    uri: str = "qemu+unix:///system?socket=/tmp/pvc-local/node2/libvirtd/sock/libvirt-sock"
    migration_uri: str = "qemu+unix:///system?socket=/tmp/pvc-local/node2/libvirtd/sock/libvirt-sock"
    migration_address: str = "tcp://10.250.0.2"


def make(tmp_path: Path, kind: str, name: str = "node2", count: int = 3,
         **kwargs: Any) -> dict[str, Any]:
    node_dir = tmp_path / name
    host_xml = configgen.write_host_xml(node_dir / "host.xml", configgen.NodeSize())
    section = configgen.hypervisor_section(
        kind, host_xml=host_xml, libvirtd=FakeLibvirtd() if kind == "qemu" else None)
    return configgen.node_config(name, nodes=configgen.node_names(count),
                                 zk_hosts="127.0.0.1:42181", state_dir=node_dir / "state",
                                 hypervisor=section, **kwargs)


def test_fake_config_passes_with_the_real_driver_lookup(tmp_path: Path) -> None:
    config = parse_config(make(tmp_path, "fake"), driver_lookup=driver_class,
                          hostname="elsewhere")
    assert config.node.name == "node2"
    assert config.node.state_dir == str(tmp_path / "node2" / "state")
    assert config.cluster.nodes == ("node1", "node2", "node3")
    assert config.cluster.coordinators == ("node1", "node2", "node3")
    assert config.zookeeper.hosts == "127.0.0.1:42181"
    assert config.zookeeper.root == "/pvc"
    assert config.zookeeper.session_timeout == 6
    assert config.timers.keepalive_interval == 1
    assert config.fencing.enabled is False
    assert config.migration.parallel_limit == 4
    assert config.logging.level == "info"
    assert config.hypervisor.driver == "fake"
    assert dict(config.hypervisor.options) == {"memory_mib": 16384, "cpus": 8, "load1": 0.0}


@pytest.mark.parametrize("kind", ["test", "qemu"])
def test_libvirt_configs_pass(tmp_path: Path, kind: str) -> None:
    config = parse_config(make(tmp_path, kind), driver_lookup=lookup_with_libvirt_stub,
                          hostname="elsewhere")
    assert config.hypervisor.driver == "libvirt"
    options = config.hypervisor.options
    if kind == "test":
        assert options["uri"] == f"test://{tmp_path / 'node2' / 'host.xml'}"
    else:
        assert options["uri"] == FakeLibvirtd.uri
        assert options["migration_uri"] == FakeLibvirtd.migration_uri
        assert options["migration_address"] == FakeLibvirtd.migration_address


def test_written_file_loads(tmp_path: Path) -> None:
    path = configgen.write_config(tmp_path / "node1" / "pvc.yaml", make(tmp_path, "fake",
                                                                         name="node1"))
    config = load_config(path, driver_lookup=driver_class, hostname="elsewhere")
    assert config.node.name == "node1"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_every_node_of_a_large_cluster_is_valid(tmp_path: Path) -> None:
    for name in configgen.node_names(12):
        config = parse_config(make(tmp_path, "fake", name=name, count=12),
                              driver_lookup=driver_class, hostname="elsewhere")
        assert config.node.name == name
        assert config.cluster.coordinators == ("node1", "node2", "node3")


def test_coordinator_limit(tmp_path: Path) -> None:
    config = parse_config(make(tmp_path, "fake", count=5, coordinator_limit=5),
                          driver_lookup=driver_class, hostname="x")
    assert len(config.cluster.coordinators) == 5
    assert configgen.coordinators(["node1"], 3) == ["node1"]
    assert configgen.coordinators(["a", "b"], 0) == ["a"]


def test_fence_chain_hook_enables_fencing(tmp_path: Path) -> None:
    chain = {n: [{"driver": "fake"}] for n in configgen.node_names(3)}
    config = parse_config(make(tmp_path, "fake", fence_chain=chain),
                          driver_lookup=driver_class, hostname="x")
    assert config.fencing.enabled is True
    assert sorted(config.fencing.chain) == ["node1", "node2", "node3"]
    assert config.fencing.chain["node2"][0].driver == "fake"


def test_a_broken_config_is_caught(tmp_path: Path) -> None:
    data = make(tmp_path, "fake")
    data["timers"]["keepalive_interval"] = 0
    with pytest.raises(ConfigError, match="keepalive_interval"):
        parse_config(data, driver_lookup=driver_class, hostname="x")


def test_host_xml_describes_the_node(tmp_path: Path) -> None:
    size = configgen.NodeSize(memory_mib=4096, cpus=4)
    root = ET.fromstring(configgen.host_xml_text(size))
    assert root.tag == "node"
    assert root.findtext("memory") == str(4096 * 1024)  # KiB
    assert root.findtext("cpu/active") == "4"
    assert int(root.findtext("cpu/cores") or 0) * int(root.findtext("cpu/threads") or 0) == 4
    assert root.find("domain") is None  # no preloaded domains


def test_libvirt_test_driver_accepts_the_host_file(tmp_path: Path) -> None:
    virsh = shutil.which("virsh")
    if virsh is None:
        pytest.skip("virsh is not installed: the host file is checked structurally only")
    path = configgen.write_host_xml(tmp_path / "host.xml", configgen.NodeSize(2048, 2))
    out = subprocess.run([virsh, "-c", configgen.libvirt_test_uri(path), "nodeinfo"],  # noqa: S603
                         capture_output=True, text=True, timeout=30, check=True).stdout
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in
                                                    out.splitlines()) if v}
    assert fields["CPU(s)"] == "2"
    assert fields["Memory size"] == "2097152 KiB"
    listed = subprocess.run([virsh, "-c", configgen.libvirt_test_uri(path), "list", "--all",  # noqa: S603
                             "--name"], capture_output=True, text=True, timeout=30, check=True)
    assert listed.stdout.strip() == ""


def test_test_uri_is_absolute_and_quoted(tmp_path: Path) -> None:
    uri = configgen.libvirt_test_uri(tmp_path / "a dir" / "host.xml")
    assert uri.startswith("test:///")
    assert " " not in uri and "a%20dir" in uri


@pytest.mark.parametrize(("kind", "kwargs", "message"), [
    ("test", {}, "host.xml"),
    ("qemu", {}, "libvirtd"),
    ("xen", {}, "unknown hypervisor"),
])
def test_hypervisor_section_errors(kind: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configgen.hypervisor_section(kind, **kwargs)


def test_sizes_and_names_are_checked() -> None:
    with pytest.raises(ValueError):
        configgen.NodeSize(memory_mib=0)
    with pytest.raises(ValueError):
        configgen.NodeSize(cpus=0)
    with pytest.raises(ValueError):
        configgen.node_names(0)
    assert configgen.node_names(2) == ["node1", "node2"]


def test_test_config_drives_the_real_libvirt_driver(tmp_path: Path) -> None:
    """Where the libvirt driver loads, the generated test host is what it reports."""
    from pvc_core.drivers.base import DriverContext
    from pvc_core.drivers.factory import load_hypervisor
    from pvc_core.errors import DriverError

    try:
        driver_class("hypervisor", "libvirt")
    except DriverError as exc:
        pytest.skip(f"the libvirt driver is not loadable here: {exc}")
    node_dir = tmp_path / "node1"
    host_xml = configgen.write_host_xml(node_dir / "host.xml", configgen.NodeSize(4096, 4))
    data = configgen.node_config(
        "node1", nodes=["node1"], zk_hosts="127.0.0.1:2181", state_dir=node_dir / "state",
        hypervisor=configgen.hypervisor_section("test", host_xml=host_xml))
    config = parse_config(data, hostname="x")
    driver = load_hypervisor("libvirt", config.driver_options("hypervisor", "libvirt"),
                             DriverContext(node="node1"))
    try:
        stats = driver.host_stats()
        assert (stats.memory_total_mib, stats.cpu_count) == (4096, 4)
        assert driver.list_domains() == []
    finally:
        driver.close()


def test_qemu_config_from_the_real_node_libvirtd(tmp_path: Path) -> None:
    """The URIs of pvc_local.qemu.NodeLibvirtd (constructed, never started) are accepted."""
    from pvc_local import launch

    qemu = pytest.importorskip("pvc_local.qemu")
    libvirtd = launch.node_libvirtd(tmp_path / "node2", "node2", 2)
    assert isinstance(libvirtd, qemu.NodeLibvirtd)
    assert libvirtd.dir == launch.libvirtd_dir(tmp_path / "node2")
    section = configgen.hypervisor_section("qemu", libvirtd=libvirtd)
    data = configgen.node_config("node2", nodes=["node1", "node2"], zk_hosts="127.0.0.1:2181",
                                 state_dir=tmp_path / "node2" / "state", hypervisor=section)
    config = parse_config(data, driver_lookup=lookup_with_libvirt_stub, hostname="x")
    options = config.hypervisor.options
    assert options["uri"] == libvirtd.uri
    assert options["migration_uri"] == libvirtd.migration_uri
    assert options["migration_address"] == libvirtd.migration_address


def test_ensemble_hosts_state_file_and_overrides(tmp_path: Path) -> None:
    node_dir = tmp_path / "node1"
    section = configgen.hypervisor_section("fake", state_file=node_dir / "hypervisor.json")
    data = configgen.node_config(
        "node1", nodes=configgen.node_names(4), state_dir=node_dir / "state",
        zk_hosts="127.0.0.1:23181,127.0.0.1:23182,127.0.0.1:23183", hypervisor=section,
        overrides={"zookeeper": {"session_timeout": 4},
                   "fencing": {"saving_throws": 1, "fence_intervals": 3}})
    assert data["zookeeper"]["hosts"] == ["127.0.0.1:23181", "127.0.0.1:23182",
                                          "127.0.0.1:23183"]
    assert data["zookeeper"]["op_timeout"] == 5  # merged, not replaced
    config = parse_config(data, driver_lookup=driver_class, hostname="elsewhere")
    assert config.zookeeper.hosts == "127.0.0.1:23181,127.0.0.1:23182,127.0.0.1:23183"
    assert config.zookeeper.session_timeout == 4
    assert (config.fencing.saving_throws, config.fencing.fence_intervals) == (1, 3)
    assert config.hypervisor.options["state_file"] == str(node_dir / "hypervisor.json")


def test_merge_is_recursive_and_leaves_its_inputs_alone() -> None:
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
    merged = configgen.merge(base, {"a": {"c": {"d": 3, "f": 4}}, "e": [2], "g": None})
    assert merged == {"a": {"b": 1, "c": {"d": 3, "f": 4}}, "e": [2], "g": None}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
