"""The local cluster's API pieces that need no processes: the record, the generated
configuration's keys, the ``local`` connection and the CLI's handling of it.

The processes themselves (API servers answering, keys, down) are tested in
test_local_cluster.py and test_launcher_stub.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvc_api.auth import hash_key, new_key
from pvc_cli import connections
from pvc_core.config import load_config
from pvc_local import cli, configgen, connection
from pvc_local.procs import ProcRef
from pvc_local.state import ApiEntry, ClusterState, load_state, save_state
from pvc_local.status import ApiStatus


def test_record_round_trip_and_older_records(tmp_path: Path) -> None:
    state = ClusterState(str(tmp_path), "fake", zk_port=2181, zk_dir=str(tmp_path / "zk"),
                         api_key_file=str(tmp_path / "api.key"))
    state = state.with_api(ApiEntry("node1", 7001, "n1.log", ProcRef(10, 20)))
    state = state.with_api(ApiEntry("node2", 7002, "n2.log"))
    state = state.with_api(ApiEntry("node1", 7001, "n1.log"))  # replaced, order kept
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded == state
    assert [(a.node, a.url, a.process) for a in loaded.apis] == [
        ("node1", "http://127.0.0.1:7001", None), ("node2", "http://127.0.0.1:7002", None)]
    # a record written before the API existed has neither field
    data = json.loads((tmp_path / "cluster.json").read_text())
    del data["apis"], data["api_key_file"]
    (tmp_path / "cluster.json").write_text(json.dumps(data))
    old = load_state(tmp_path)
    assert old is not None and (old.apis, old.api_key_file, old.api_processes()) == ((), "", [])


def test_generated_keys_follow_the_overrides(tmp_path: Path) -> None:
    viewer = {"name": "viewer", "hash": hash_key(new_key()), "role": "read-only"}
    stale = {"name": "local-admin", "hash": hash_key("old"), "role": "read-only"}
    local = {"name": "local-admin", "hash": hash_key(new_key()), "role": "admin"}
    kwargs: dict[str, Any] = {
        "nodes": ["node1", "node2"], "zk_hosts": "127.0.0.1:2181",
        "state_dir": tmp_path / "state", "hypervisor": configgen.hypervisor_section("fake")}
    config = configgen.node_config("node1", api_port=7123, api_keys=[local],
                                   overrides={"api": {"keys": [viewer, stale]}}, **kwargs)
    assert config["api"] == {"listen": "127.0.0.1", "port": 7123, "keys": [viewer, local]}
    parsed = load_config(configgen.write_config(tmp_path / "pvc.yaml", config))
    assert (parsed.api.listen, parsed.api.port) == ("127.0.0.1", 7123)
    assert [(k.name, k.role) for k in parsed.api.keys] == [("viewer", "read-only"),
                                                           ("local-admin", "admin")]
    # not a coordinator: keys, no port; no API at all: the section is not written
    assert configgen.node_config("node2", api_keys=[local], **kwargs)["api"] == {
        "keys": [local]}
    assert "api" not in configgen.node_config("node2", **kwargs)


def _local(path: Path, port: int, key: str) -> None:
    connections.add_connection("other", "10.0.0.5", 7370, "k2", path=path)
    connections.add_connection("local", "127.0.0.1", port, key, default=True, path=path)


def test_unregister_removes_only_this_clusters_connection(tmp_path: Path) -> None:
    path = tmp_path / "client.yaml"
    assert connection.unregister({7001}, "key", path=path) is None  # no file at all
    assert not path.exists()
    _local(path, 7001, "key")
    assert connection.unregister({7002}, "key", path=path) is None  # another port
    assert connection.unregister({7001}, "other-key", path=path) is None  # another cluster
    assert connections.load(path).connections["local"].port == 7001
    assert connection.unregister({7001, 7002}, "key", path=path) == \
        f"removed pvc connection 'local' from {path}"
    cfg = connections.load(path)
    assert (sorted(cfg.connections), cfg.default) == (["other"], None)
    _local(path, 7001, "key")
    assert connection.unregister({7001}, None, path=path)  # key unknown (purged): port only


class FakeCluster:
    """Stands in for LocalCluster in the CLI: records up's arguments, starts nothing."""

    calls: list[dict[str, Any]] = []

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def up(self, **kwargs: Any) -> ClusterState:
        FakeCluster.calls.append(kwargs)
        state = ClusterState(str(self.directory), "fake", zk_port=2181)
        if kwargs["api"]:
            state = ClusterState(str(self.directory), "fake", zk_port=2181,
                                 apis=(ApiEntry("node1", 7555, "log"),),
                                 api_key_file=str(self.directory / "api.key"))
        self._state = state
        return state

    def record(self) -> ClusterState:
        return self._state

    def status(self) -> list[Any]:
        return []

    def api_status(self) -> list[ApiStatus]:
        return [ApiStatus(a.node, a.url, 1, "alive", a.log) for a in self._state.apis]

    def api_key(self) -> str:
        return "the-key"


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    FakeCluster.calls = []
    monkeypatch.setattr(cli, "LocalCluster", FakeCluster)
    return FakeCluster.calls


def test_cli_up_registers_local_unless_no_api(fake_cli: list[dict[str, Any]],
                                              client_config: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "c")
    assert cli.main(["up", "--dir", d, "--no-api", "--hypervisor", "fake"]) == 0
    assert fake_cli[-1]["api"] is False
    out = capsys.readouterr().out
    assert "API" not in out and "connection" not in out
    assert not client_config.exists()

    assert cli.main(["up", "--dir", d, "--hypervisor", "fake"]) == 0
    assert fake_cli[-1]["api"] is True
    out = capsys.readouterr().out
    assert f"API: http://127.0.0.1:7555 (admin key: {d}/api.key)\n" in out
    assert out.endswith(f"pvc connection 'local' (the default) -> http://127.0.0.1:7555 "
                        f"with the local-admin key, in {client_config}\n")
    local = connections.resolve(path=client_config)  # the default
    assert (local.name, local.port, local.key) == ("local", 7555, "the-key")


def test_cli_up_survives_a_broken_client_config(fake_cli: list[dict[str, Any]],
                                                client_config: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    client_config.parent.mkdir()
    client_config.write_text("connections: [not, a, mapping]\n")
    assert cli.main(["up", "--dir", str(tmp_path / "c"), "--hypervisor", "fake"]) == 0
    captured = capsys.readouterr()
    assert "pvc connection" not in captured.out
    err = captured.err.strip()
    assert err.startswith("pvc-local: warning: pvc connection 'local' not registered: ")
    assert "\n" not in err and str(client_config) in err
    assert yaml.safe_load(client_config.read_text()) == {"connections": ["not", "a", "mapping"]}
