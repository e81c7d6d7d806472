"""Named connections to PVC APIs, kept in the user's client configuration file.

The file is ``$PVC_CLIENT_CONFIG`` or ``~/.config/pvc/client.yaml``::

    default: prod
    connections:
      prod: {address: pvc1.example.org, port: 7370, key: "...", tls: true, verify: true}
      lab:  {address: 10.0.0.5, port: 7370, key: "...", tls: true, verify: /etc/pvc/lab-ca.pem}

It holds API keys, so it is created with mode 0600 in a directory created with
mode 0700, and replaced atomically (a temporary file created 0600 in the same
directory, then ``os.replace``): it is never readable by others, not even for
a moment. Changes are serialised with a lock file next to it.

When no user file exists but the server configuration does
(``$PVC_CONFIG`` or ``/etc/pvc/pvc.yaml``, as on a coordinator), a connection
named ``local`` is derived from its ``api`` section, with the key taken from
the environment variable ``PVC_API_KEY``.

This module imports YAML lazily, so importing it costs nothing at start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvc_cli.errors import ConfigError

DEFAULT_PORT = 7370
ENV_CLIENT_CONFIG = "PVC_CLIENT_CONFIG"
ENV_CONNECTION = "PVC_CONNECTION"
ENV_API_KEY = "PVC_API_KEY"
ENV_SERVER_CONFIG = "PVC_CONFIG"
SERVER_CONFIG = "/etc/pvc/pvc.yaml"
LOCAL = "local"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Connection:
    """How to reach one PVC API. ``verify``: True, False, or the path of a CA file."""

    name: str
    address: str
    port: int = DEFAULT_PORT
    key: str | None = field(default=None, repr=False)  # never shown
    tls: bool = False
    verify: bool | str = True
    source: str = ""  # the file it came from

    @property
    def url(self) -> str:
        """``http(s)://address:port`` (IPv6 addresses in brackets)."""
        host = self.address
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        """The entry written to the connections file."""
        return {"address": self.address, "port": self.port, "key": self.key,
                "tls": self.tls, "verify": self.verify}


@dataclass
class ClientConfig:
    """The connections known to the client and the default one."""

    path: Path
    default: str | None = None
    connections: dict[str, Connection] = field(default_factory=dict)
    derived: bool = False  # True: no user file, ``local`` comes from the server config


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The user's connections file: ``path``, else $PVC_CLIENT_CONFIG, else ~/.config/pvc."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_CLIENT_CONFIG)
    if env:
        return Path(env)
    return Path.home() / ".config" / "pvc" / "client.yaml"


def server_config_path() -> Path:
    return Path(os.environ.get(ENV_SERVER_CONFIG) or SERVER_CONFIG)


# -- reading -------------------------------------------------------------------


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"invalid connection name {name!r}: use letters, digits, '.', '_', '-'")
    return name


def _check_port(port: object, where: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port must be an integer from 1 to 65535, got {port!r}")
    return port


def _check_verify(verify: object, where: str) -> bool | str:
    if isinstance(verify, bool):
        return verify
    if isinstance(verify, str) and verify:
        return verify
    raise ConfigError(f"{where}: verify must be true, false or the path of a CA file")


def _parse_entry(name: str, entry: object, source: str) -> Connection:
    where = f"{source}: connection {name!r}"
    _check_name(name)
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = set(entry) - {"address", "port", "key", "tls", "verify"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    address = entry.get("address")
    if not isinstance(address, str) or not address:
        raise ConfigError(f"{where}: address must be a non-empty string")
    key = entry.get("key")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"{where}: key must be a string")
    tls = entry.get("tls", False)
    if not isinstance(tls, bool):
        raise ConfigError(f"{where}: tls must be true or false")
    return Connection(name, address, _check_port(entry.get("port", DEFAULT_PORT), where),
                      key or None, tls, _check_verify(entry.get("verify", True), where), source)


def _parse(text: str, path: Path) -> ClientConfig:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping with 'default' and 'connections'")
    unknown = set(data) - {"default", "connections"}
    if unknown:
        raise ConfigError(f"{path}: unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    entries = data.get("connections") or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: 'connections' must be a mapping of name to connection")
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"{path}: 'default' must be a connection name")
    conns = {str(n): _parse_entry(str(n), e, str(path)) for n, e in entries.items()}
    return ClientConfig(path, default, conns)


