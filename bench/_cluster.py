"""Shared set-up for the daemon benchmarks: a private ZooKeeper, test-driver nodes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pvc_core.config import Config, parse_config
from pvc_core.daemon import logs
from pvc_local.zookeeper import ZooKeeperServer

HOST_MEMORY_KIB = 256 * 1024 * 1024  # 256 GiB: memory is never the limit here


def quiet() -> None:
    """Daemon logs at WARNING on stderr, so the JSON line stays the last line of stdout."""
    logs.setup("warning", "never")
    logging.getLogger("pvc").setLevel(logging.WARNING)


def domain_xml(name: str, vm_uuid: str, memory_mib: int = 64) -> str:
    return (f"<domain type='test'><name>{name}</name><uuid>{vm_uuid}</uuid>"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


def node_file(path: Path, domains: list[tuple[str, str]]) -> str:
    """Write a libvirt test-driver node file (with running domains); return its URI."""
    body = "".join(domain_xml(name, u) for name, u in domains)
    path.write_text("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>16</cores>"
                    "<threads>2</threads><active>32</active><mhz>2400</mhz>"
                    f"<model>i686</model></cpu><memory>{HOST_MEMORY_KIB}</memory>"
                    f"{body}</node>")
    return f"test://{path}"


def node_config(name: str, nodes: list[str], zk_hosts: str, root: str, uri: str,
                state_dir: Path, **timers: Any) -> Config:
    return parse_config({
        "node": {"name": name, "state_dir": str(state_dir)},
        "cluster": {"nodes": nodes},
        "zookeeper": {"hosts": [zk_hosts], "root": root, "session_timeout": 10,
                      "op_timeout": 30},
        "timers": {"keepalive_interval": 2, **timers},
        "fencing": {"enabled": False},
        "migration": {"parallel_limit": 8, "vm_timeout": 120},
        "hypervisor": {"driver": "libvirt", "libvirt": {"uri": uri}}})


def new_root() -> str:
    return f"/bench-{uuid.uuid4().hex[:8]}"


@contextmanager
def zookeeper(directory: Path, hosts: str | None) -> Iterator[str]:
    """``hosts`` when given, else a private ZooKeeper in ``directory`` (stopped after)."""
    if hosts:
        yield hosts
        return
    server = ZooKeeperServer(directory / "zk")
    server.start()
    try:
        yield server.hosts
    finally:
        server.stop()
