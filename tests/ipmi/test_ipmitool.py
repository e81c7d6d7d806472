"""The ipmitool wrapper's pure parts: command line, environment, parsing, diagnosis."""

from __future__ import annotations

import os

import pytest

from pvc_core.drivers.fence import PowerState
from pvc_core.errors import DriverError, DriverTimeout
from pvc_plugins.fence_ipmi.driver import parse_power_status
from pvc_plugins.fence_ipmi.ipmitool import IpmiAuthError, IpmiTarget, child_env, explain, mask


def test_argv_has_no_password_and_bounds_ipmitool_itself() -> None:
    target = IpmiTarget("10.0.0.5", 6230, "admin", cipher_suite=3)
    argv = target.argv(["chassis", "power", "status"], 10.0)
    assert argv[:2] == ["ipmitool", "-v"]
    assert argv[argv.index("-I") + 1] == "lanplus"
    assert argv[argv.index("-C") + 1] == "3"
    assert argv[argv.index("-p") + 1] == "6230"
    assert "-E" in argv and "-P" not in argv and "-f" not in argv
    assert argv[argv.index("-N") + 1] == "5" and argv[argv.index("-R") + 1] == "1"
    assert argv[-3:] == ["chassis", "power", "status"]
    short = IpmiTarget("h", interface="lan").argv(["x"], 0.5)
    assert "-C" not in short and short[short.index("-N") + 1] == "1"


def test_child_env_carries_the_password_only_for_the_child() -> None:
    env = child_env("s3cret")
    assert env["IPMI_PASSWORD"] == "s3cret" and env["LC_ALL"] == "C" and env["PATH"]
    assert "IPMI_PASSWORD" not in os.environ
    assert mask("user s3cret failed: s3cret", "s3cret") == "user *** failed: ***"
    assert mask("unchanged", "") == "unchanged"


@pytest.mark.parametrize(("text", "state"), [
    ("Chassis Power is on", PowerState.ON),
    ("Chassis Power is off\n", PowerState.OFF),
    ("chassis power is OFF", PowerState.OFF),
    ("Chassis Power is unknown", PowerState.UNKNOWN),
    ("", PowerState.UNKNOWN),
    ("Chassis Power is online", PowerState.UNKNOWN),
])
def test_parse_power_status(text: str, state: PowerState) -> None:
    assert parse_power_status(text) is state


@pytest.mark.parametrize(("stderr", "cls", "words"), [
    ("Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish",
     IpmiAuthError, "(wrong password) (ipmitool: RAKP 2 HMAC is invalid)"),
    ("Loading IANA PEN Registry...\nGet Auth Capabilities error\nError issuing Get Channel",
     DriverTimeout, "no answer from the BMC"),
    ("> Error: no response from RAKP 1 message\n", DriverTimeout, "no answer after the user"),
    ("Error in open session response message : no matching cipher suite\n", IpmiAuthError,
     "refused the cipher suite"),
    ("lanplus: password is longer than 20 bytes.\n", IpmiAuthError, "too long"),
    ("Address lookup for bmc.invalid failed\n", DriverError, "does not resolve"),
    ("Set Chassis Power Control to Down/Off failed: Unspecified error\n", DriverError,
     "ipmitool: Set Chassis Power Control to Down/Off failed"),
    ("", DriverError, "no error message"),
])
def test_explain(stderr: str, cls: type[DriverError], words: str) -> None:
    found, reason = explain(stderr)
    assert found is cls
    assert words in reason and "\n" not in reason