def derived_local() -> Connection | None:
    """The ``local`` connection described by the server configuration, if readable."""
    import yaml

    path = server_config_path()
    try:
        data = yaml.safe_load(path.read_text())
        api = data.get("api") or {}
        listen = str(api.get("listen") or "127.0.0.1")
        port = int(api.get("port") or DEFAULT_PORT)
        tls = api.get("tls")
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
        return None  # absent, unreadable or broken: nothing to derive
    listen = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(listen, listen)
    verify: bool | str = True
    if isinstance(tls, dict) and tls.get("cert_file"):
        verify = str(tls["cert_file"])  # trust the server's own certificate
    return Connection(LOCAL, listen, port, os.environ.get(ENV_API_KEY) or None,
                      bool(tls), verify, str(path))


def load(path: str | os.PathLike[str] | None = None) -> ClientConfig:
    """Read the connections; a missing user file gives the derived ``local`` one, if any."""
    p = config_path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        local = derived_local()
        if local is None:
            return ClientConfig(p)
        return ClientConfig(p, None, {LOCAL: local}, derived=True)
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror or e}") from None
    return _parse(text, p)


def resolve(name: str | None = None, path: str | os.PathLike[str] | None = None) -> Connection:
    """The connection to use: ``name``, else $PVC_CONNECTION, else the default, else the
    only one; a ConfigError naming the known connections otherwise."""
    cfg = load(path)
    known = ", ".join(sorted(cfg.connections)) or "none"
    chosen = name or os.environ.get(ENV_CONNECTION) or None
    if chosen is None:
        if cfg.default is not None:
            if cfg.default not in cfg.connections:
                raise ConfigError(f"the default connection {cfg.default!r} does not exist "
                                  f"in {cfg.path} (known: {known})")
            chosen = cfg.default
        elif len(cfg.connections) == 1:
            chosen = next(iter(cfg.connections))
        elif not cfg.connections:
            raise ConfigError(f"no connection configured: add one with 'pvc connection add NAME "
                              f"--address ADDRESS' (file: {cfg.path})")
        else:
            raise ConfigError(f"several connections and no default: choose one with "
                              f"-c NAME or {ENV_CONNECTION} (known: {known})")
    try:
        return cfg.connections[chosen]
    except KeyError:
        raise ConfigError(f"unknown connection {chosen!r} (known: {known})") from None


# -- writing -------------------------------------------------------------------


def _ensure_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles of ``path`` (pvc-local and a user at once)."""
    import fcntl

    _ensure_dir(path.parent)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a new 0600 file in the same directory, then rename."""
    _ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _save(cfg: ClientConfig) -> None:
    import yaml

    data: dict[str, Any] = {}
    if cfg.default is not None:
        data["default"] = cfg.default
    data["connections"] = {n: c.to_dict() for n, c in sorted(cfg.connections.items())}
    _write_atomic(cfg.path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _load_user(path: Path) -> ClientConfig:
    """The user file only (never the derived connection), for modification."""
    try:
        return _parse(path.read_text(), path)
    except FileNotFoundError:
        return ClientConfig(path)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None


def add_connection(name: str, address: str, port: int, key: str | None, tls: bool = False,
                   verify: bool | str = True, default: bool = False,
                   path: str | os.PathLike[str] | None = None) -> Connection:
    """Add (or replace) connection ``name``; ``default=True`` also makes it the default."""
    p = config_path(path)
    where = f"connection {name!r}"
    _check_name(name)
    if not isinstance(address, str) or not address:
        raise ConfigError(f"{where}: address must be a non-empty string")
    _check_port(port, where)
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"{where}: key must be a non-empty string")
    verify = _check_verify(verify, where)
    if isinstance(verify, str):
        verify = os.path.abspath(os.path.expanduser(verify))
        if not os.path.isfile(verify):
            raise ConfigError(f"{where}: CA file {verify} does not exist")
    conn = Connection(name, address, port, key, bool(tls), verify, str(p))
    with _locked(p):
        cfg = _load_user(p)
        cfg.connections[name] = conn
        if default:
            cfg.default = name
        _save(cfg)
    return conn


def remove_connection(name: str, path: str | os.PathLike[str] | None = None) -> None:
    """Remove connection ``name`` from the user file (and as the default)."""
    p = config_path(path)
    with _locked(p):
        cfg = _load_user(p)
        if name not in cfg.connections:
            known = ", ".join(sorted(cfg.connections)) or "none"
            raise ConfigError(f"unknown connection {name!r} in {p} (known: {known})")
        del cfg.connections[name]
        if cfg.default == name:
            cfg.default = None
        _save(cfg)
