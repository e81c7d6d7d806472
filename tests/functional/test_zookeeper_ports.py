"""A port taken between choosing it and the JVM binding it: the start tries new ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc_local import zookeeper
from pvc_local.zookeeper import ZooKeeperEnsemble, ZooKeeperError, ZooKeeperServer

pytestmark = pytest.mark.zookeeper


def take(port: int) -> socket.socket:
    """Listen on loopback ``port`` (0: any): what another process grabbed meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


@pytest.fixture
def taken() -> Iterator[socket.socket]:
    sock = take(0)
    yield sock
    sock.close()


def test_a_chosen_port_taken_meanwhile_is_replaced(
        tmp_path: Path, taken: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    port = taken.getsockname()[1]
    real = zookeeper.free_ports
    handed: list[list[int]] = [[port]]  # the first choice is the taken port
    monkeypatch.setattr(zookeeper, "free_ports",
                        lambda n: handed.pop(0) if handed else real(n))
    server = ZooKeeperServer(tmp_path / "zk", tick_ms=200)
    assert server.port == port
    try:
        server.start(timeout=60)
        assert server.port != port
        assert server.serving() and server.hosts == f"127.0.0.1:{server.port}"
        log = server.log_file.read_bytes()
        assert log.count(b"java.net.BindException") == 1  # the first run only
        assert f"binding to port /127.0.0.1:{port}".encode() in log
    finally:
        server.stop()


def test_a_given_port_that_is_taken_is_a_clear_error(
        tmp_path: Path, taken: socket.socket) -> None:
    port = taken.getsockname()[1]
    server = ZooKeeperServer(tmp_path / "zk", port, tick_ms=200)
    try:
        with pytest.raises(ZooKeeperError, match=rf"ports \[{port}\] was taken"):
            server.start(timeout=60)
        assert server.port == port  # never changed behind the caller's back
        assert server.log_file.read_bytes().count(b"java.net.BindException") == 1
    finally:
        server.stop()


def test_retries_are_bounded(tmp_path: Path, taken: socket.socket,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    port = taken.getsockname()[1]
    monkeypatch.setattr(zookeeper, "BIND_ATTEMPTS", 2)
    monkeypatch.setattr(zookeeper, "free_ports", lambda n: [port] * n)  # always taken
    server = ZooKeeperServer(tmp_path / "zk", tick_ms=200)
    try:
        with pytest.raises(ZooKeeperError, match="was taken"):
            server.start(timeout=60)
        assert server.log_file.read_bytes().count(b"java.net.BindException") == 2
        assert not server.running()
    finally:
        server.stop()


@pytest.mark.ensemble
@pytest.mark.parametrize("which", ["client", "election"])
def test_an_ensemble_starts_again_on_new_ports(tmp_path: Path, which: str) -> None:
    ensemble = ZooKeeperEnsemble(tmp_path / "ensemble", size=3, tick_ms=200)
    victim = ensemble.members[1]
    assert victim.server_id is not None
    port = victim.port if which == "client" else victim.peers[victim.server_id][1]
    sock = take(port)
    try:
        ensemble.start(timeout=120)
        assert all(m.serving() for m in ensemble.members)
        now = {p for m in ensemble.members for p in m.own_ports()}
        assert port not in now and len(now) == 9
        assert str(port) not in ensemble.hosts
        assert b"java.net.BindException" in victim.log_file.read_bytes()  # the first run
        assert not any(m.bind_failed() for m in ensemble.members)  # the run that serves
    finally:
        sock.close()
        ensemble.stop()
