"""Fixtures for the ipmi fence driver: simulated BMCs (pyghmi, real RMCP+) on loopback.

Every test here drives ``ipmitool`` against a real BMC process started by
:func:`pvc_local.power.start_bmc`; the whole directory is skipped, with the
reason printed (``pytest -rs``), when ipmitool is not installed.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.factory import load_driver
from pvc_local import procs
from pvc_local.power import start_bmc
from pvc_local.state import BmcEntry
from pvc_plugins.fence_ipmi.driver import IpmiFenceDriver

POLL = 0.02


@pytest.fixture(autouse=True)
def _needs_ipmitool() -> None:
    if shutil.which("ipmitool") is None:
        pytest.skip("ipmitool is not installed (scripts/install-deps installs it)")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    end = time.monotonic() + timeout
    pause = threading.Event()
    last: Any = None
    while time.monotonic() < end:
        last = predicate()
        if last:
            return last
        pause.wait(POLL)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


@dataclass
class SimBmc:
    """A running simulated BMC, its victim process and the power-on marker file."""

    entry: BmcEntry
    process: subprocess.Popen[bytes]
    password: str
    victim: subprocess.Popen[bytes]
    powered_file: Path
    directory: Path

    def options(self, **overrides: Any) -> dict[str, Any]:
        """A valid ``ipmi`` chain entry (without ``driver``) reaching this BMC."""
        opts: dict[str, Any] = {"host": "127.0.0.1", "port": self.entry.port,
                                "username": "admin", "password_file": self.entry.password_file,
                                "cipher_suite": 3}
        opts.update(overrides)
        return {k: v for k, v in opts.items() if v is not None}

    def driver(self, **overrides: Any) -> IpmiFenceDriver:
        """The ``ipmi`` fence driver for this BMC, loaded through its entry point."""
        drv = load_driver("fence", "ipmi", self.options(**overrides),
                          DriverContext(node="target"))
        assert isinstance(drv, IpmiFenceDriver)
        return drv


@pytest.fixture
def sim_bmc(tmp_path: Path) -> Iterator[SimBmc]:
    """A BMC whose power-off SIGKILLs a real ``sleep`` child and whose power-on touches a file."""
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)  # noqa: S603
    ref = procs.ref_of(victim.pid)
    pidfile = tmp_path / "victim.pid"
    pidfile.write_text(f"{ref.pid} {ref.start_time}\n")
    powered = tmp_path / "powered-on"
    password = "pw-" + secrets.token_hex(6)
    proc, entry = start_bmc(tmp_path / "bmc", "target", victim_pidfile=pidfile,
                            power_on_command=["touch", str(powered)], password=password)
    try:
        yield SimBmc(entry, proc, password, victim, powered, tmp_path / "bmc")
    finally:
        for child in (proc, victim):
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            child.wait(10)
