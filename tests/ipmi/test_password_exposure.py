"""The password is never on any process's command line while fencing.

A sampler thread reads ``/proc/*/cmdline`` of every process every
millisecond or so while the driver validates, reads the status, powers the
node off (proving it off) and on again. It must see the ipmitool processes
(so the check is not vacuous) and must never see the password; nor may the
BMC process's command line or environment, or this process's environment.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from pvc_core.drivers.fence import PowerState

from .conftest import SimBmc


class CmdlineSampler(threading.Thread):
    """Reads every process's ``/proc/PID/cmdline`` in a loop until stopped."""

    def __init__(self, secret: str, marker: str = "ipmitool") -> None:
        super().__init__(name="cmdline-sampler", daemon=True)
        self.secret = secret.encode()
        self.marker = marker.encode()
        self.stop = threading.Event()
        self.sweeps = 0
        self.leaks: list[str] = []
        self.seen: set[str] = set()  # command lines that contain the marker

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                        raw = fh.read()
                except OSError:
                    continue  # exited meanwhile
                if self.secret in raw:
                    self.leaks.append(raw.replace(b"\0", b" ").decode(errors="replace"))
                if self.marker in raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self.sweeps += 1
            self.stop.wait(0.001)


def test_sampler_catches_a_password_on_argv(tmp_path: Path) -> None:
    secret = "sampler-self-test-secret"
    sampler = CmdlineSampler(secret, marker="sampler-self-test")
    sampler.start()
    try:
        # a shell script's $0 and $1 stay on its command line for 0.2 s
        subprocess.run(["sh", "-c", "sleep 0.2", "sh", secret], check=True)  # noqa: S603
    finally:
        sampler.stop.set()
        sampler.join(5)
    assert sampler.leaks, "the sampler cannot see a password on a command line"


def test_password_absent_from_every_argv_while_fencing(sim_bmc: SimBmc) -> None:
    driver = sim_bmc.driver()
    sampler = CmdlineSampler(sim_bmc.password)
    sampler.start()
    try:
        assert driver.validate().ok
        for _ in range(5):
            assert driver.power_status(10) is PowerState.ON
        driver.power_off(10)
        assert driver.power_status(10) is PowerState.OFF
        driver.power_on(10)
        assert driver.power_status(10) is PowerState.ON
    finally:
        sampler.stop.set()
        sampler.join(5)
    assert sampler.leaks == [], f"password on a command line: {sampler.leaks}"
    calls = [c for c in sampler.seen if "chassis power" in c]
    assert calls, f"the sampler never saw an ipmitool call in {sampler.sweeps} sweeps"
    assert all(" -E " in c and " -P " not in c for c in calls), calls

    secret = sim_bmc.password.encode()
    bmc_pid = sim_bmc.process.pid
    assert secret not in Path(f"/proc/{bmc_pid}/cmdline").read_bytes()
    assert secret not in Path(f"/proc/{bmc_pid}/environ").read_bytes()
    assert sim_bmc.password not in os.environ.values()
    assert "IPMI_PASSWORD" not in os.environ
    assert secret not in (sim_bmc.directory / "config.json").read_bytes()
    assert (Path(sim_bmc.entry.password_file).stat().st_mode & 0o777) == 0o600
