"""The server on its own ZooKeeper: 503 while ZooKeeper is gone (and back
after), TLS, the startup banner of pvcapid, and a refused start."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc_api.auth import hash_key, new_key
from pvc_api.server import ApiServer
from pvc_core.config import parse_config
from pvc_core.store import Store
from pvc_local.zookeeper import ZooKeeperServer
from tests.api.client import Http
from tests.cluster.conftest import domain_xml, wait_for

API = "/api/v1"
KEY = new_key()


def config(zk: ZooKeeperServer, **api: object):  # type: ignore[no-untyped-def]
    return parse_config({
        "cluster": {"name": "solo", "nodes": ["node1"], "coordinators": ["node1"]},
        "node": {"name": "node1"},
        "zookeeper": {"hosts": [f"127.0.0.1:{zk.port}"], "session_timeout": 4,
                      "op_timeout": 2},
        "hypervisor": {"enabled": True, "driver": "fake"},
        "api": {"port": 7370, "keys": [{"name": "ops", "hash": hash_key(KEY),
                                        "role": "admin"}], **api},
    })


@pytest.fixture
def zk(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    server = ZooKeeperServer(tmp_path / "zk", tick_ms=200)
    server.start()
    yield server
    server.stop()


def test_503_while_zookeeper_is_down_then_recovers(zk: ZooKeeperServer) -> None:
    Store.connect(zk.hosts).schema.initialise()
    server = ApiServer(config(zk), port=0)
    server.start()
    try:
        http = Http(server.url, KEY)
        assert http.get(f"{API}/vm").status == 200
        zk.stop()
        wait_for(lambda: http.get(f"{API}/vm").status == 503, 30, "503 on a read")
        answer = http.post(f"{API}/vm", {"xml": domain_xml("down")})
        assert answer.status == 503, answer.body
        assert http.post(f"{API}/cluster/maintenance", {"enabled": True}).status == 503
        zk.start()
        wait_for(lambda: http.get(f"{API}/vm").status == 200, 60, "reads again")
        assert http.post(f"{API}/vm", {"xml": domain_xml("up")}).status == 201
        assert [v["name"] for v in http.get(f"{API}/vm").body] in (["up"], [])
        wait_for(lambda: [v["name"] for v in http.get(f"{API}/vm").body] == ["up"], 10,
                 "the new VM listed")
    finally:
        server.stop()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "api.crt", directory / "api.key"
    openssl = shutil.which("openssl")
    assert openssl, "openssl is installed by scripts/install-deps"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
               "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
               "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603
    return cert, key


def test_tls(zk: ZooKeeperServer, tmp_path: Path) -> None:
    Store.connect(zk.hosts).schema.initialise()
    cert, key = _self_signed(tmp_path)
    server = ApiServer(config(zk, tls={"cert_file": str(cert), "key_file": str(key)}),
                       port=0)
    server.start()
    try:
        assert server.url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        assert Http(server.url, KEY, trusted).get(f"{API}/cluster").status == 200
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            Http(server.url, KEY, ssl.create_default_context()).get(f"{API}/cluster")
    finally:
        server.stop()


def test_pvcapid_banner_and_bad_config(zk: ZooKeeperServer, tmp_path: Path) -> None:
    import yaml

    Store.connect(zk.hosts).schema.initialise()
    cfg = config(zk)
    path = tmp_path / "pvc.yaml"
    path.write_text(yaml.safe_dump({
        "cluster": {"name": "solo", "nodes": ["node1"], "coordinators": ["node1"]},
        "node": {"name": "node1"},
        "zookeeper": {"hosts": [cfg.zookeeper.hosts]},
        "hypervisor": {"enabled": True, "driver": "fake"},
        "api": {"keys": [{"name": "ops", "hash": hash_key(KEY), "role": "admin"}]}}))
    proc = subprocess.Popen([sys.executable, "-m", "pvc_api.cli", "--config", str(path),  # noqa: S603
                             "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        banner = ""
        while "PVC API" not in banner:
            line = proc.stderr.readline()
            assert line, "pvcapid exited before its banner"
            banner = line
        assert "cluster solo" in banner and "http://127.0.0.1:" in banner
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    path.write_text("api: {port: 99999}\n")
    bad = subprocess.run([sys.executable, "-m", "pvc_api.cli", "--config", str(path)],  # noqa: S603
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
