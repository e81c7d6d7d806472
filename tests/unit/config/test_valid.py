"""Valid configurations: defaults, the typed tree, the documented sample."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvc_core.config import Config, core_schema, load_config

from .stubs import MINIMAL, merged, permissive_lookup

SAMPLE = Path(__file__).resolve().parents[3] / "docs" / "pvc.sample.yaml"


def test_minimal_config_gets_documented_defaults(parse: Callable[..., Config]) -> None:
    cfg = parse(MINIMAL)
    assert cfg.node.name == "node1"
    assert cfg.node.state_dir == "/var/lib/pvc"
    assert cfg.cluster.name == "pvc"
    assert cfg.cluster.nodes == ("node1", "node2", "node3")
    assert cfg.cluster.coordinators == cfg.cluster.nodes
    assert dict(cfg.cluster.networks) == {}
    assert cfg.zookeeper.hosts == "127.0.0.1:2181"
    assert cfg.zookeeper.root == "/pvc"
    assert (cfg.zookeeper.session_timeout, cfg.zookeeper.op_timeout) == (10.0, 5.0)
    assert cfg.timers.keepalive_interval == 5.0
    assert isinstance(cfg.timers.keepalive_interval, float)
    assert cfg.timers.vm_shutdown_timeout == 180.0
    assert cfg.timers.console_log_lines == 1000
    f = cfg.fencing
    assert (f.enabled, f.fence_intervals, f.saving_throws, f.storm_guard_share) == (
        True, 6, 2, 0.5)
    assert (f.self_fence_after, f.self_fence_action, f.self_fence_command) == (
        30.0, "stop-vms", ())
    assert (f.successful_fence, f.failed_fence, f.power_off_timeout) == ("migrate", "none", 30.0)
    assert dict(f.chain) == {}
    m = cfg.migration
    assert (m.default_selector, m.parallel_limit, m.vm_timeout, m.max_downtime_ms, m.method) == (
        "mem", 4, 600.0, 300, "auto")
    assert (cfg.logging.level, cfg.logging.file, cfg.logging.color,
            cfg.logging.decision_log_max) == ("info", None, "auto", 1000)
    assert (cfg.api.listen, cfg.api.port, cfg.api.tls, cfg.api.keys, cfg.api.metrics_auth) == (
        "127.0.0.1", 7370, None, (), True)
    assert (cfg.hypervisor.enabled, cfg.hypervisor.driver) == (True, "libvirt")
    assert dict(cfg.hypervisor.options) == {"uri": "qemu:///system"}  # stub schema default
    assert (cfg.networking.enabled, cfg.networking.drivers) == (False, ())
    assert (cfg.storage.enabled, cfg.storage.driver) == (False, None)
    assert (cfg.dns.enabled, cfg.dns.driver) == (False, None)
    assert cfg.enabled_drivers() == (("hypervisor", "libvirt"),)


def test_input_is_not_modified_and_config_is_frozen(parse: Callable[..., Config]) -> None:
    data = merged()
    before = repr(data)
    cfg = parse(data)
    assert repr(data) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.timers.keepalive_interval = 1  # type: ignore[misc]
    raw = cfg.raw
    raw["timers"]["keepalive_interval"] = 99
    assert cfg.raw["timers"]["keepalive_interval"] == 5


def test_raw_holds_validated_values_with_defaults(parse: Callable[..., Config]) -> None:
    raw = parse(merged(zookeeper={"hosts": "zk1:2181, zk2:2181"})).raw
    assert raw["zookeeper"]["hosts"] == ["zk1:2181", "zk2:2181"]
    assert raw["node"]["name"] == "node1"
    assert raw["cluster"]["coordinators"] == ["node1", "node2", "node3"]
    assert raw["fencing"]["saving_throws"] == 2


def test_full_config_builds_typed_tree(parse: Callable[..., Config]) -> None:
    data = merged(
        node={"name": "node2"},
        cluster={"coordinators": ["node1", "node2"],
                 "networks": {"upstream": {"device": "eth0", "cidr": "10.0.0.0/24",
                                           "floating_ip": "10.0.0.254"}}},
        zookeeper={"hosts": ["zk1:2181", "[::1]:2181"], "session_timeout": 4},
        fencing={"self_fence_action": "command", "self_fence_command": ["/bin/true"]},
        api={"tls": {"cert_file": "/c", "key_file": "/k"},
             "keys": [{"name": "ops", "hash": "sha256:abababababababababababababababababababababababababababababababab"}]},
        timers=None,  # an empty section means all defaults
    )
    cfg = parse(data)
    assert cfg.node.name == "node2"
    assert cfg.cluster.coordinators == ("node1", "node2")
    net = cfg.cluster.networks["upstream"]
    assert (net.name, net.device, net.cidr, net.floating_ip) == (
        "upstream", "eth0", "10.0.0.0/24", "10.0.0.254")
    assert cfg.zookeeper.hosts == "zk1:2181,[::1]:2181"
    assert cfg.zookeeper.host_list == ("zk1:2181", "[::1]:2181")
    assert cfg.zookeeper.session_timeout == 4.0
    assert cfg.fencing.self_fence_command == ("/bin/true",)
    assert cfg.api.tls is not None and cfg.api.tls.key_file == "/k"
    assert cfg.api.keys[0].role == "read-only"
    assert cfg.timers.keepalive_interval == 5.0


def _defaults(schema: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        if "default" in sub and sub["default"] != {}:
            out[path] = sub["default"]
        out.update(_defaults(sub, path + "."))
    return out


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[f"{prefix}{key}"] = value
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
    return out


def test_sample_config_loads() -> None:
    cfg = load_config(SAMPLE, driver_lookup=permissive_lookup, hostname="node1")
    assert cfg.cluster.nodes == ("node1", "node2", "node3")
    assert cfg.hypervisor.driver == "libvirt"
    assert dict(cfg.hypervisor.options) == {"uri": "qemu:///system"}


def test_sample_config_documents_every_key_with_its_default() -> None:
    text = SAMPLE.read_text()
    written = _flatten(yaml.safe_load(text))
    defaults = _defaults(core_schema())
    for path, default in defaults.items():
        assert path in written, f"{path} missing from the sample"
        assert written[path] == default, f"{path}: sample {written[path]!r} != {default!r}"
    for key in ("name", "coordinators"):  # derived defaults are documented in comments
        assert f"# {key}:" in text
