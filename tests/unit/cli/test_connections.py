"""Named connections: the file, its modes, choosing one, and never showing a key."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc_cli import connections
from pvc_cli.errors import ConfigError
from tests.unit.cli.conftest import KEY, FakeApi, Result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_add_list_remove_round_trip(client_config: Path) -> None:
    connections.add_connection("a", "10.0.0.1", 7370, "ka")
    connections.add_connection("b", "pvc.example.org", 8443, "kb", tls=True, verify=False,
                               default=True)
    cfg = connections.load()
    assert cfg.default == "b"
    assert sorted(cfg.connections) == ["a", "b"]
    b = cfg.connections["b"]
    assert (b.address, b.port, b.key, b.tls, b.verify) == ("pvc.example.org", 8443, "kb",
                                                           True, False)
    assert b.url == "https://pvc.example.org:8443"
    connections.remove_connection("b")
    cfg = connections.load()
    assert list(cfg.connections) == ["a"]
    assert cfg.default is None  # removing the default unsets it


def test_add_replaces_a_connection_of_the_same_name(client_config: Path) -> None:
    connections.add_connection("a", "10.0.0.1", 7370, "old")
    connections.add_connection("a", "10.0.0.2", 7371, "new")
    conn = connections.load().connections["a"]
    assert (conn.address, conn.port, conn.key) == ("10.0.0.2", 7371, "new")


def test_file_is_0600_and_directory_0700_whatever_the_umask(client_config: Path) -> None:
    old = os.umask(0)
    try:
        connections.add_connection("a", "10.0.0.1", 7370, "ka")
    finally:
        os.umask(old)
    assert mode(client_config) == 0o600
    assert mode(client_config.parent) == 0o700
    assert [p.name for p in client_config.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_file_is_never_readable_by_others_even_before_the_rename(
        client_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append(mode(Path(src)))
        assert Path(src).parent == Path(dst).parent  # same directory: an atomic rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    old = os.umask(0)
    try:
        connections.add_connection("a", "10.0.0.1", 7370, "ka")
        connections.add_connection("b", "10.0.0.2", 7370, "kb")
    finally:
        os.umask(old)
    assert seen == [0o600, 0o600]


def test_existing_world_readable_file_is_replaced_by_a_private_one(client_config: Path) -> None:
    client_config.parent.mkdir(parents=True)
    client_config.write_text("connections: {}\n")
    client_config.chmod(0o644)
    connections.add_connection("a", "10.0.0.1", 7370, "ka")
    assert mode(client_config) == 0o600


def test_resolve_order(client_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    connections.add_connection("only", "10.0.0.1", 7370, "k")
    assert connections.resolve().name == "only"  # the only one
    connections.add_connection("other", "10.0.0.2", 7370, "k")
    with pytest.raises(ConfigError, match="several connections and no default"):
        connections.resolve()
    connections.add_connection("other", "10.0.0.2", 7370, "k", default=True)
    assert connections.resolve().name == "other"  # the default
    monkeypatch.setenv("PVC_CONNECTION", "only")
    assert connections.resolve().name == "only"  # the environment beats the default
    assert connections.resolve("other").name == "other"  # an explicit name beats both


def test_resolve_errors_are_clear(client_config: Path) -> None:
    with pytest.raises(ConfigError, match="no connection configured"):
        connections.resolve()
    connections.add_connection("a", "10.0.0.1", 7370, "k")
    with pytest.raises(ConfigError, match=r"unknown connection 'nope' \(known: a\)"):
        connections.resolve("nope")


def test_invalid_file_is_a_clear_error(client_config: Path) -> None:
    client_config.parent.mkdir(parents=True)
    client_config.write_text("connections:\n  a: {address: x, port: 99999}\n")
    with pytest.raises(ConfigError, match="port must be an integer from 1 to 65535"):
        connections.load()
    client_config.write_text("connections: [a, b\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        connections.load()


def test_bad_arguments_are_refused(client_config: Path) -> None:
    with pytest.raises(ConfigError, match="invalid connection name"):
        connections.add_connection("a b", "x", 7370, "k")
    with pytest.raises(ConfigError, match="port"):
        connections.add_connection("a", "x", 0, "k")
    with pytest.raises(ConfigError, match="CA file"):
        connections.add_connection("a", "x", 7370, "k", tls=True, verify="/no/such/ca.pem")
    assert not client_config.exists()


def test_local_connection_is_derived_from_the_server_config(
        client_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = tmp_path / "pvc.yaml"
    server.write_text("api:\n  listen: 0.0.0.0\n  port: 7999\n"
                      "  tls: {cert_file: /etc/pvc/api.crt, key_file: /etc/pvc/api.key}\n")
    monkeypatch.setenv("PVC_CONFIG", str(server))
    monkeypatch.setenv("PVC_API_KEY", "envkey")
    conn = connections.resolve()
    assert (conn.name, conn.address, conn.port, conn.key, conn.tls, conn.verify) == (
        "local", "127.0.0.1", 7999, "envkey", True, "/etc/pvc/api.crt")
    # Once the user has a file of their own, it alone counts.
    connections.add_connection("mine", "10.0.0.1", 7370, "k")
    assert list(connections.load().connections) == ["mine"]


def test_key_is_not_in_repr(client_config: Path) -> None:
    conn = connections.add_connection("a", "10.0.0.1", 7370, KEY)
    assert KEY not in repr(conn)


# -- through the command line ---------------------------------------------------------


def test_connection_commands_round_trip(client_config: Path, pvc: Callable[..., Result],
                                        monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.setenv("PVC_API_KEY", KEY)
    r = pvc("connection", "add", "lab", "--address", "10.1.1.1", "--default", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["key"] == "set"
    keyfile = tmp_path / "key"
    keyfile.write_text("other-key\n")
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    r = pvc("connection", "add", "prod", "--address", "pvc.example.org", "--port", "8443",
            "--tls", "--ca-file", str(ca), "--key-file", str(keyfile))
    assert r.code == 0, r.err
    r = pvc("connection", "list", "-f", "json")
    assert r.code == 0, r.err
    rows = {row["name"]: row for row in r.json()}
    assert rows["lab"]["default"] is True and rows["prod"]["default"] is False
    assert rows["prod"]["verify"] == str(ca) and rows["prod"]["tls"] is True
    assert connections.load().connections["prod"].key == "other-key"
    r = pvc("connection", "remove", "lab")
    assert r.code == 0, r.err
    assert sorted(connections.load().connections) == ["prod"]
    assert mode(client_config) == 0o600


@pytest.mark.parametrize("fmt", ["table", "json", "yaml", "value", "csv"])
def test_connection_list_never_shows_the_key(client_config: Path, pvc: Callable[..., Result],
                                             fmt: str) -> None:
    connections.add_connection("a", "10.0.0.1", 7370, KEY)
    r = pvc("connection", "list", "-f", fmt)
    assert r.code == 0, r.err
    assert "10.0.0.1" in r.out  # the listing is really there
    assert KEY not in r.out + r.err
    assert "set" in r.out


def test_no_key_option_on_the_command_line(client_config: Path,
                                           pvc: Callable[..., Result]) -> None:
    r = pvc("connection", "add", "a", "--address", "x", "--key", KEY)
    assert r.code == 2
    assert len(r.err_lines) == 1 and "argument --key: is not accepted" in r.err
    assert KEY not in r.err  # not even echoed back
    r = pvc("connection", "add", "a", "--address", "x", "--ke", KEY)  # no abbreviations
    assert r.code == 2
    assert r.err_lines[0].startswith("Error: unrecognized arguments: --ke ")
    assert not client_config.exists()


def test_connection_add_without_a_key_and_terminal_refuses(client_config: Path,
                                                           pvc: Callable[..., Result]) -> None:
    r = pvc("connection", "add", "a", "--address", "x")
    assert r.code == 1
    assert r.err_lines == ["Error: no API key: use --key-file FILE, set PVC_API_KEY, or run "
                           "on a terminal to be prompted"]
    assert not client_config.exists()


def test_dash_c_beats_the_environment(api: FakeApi, pvc: Callable[..., Result],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    connections.add_connection("dead", "127.0.0.1", 9, "k", default=True)
    api.route("GET", "/cluster", (200, {"name": "c1", "health": "ok"}))
    monkeypatch.setenv("PVC_CONNECTION", "dead")
    r = pvc("-c", "test", "cluster", "status", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["name"] == "c1"
    monkeypatch.setenv("PVC_CONNECTION", "test")
    r = pvc("cluster", "status", "-f", "json")  # the environment beats the default
    assert r.code == 0, r.err
    r = pvc("-c", "dead", "cluster", "status")
    assert r.code == 1
    assert r.err_lines[0].startswith("Error: cannot reach http://127.0.0.1:9: ")
    assert len(api.requests) == 2


def test_unknown_connection_is_one_clear_line(api: FakeApi, pvc: Callable[..., Result]) -> None:
    r = pvc("-c", "nope", "vm", "list")
    assert r.code == 1
    assert r.err_lines == ["Error: unknown connection 'nope' (known: test)"]
    assert r.out == ""
    assert api.requests == []
