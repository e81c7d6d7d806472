"""Invalid configurations: each is rejected with one line naming its key path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pvc_core.config import Config, ConfigInvalid
from pvc_core.errors import ConfigError

from .stubs import merged

CASES: list[tuple[dict[str, Any], str, str]] = [
    # (config, key path, expected message after "<path>: ")
    (merged(fencing={"saving_throws": "six"}),
     "fencing.saving_throws", 'must be an integer >= 0, got "six"'),
    (merged(fencing={"saving_throws": -1}),
     "fencing.saving_throws", "must be an integer >= 0, got -1"),
    (merged(fencing={"fence_intervals": True}),
     "fencing.fence_intervals", "must be an integer >= 1, got true"),
    (merged(timers={"keepalive_intervall": 3}),
     "timers.keepalive_intervall", "unknown key (did you mean keepalive_interval?)"),
    (merged(timers={"keepalive_interval": 0}),
     "timers.keepalive_interval", "must be a number > 0, got 0"),
    (merged(fencing={"storm_guard_share": 1.5}),
     "fencing.storm_guard_share", "must be a number > 0 and <= 1, got 1.5"),
    (merged(migration={"default_selector": "random"}),
     "migration.default_selector", 'must be one of: mem, memprov, load, vcpus, vms, got "random"'),
    (merged(fencing={"self_fence_action": "reboot"}),
     "fencing.self_fence_action", 'must be one of: stop-vms, command, none, got "reboot"'),
    ({"cluster": {"name": "pvc"}}, "cluster.nodes", "is required"),
    ({}, "cluster.nodes", "is required"),
    (merged(cluster={"nodes": []}), "cluster.nodes", "must not be empty, got []"),
    (merged(cluster={"nodes": ["node1", "node2", "node1"]}),
     "cluster.nodes[2]", 'duplicate of cluster.nodes[0], got "node1"'),
    (merged(cluster={"nodes": ["node1", "Node_2"]}), "cluster.nodes[1]",
     "must be a lower-case DNS label (a-z, 0-9 and '-', 1-63 characters, not starting or "
     'ending with \'-\'), got "Node_2"'),
    (merged(cluster={"coordinators": ["node1", "node4"]}),
     "cluster.coordinators[1]", 'not in cluster.nodes (node1, node2, node3), got "node4"'),
    (merged(node={"name": "node9"}),
     "node.name", 'must be one of cluster.nodes (node1, node2, node3), got "node9"'),
    (merged(fencing={"chain": {"node7": [{"driver": "ipmi", "host": "h"}]}}),
     "fencing.chain.node7", "not in cluster.nodes (node1, node2, node3)"),
    (merged(fencing={"chain": {"node1": [{"host": "h"}]}}),
     "fencing.chain.node1[0].driver", "is required"),
    (merged(fencing={"self_fence_action": "command"}), "fencing.self_fence_command",
     "must be a non-empty argv list when self_fence_action is command, got []"),
    (merged(zookeeper={"hosts": ["zk1:2181", "zk2"]}),
     "zookeeper.hosts[1]", 'must be a host:port string, got "zk2"'),
    (merged(zookeeper={"root": "pvc"}),
     "zookeeper.root", 'must be an absolute znode path like /pvc, got "pvc"'),
    (merged(zookeeper={"session_timeout": "10s"}),
     "zookeeper.session_timeout", 'must be a number > 0, got "10s"'),
    (merged(api={"port": 70000}), "api.port", "must be an integer >= 1 and <= 65535, got 70000"),
    (merged(api={"tls": {"cert_file": "/etc/pvc/api.crt"}}), "api.tls.key_file", "is required"),
    (merged(api={"keys": [{"name": "ops", "hash": "sha256:abababababababababababababababababababababababababababababababab", "role": "root"}]}),
     "api.keys[0].role", 'must be one of: read-only, admin, got "root"'),
    (merged(api={"keys": [{"name": "ops", "hash": "my-secret-key"}]}),
     "api.keys[0].hash", "must be sha256:<64 hex digits> of the key (never the key itself)"),
    (merged(api={"keys": [{"name": "ops", "hash": "sha256:abababababababababababababababababababababababababababababababab"}, {"name": "ops", "hash": "sha256:abababababababababababababababababababababababababababababababab"}]}),
     "api.keys[1].name", 'duplicate of api.keys[0].name, got "ops"'),
    (merged(logging={"level": "verbose"}),
     "logging.level", 'must be one of: debug, info, warning, error, got "verbose"'),
    (merged(hypervisor={"driver": None}), "hypervisor.driver",
     "must name a driver when hypervisor.enabled is true, got null"),
    (merged(storage={"enabled": True}), "storage.driver",
     "must name a driver when storage.enabled is true, got null"),
    (merged(networking={"enabled": True}), "networking.drivers",
     "must name at least one driver when networking.enabled is true, got []"),
    (merged(storage={"enabeld": True}), "storage.enabeld", "unknown key (did you mean enabled?)"),
    (merged(hypervisor={"libvrt": {"uri": "qemu:///system"}}), "hypervisor.libvrt",
     "unknown key (not a selected driver; selected: libvirt)"),
    (merged(hypervisor={"libvirt": "qemu:///system"}), "hypervisor.libvirt",
     'must be a mapping (the libvirt driver\'s section), got "qemu:///system"'),
    (merged(cluster={"networks": {"upstream": {"device": "eth0", "cidr": "10.0.0.0/24",
                                               "floating_ip": "10.0.1.1"}}}),
     "cluster.networks.upstream.floating_ip",
     'must be inside cidr 10.0.0.0/24, got "10.0.1.1"'),
    (merged(cluster={"networks": {"upstream": {"device": "eth0"}}}),
     "cluster.networks.upstream.cidr", "is required"),
    (merged(timers=5), "timers", "must be a mapping, got 5"),
    (merged(fencin={"enabled": False}), "fencin", "unknown key (did you mean fencing?)"),
    (merged(logging={"file": ""}), "logging.file", 'must be a non-empty string or null, got ""'),
    (merged(node={"state_dir": "var/lib/pvc"}),
     "node.state_dir", 'must be an absolute path, got "var/lib/pvc"'),
]


@pytest.mark.parametrize(("data", "path", "reason"), CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_invalid_config_names_key_path(parse: Callable[..., Config], data: dict[str, Any],
                                       path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(data)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert message == f"{path}: {reason}"


def test_several_problems_report_first_by_key_path(parse: Callable[..., Config]) -> None:
    data = merged(timers={"keepalive_interval": -1, "console_log_lines": "many"},
                  api={"port": 0})
    with pytest.raises(ConfigInvalid) as info:
        parse(data)
    err = info.value
    assert str(err) == "api.port: must be an integer >= 1 and <= 65535, got 0 (and 2 more)"
    assert err.field == "api.port"
    assert [p.key for p in err.problems] == [
        "api.port", "timers.console_log_lines", "timers.keepalive_interval"]


def test_booleans_are_not_numbers(parse: Callable[..., Config]) -> None:
    with pytest.raises(ConfigError, match=r"^timers\.keepalive_interval: must be a number > 0, "
                                          r"got true$"):
        parse(merged(timers={"keepalive_interval": True}))


def test_long_values_are_truncated_to_one_line(parse: Callable[..., Config]) -> None:
    with pytest.raises(ConfigError) as info:
        parse(merged(cluster={"name": "x\n" * 200}))
    message = str(info.value)
    assert message.startswith("cluster.name: ")
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize(("data", "expected"), [
    (None, "<config>: configuration is empty"),
    ([1, 2], "<config>: top level must be a mapping of sections, got a list"),
    ("pvc", "<config>: top level must be a mapping of sections, got a string"),
])
def test_top_level_must_be_a_mapping(parse: Callable[..., Config], data: object,
                                     expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert str(info.value) == expected


def test_default_hostname_must_be_a_node_name(parse: Callable[..., Config]) -> None:
    with pytest.raises(ConfigError, match=r"^node\.name: is not set and this host's short "
                                          r"name is not a valid node name"):
        parse(merged(), hostname="Build_Host")
    with pytest.raises(ConfigError, match=r"^node\.name: is not set and this host's short "
                                          r"name is not in cluster\.nodes .*got \"node4\"$"):
        parse(merged(), hostname="node4")
