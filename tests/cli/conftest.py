"""Fixtures of the CLI functional tests: the real ``pvc`` executable, run as a
subprocess, against the API test cluster (three real node daemons on real
ZooKeeper, fake hypervisor; an in-process API server with an admin and a
read-only key).

The cluster and API server fixtures are those of ``tests/api``; imported here
they are scoped to this package, so the suite starts one cluster.
``client_config`` is a connections file with ``admin`` (the default),
``viewer`` (the read-only key) and ``down`` (a port nothing listens on).
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pvc_api.server import ApiServer
from pvc_cli.connections import add_connection
from pvc_local.demo import client_env, pvc_argv
from tests.api.conftest import api_server, cluster, keys, store  # noqa: F401  (fixtures)
from tests.cluster.conftest import wait_for

__all__ = ["Pvc", "Result", "wait_for", "write_xml"]

TIMEOUT = 120.0  # for one pvc run; --wait commands bound themselves with --timeout


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def xml(name: str, vm_uuid: str, memory_mib: int = 256) -> str:
    return (f"<domain type='test'><name>{name}</name><uuid>{vm_uuid}</uuid>"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


def write_xml(directory: Path, name: str, memory_mib: int = 256,
              vm_uuid: str | None = None) -> tuple[Path, str]:
    """A domain XML file for VM ``name``; returns the file and the VM's UUID."""
    vm_uuid = vm_uuid or str(uuid.uuid4())
    path = directory / f"{name}-{memory_mib}.xml"
    path.write_text(xml(name, vm_uuid, memory_mib))
    return path, vm_uuid


@dataclass
class Result:
    """One finished ``pvc`` run."""

    argv: list[str]
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except ValueError:
            raise AssertionError(f"{self}: stdout is not JSON") from None

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def ok(self) -> Result:
        """Self, after checking the exit code is 0."""
        assert self.code == 0, str(self)
        return self

    def one_error(self, code: int = 1) -> str:
        """The single ``Error:`` line of a failure (exit ``code``, nothing else on stderr)."""
        assert self.code == code, str(self)
        assert len(self.err_lines) == 1, str(self)
        assert self.err_lines[0].startswith("Error: "), str(self)
        assert "Traceback" not in self.err and self.out == "", str(self)
        return self.err_lines[0]

    def __str__(self) -> str:
        return (f"pvc {' '.join(self.argv)} -> exit {self.code}\n--- stdout:\n{self.out}"
                f"\n--- stderr:\n{self.err}")


Pvc = Callable[..., Result]


@pytest.fixture(scope="package")
def client_config(api_server: ApiServer, keys: dict[str, str],  # noqa: F811
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cliconfig") / "client.yaml"
    host = urlsplit(api_server.url).hostname or "127.0.0.1"
    add_connection("admin", host, api_server.port, keys["admin"], default=True, path=path)
    add_connection("viewer", host, api_server.port, keys["viewer"], path=path)
    add_connection("down", "127.0.0.1", free_port(), keys["admin"], path=path)
    return path


@pytest.fixture(scope="package")
def pvc(client_config: Path) -> Pvc:
    """``pvc(*args, connection=None)``: run the real executable, stdin not a terminal."""
    exe = pvc_argv()
    env = client_env(client_config)

    def run(*args: str, connection: str | None = None, timeout: float = TIMEOUT) -> Result:
        argv = (["-c", connection] if connection else []) + [str(a) for a in args]
        proc = subprocess.run([*exe, *argv], env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                              capture_output=True, text=True, timeout=timeout, check=False)
        return Result(argv, proc.returncode, proc.stdout, proc.stderr)

    return run
