"""Per-node configuration files of the local cluster.

Each node daemon of a local cluster reads its own ``pvc.yaml``, written
here: the node's name and state directory, the whole cluster's membership,
the private ZooKeeper server, fast timers, and a hypervisor section that
depends on the hypervisor kind:

``test``
    the libvirt driver on a private libvirt *test* driver instance,
    ``test://<DIR>/<node>/host.xml`` (an in-memory fake host whose size is
    set by that file; needs libvirt-python);
``fake``
    PVC's in-memory ``fake`` hypervisor driver (no libvirt at all); the
    launcher gives it a ``state_file`` (``DIR/<node>/hypervisor.json``)
    where it publishes its domains, so tests in another process can read
    the hypervisor directly;
``qemu``
    the libvirt driver on the node's own libvirtd (real QEMU guests), whose
    URIs come from :class:`pvc_local.qemu.NodeLibvirtd`.

Fencing: :func:`node_config` takes a ``fence_chain`` (node name to a list
of fence entries); when given, fencing is enabled with that chain in every
node's file, otherwise it is disabled. The launcher passes one ``ipmi``
entry per node reaching the node's simulated BMC on loopback
(:func:`pvc_local.power.chain_entry`: host, port, user ``admin``, a
``password_file`` of mode 0600 in the cluster directory, cipher suite 3).

API: a coordinator's file gets ``api.listen: 127.0.0.1`` and ``api.port``
(the port its API server is started on); ``api_keys`` (the launcher's
``local-admin`` key, as a hash) are appended to ``api.keys`` *after* the
overrides are merged, so keys supplied through ``overrides`` are kept
alongside.

``zk_hosts`` is a ZooKeeper connect string; an ensemble's comma-separated
members become one ``zookeeper.hosts`` item each. ``overrides`` (nested
mappings) are merged over the generated file last: the chaos tests shorten
the session timeout and the fencing timers that way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import yaml

#: The hypervisor kinds the launcher knows.
HYPERVISORS = ("test", "fake", "qemu")
#: Name of the local cluster (``cluster.name``).
CLUSTER_NAME = "local"
#: Root znode of the local cluster's keyspace.
ZK_ROOT = "/pvc"
#: Coordinators: the first nodes, at most this many (a real cluster has 3 or 5).
MAX_COORDINATORS = 3


class LibvirtEndpoint(Protocol):
    """What the ``qemu`` kind needs from a node's libvirtd (``pvc_local.qemu.NodeLibvirtd``)."""

    @property
    def uri(self) -> str: ...

    @property
    def migration_uri(self) -> str: ...

    @property
    def migration_address(self) -> str: ...


@dataclass(frozen=True)
class NodeSize:
    """The size of one simulated host (``test`` and ``fake`` kinds)."""

    memory_mib: int = 16384
    cpus: int = 8

    def __post_init__(self) -> None:
        if self.memory_mib < 1 or self.cpus < 1:
            raise ValueError(f"node memory and cpus must be >= 1, got {self.memory_mib} MiB "
                             f"and {self.cpus} cpus")


def node_names(count: int) -> list[str]:
    """``node1`` ... ``nodeN``."""
    if count < 1:
        raise ValueError(f"a cluster needs at least one node, got {count}")
    return [f"node{i}" for i in range(1, count + 1)]


def coordinators(names: Sequence[str], limit: int = MAX_COORDINATORS) -> list[str]:
    """The coordinator nodes: the first ``limit`` of ``names``."""
    return list(names[:max(1, limit)])


def host_xml_text(size: NodeSize) -> str:
    """A libvirt test-driver node file: one host, no preloaded domains."""
    return (
        "<node>\n"
        "  <cpu><nodes>1</nodes><sockets>1</sockets>"
        f"<cores>{size.cpus}</cores><threads>1</threads>"
        f"<active>{size.cpus}</active><mhz>2400</mhz><model>x86_64</model></cpu>\n"
        f"  <memory>{size.memory_mib * 1024}</memory>\n"
        "</node>\n"
    )


