"""The ipmi fence driver against a real simulated BMC (ipmitool, lanplus, cipher suite 3)."""

from __future__ import annotations

import os
import shlex
import signal
import time
from pathlib import Path

import pytest

from pvc_core.config.messages import validate as schema_problems
from pvc_core.drivers.fence import PowerState
from pvc_core.errors import DriverError, DriverTimeout
from pvc_local import procs
from pvc_local.bmc import read_power_state
from pvc_plugins.fence_ipmi.driver import IpmiFenceDriver
from pvc_plugins.fence_ipmi.ipmitool import IpmiAuthError

from .conftest import SimBmc, wait_for


def test_status_off_on_round_trip(sim_bmc: SimBmc) -> None:
    driver = sim_bmc.driver()
    result = driver.validate()
    assert result.ok, result.message
    assert "power on" in result.message

    assert driver.power_status(10) is PowerState.ON
    assert sim_bmc.victim.poll() is None

    started = time.monotonic()
    driver.power_off(10)  # returns only once the BMC reads off
    proved = time.monotonic() - started
    assert sim_bmc.victim.wait(5) == -signal.SIGKILL  # the victim really died
    assert driver.power_status(10) is PowerState.OFF
    assert read_power_state(sim_bmc.entry.state_file) == "off"
    driver.power_off(10)  # already off: not an error
    assert not sim_bmc.powered_file.exists()

    driver.power_on(10)
    wait_for(sim_bmc.powered_file.exists, 10, "the power-on command to run")
    assert driver.power_status(10) is PowerState.ON
    print(f"\nfence off -> proved off: {proved * 1000:.0f} ms")
    assert proved < 5


def test_wrong_password(sim_bmc: SimBmc) -> None:
    driver = sim_bmc.driver(password_file=None, password="not-the-password")
    result = driver.validate()
    assert not result.ok
    assert "authentication failed (wrong password)" in result.message
    assert "fencing target would fail" in result.message
    started = time.monotonic()
    with pytest.raises(IpmiAuthError, match=r"chassis power status on 127\.0\.0\.1:\d+: "
                                            r"authentication failed \(wrong password\)"):
        driver.power_status(10)
    assert time.monotonic() - started < 2  # refused at once, and never retried
    with pytest.raises(DriverError, match="wrong password"):
        driver.power_off(10)
    assert sim_bmc.victim.poll() is None  # nothing was powered off
    assert "not-the-password" not in result.message


def test_unreachable_port_fails_within_the_timeout(sim_bmc: SimBmc) -> None:
    driver = sim_bmc.driver(port=1, timeout=3)  # ipmitool gives up after 2 s
    started = time.monotonic()
    result = driver.validate()
    assert not result.ok and "no answer from the BMC" in result.message
    assert time.monotonic() - started < 5
    started = time.monotonic()
    with pytest.raises(DriverTimeout):  # one attempt killed at 2.5 s (ipmitool gives up at 2)
        driver.power_off(2.5)
    assert time.monotonic() - started < 3.5


def test_a_hung_ipmitool_is_killed_at_its_timeout(sim_bmc: SimBmc, tmp_path: Path) -> None:
    fake = tmp_path / "hung-ipmitool"
    pidfile = tmp_path / "hung.pid"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    fake.chmod(0o755)
    driver = sim_bmc.driver(ipmitool=str(fake), timeout=1, retries=0)
    started = time.monotonic()
    with pytest.raises(DriverTimeout, match=r"no result within 1\.0s \(killed"):
        driver.power_status(5)
    assert time.monotonic() - started < 3
    pid = int(pidfile.read_text())
    assert not procs.is_running(procs.ProcRef(pid, procs.start_time_of(pid) or 0))


def test_retries_stop_at_the_deadline(sim_bmc: SimBmc, tmp_path: Path) -> None:
    fake = tmp_path / "failing-ipmitool"
    count = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho x >> {count}\necho 'Error: something broke' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    with pytest.raises(DriverError, match="ipmitool: Error: something broke"):
        sim_bmc.driver(ipmitool=str(fake), retries=2).power_status(10)
    assert count.read_text().count("x") == 3  # one call and two retries