def libvirt_test_uri(host_xml: Path) -> str:
    """The libvirt test-driver URI of a node file (absolute: ``test:///...``)."""
    path = host_xml.absolute()
    return "test://" + quote(str(path))


def hypervisor_section(kind: str, *, host_xml: Path | None = None,
                       size: NodeSize | None = None,
                       libvirtd: LibvirtEndpoint | None = None,
                       state_file: Path | None = None) -> dict[str, Any]:
    """The ``hypervisor`` section for one node of the given kind.

    ``state_file`` (``fake`` only): where the driver publishes its domains.
    """
    size = size or NodeSize()
    if kind == "test":
        if host_xml is None:
            raise ValueError("the test hypervisor needs the node's host.xml path")
        return {"enabled": True, "driver": "libvirt", "libvirt": {"uri": libvirt_test_uri(host_xml)}}
    if kind == "fake":
        fake: dict[str, Any] = {"memory_mib": size.memory_mib, "cpus": size.cpus}
        if state_file is not None:
            fake["state_file"] = str(state_file.absolute())
        return {"enabled": True, "driver": "fake", "fake": fake}
    if kind == "qemu":
        if libvirtd is None:
            raise ValueError("the qemu hypervisor needs the node's libvirtd")
        return {"enabled": True, "driver": "libvirt",
                "libvirt": {"uri": libvirtd.uri, "migration_uri": libvirtd.migration_uri,
                            "migration_address": libvirtd.migration_address}}
    raise ValueError(f"unknown hypervisor {kind!r} (one of {', '.join(HYPERVISORS)})")


def node_config(name: str, *, nodes: Sequence[str], zk_hosts: str, state_dir: Path,
                hypervisor: Mapping[str, Any], coordinator_limit: int = MAX_COORDINATORS,
                fence_chain: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                log_level: str = "info",
                overrides: Mapping[str, Any] | None = None,
                api_port: int | None = None,
                api_keys: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The configuration dictionary of one node daemon (see the module docstring).

    ``api_port``: this node's API server port (``api.listen`` 127.0.0.1);
    ``api_keys``: ``{name, hash, role}`` entries appended to ``api.keys``
    after ``overrides`` (an entry replaces an override's key of the same name).
    """
    fencing: dict[str, Any] = {"enabled": False}
    if fence_chain:
        fencing = {"enabled": True,
                   "chain": {node: [dict(e) for e in entries]
                             for node, entries in fence_chain.items()}}
    config = {
        "node": {"name": name, "state_dir": str(state_dir.absolute())},
        "cluster": {"name": CLUSTER_NAME, "nodes": list(nodes),
                    "coordinators": coordinators(nodes, coordinator_limit)},
        "zookeeper": {"hosts": [h for h in zk_hosts.split(",") if h], "root": ZK_ROOT,
                      "session_timeout": 6, "op_timeout": 5},
        "timers": {"keepalive_interval": 1},
        "fencing": fencing,
        "migration": {"parallel_limit": 4},
        "logging": {"level": log_level, "file": None},
        "hypervisor": dict(hypervisor),
    }
    if api_port is not None:
        config["api"] = {"listen": "127.0.0.1", "port": api_port}
    config = merge(config, overrides or {})
    if api_keys:
        config["api"] = with_api_keys(config.get("api") or {}, api_keys)
    return config


def with_api_keys(api: Mapping[str, Any],
                  keys: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A copy of an ``api`` section with ``keys`` appended to its ``keys`` list.

    A present key of the same name as one of ``keys`` is replaced.
    """
    names = {k["name"] for k in keys}
    present = [dict(k) for k in api.get("keys") or () if not (
        isinstance(k, Mapping) and k.get("name") in names)]
    return {**api, "keys": present + [dict(k) for k in keys]}


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: mappings recursively, anything else replaced."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write one node's configuration as YAML (atomically); return the path."""
    header = "# Written by pvc-local; regenerated by every `pvc-local up`.\n"
    atomic_write(path, header + yaml.safe_dump(dict(config), sort_keys=False))
    return path


def write_host_xml(path: Path, size: NodeSize) -> Path:
    """Write a libvirt test-driver node file; return the path."""
    atomic_write(path, host_xml_text(size))
    return path