def test_missing_ipmitool_and_password_file(sim_bmc: SimBmc, tmp_path: Path) -> None:
    result = sim_bmc.driver(ipmitool=str(tmp_path / "nope")).validate()
    assert not result.ok and "not found" in result.message
    missing = sim_bmc.driver(password_file=str(tmp_path / "no-such-file"))
    assert not missing.validate().ok
    with pytest.raises(IpmiAuthError, match="cannot read password_file"):
        missing.power_status(5)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(IpmiAuthError, match="is empty"):
        sim_bmc.driver(password_file=str(empty)).power_status(5)


def test_password_file_is_read_at_call_time_and_checked(sim_bmc: SimBmc,
                                                        tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "secret"
    secret.write_text("wrong\n")
    os.chmod(secret, 0o600)
    driver = sim_bmc.driver(password_file=str(secret))
    assert not driver.validate().ok
    secret.write_text(sim_bmc.password + "\n")  # rotated: no new driver needed
    result = driver.validate()
    assert result.ok and "WARNING" not in result.message
    os.chmod(secret, 0o644)
    result = driver.validate()
    assert result.ok and "world-readable" in result.message
    with caplog.at_level("WARNING"):
        assert driver.power_status(5) is PowerState.ON
    assert "world-readable" in caplog.text and sim_bmc.password not in caplog.text


def test_config_schema() -> None:
    schema = IpmiFenceDriver.config_schema
    ok = {"host": "10.0.0.1", "username": "admin", "password_file": "/etc/pvc/p"}
    assert schema_problems(schema, ok) == []
    assert schema_problems(schema, {**ok, "password_file": None} | {"password": 1234}) != []
    neither = {"host": "10.0.0.1", "username": "admin"}
    assert [str(p.path) for p in schema_problems(schema, neither)] == ["('password',)"]
    both = schema_problems(schema, {**ok, "password": "s3cret"})
    assert len(both) == 1 and "not both" in both[0].reason and "s3cret" not in both[0].reason
    assert schema_problems(schema, {**ok, "cipher_suite": 18}) != []
    assert schema_problems(schema, {**ok, "interface": "serial"}) != []
    assert schema_problems(schema, {**ok, "extra": 1}) != []
    numeric = {"host": "10.0.0.1", "username": "admin", "password": 123456}
    assert schema_problems(schema, numeric) == []


def fake_ipmitool(tmp_path: Path, off: str, status: str) -> Path:
    """An ipmitool stand-in: ``off`` and ``status`` are shell snippets for those commands."""
    script = tmp_path / "fake-ipmitool"
    script.write_text('#!/bin/sh\nfor last; do :; done\n'
                      f'case "$last" in off) {off};; status) {status};; esac\n')
    script.chmod(0o755)
    return script


def test_power_off_that_never_reads_off_times_out(sim_bmc: SimBmc, tmp_path: Path) -> None:
    fake = fake_ipmitool(tmp_path, "echo 'Chassis Power Control: Down/Off'",
                         "echo 'Chassis Power is on'")
    started = time.monotonic()
    with pytest.raises(DriverTimeout, match=r"accepted, but not proved off within 1\.5s "
                                            r"\(status reads on\)"):
        sim_bmc.driver(ipmitool=str(fake)).power_off(1.5)
    assert 1.2 < time.monotonic() - started < 2.5


def test_power_off_whose_answer_is_lost_is_proved_by_status(sim_bmc: SimBmc,
                                                            tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    log = f"echo \"$last\" >> {shlex.quote(str(calls))}; "
    fake = fake_ipmitool(tmp_path, log + "echo 'Error: lost' >&2; exit 1",
                         log + "echo 'Chassis Power is off'")
    sim_bmc.driver(ipmitool=str(fake), retries=0).power_off(5)  # proved off: no error
    # One power-off attempt (no retry), then one status read proved the node off.
    assert calls.read_text().split() == ["off", "status"]
    assert sim_bmc.victim.poll() is None  # the answer came from the stand-in, not the BMC


def test_a_refused_power_off_raises_and_the_node_stays_on(sim_bmc: SimBmc) -> None:
    Path(sim_bmc.directory.parent / "victim.pid").write_text("garbage\n")  # cannot kill
    driver = sim_bmc.driver(retries=0)
    with pytest.raises(DriverError, match="Set Chassis Power Control to Down/Off failed"):
        driver.power_off(5)
    assert driver.power_status(5) is PowerState.ON
    assert "power off failed" in Path(sim_bmc.entry.log).read_text()
