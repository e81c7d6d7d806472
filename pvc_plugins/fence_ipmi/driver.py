"""The ``ipmi`` fence driver: ipmitool over lanplus (see the package docstring)."""

from __future__ import annotations

import re
import shutil
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pvc_core.clock import Deadline
from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.fence import FenceDriver, PowerState
from pvc_core.errors import DriverError, DriverTimeout
from pvc_plugins.fence_ipmi.ipmitool import IpmiAuthError, IpmiTarget, run_ipmitool

#: Longest validate() may take (FenceDriver.validate: within 5 s).
VALIDATE_TIMEOUT = 5.0
#: Pause between two power-status reads while a power-off is being proved.
POLL_INTERVAL = 0.2
#: A retry is only worth starting with at least this much time left.
MIN_ATTEMPT = 0.5
_STATUS = re.compile(r"Chassis Power is (on|off)\b", re.IGNORECASE)

_PRIVILEGES = ["CALLBACK", "USER", "OPERATOR", "ADMINISTRATOR"]


def parse_power_status(text: str) -> PowerState:
    """``Chassis Power is on|off`` -> ON/OFF; anything else -> UNKNOWN."""
    found = _STATUS.search(text)
    return PowerState(found.group(1).lower()) if found else PowerState.UNKNOWN


class IpmiFenceDriver(FenceDriver):
    """Fence one node (``context.node``) through its BMC with ``ipmitool``."""

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["host", "username"],
        "properties": {
            "host": {"type": "string", "minLength": 1, "pattern": r"^[^\s-][^\s]*$",
                     "x-reason": "must be the BMC's address or host name"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 623},
            "username": {"type": "string", "minLength": 1},
            # integer too: an all-digit password in YAML; never echoed back by a check
            "password": {"type": ["string", "integer"], "minLength": 1},
            "password_file": {"type": "string", "pattern": "^/",
                              "x-reason": "must be an absolute path"},
            "cipher_suite": {"type": "integer", "minimum": 0, "maximum": 17, "default": 3},
            "interface": {"enum": ["lanplus", "lan"], "default": "lanplus"},
            "privilege": {"enum": _PRIVILEGES, "default": "ADMINISTRATOR"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 10},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
            "ipmitool": {"type": "string", "minLength": 1, "default": "ipmitool"},
        },
        # exactly one of password and password_file
        "anyOf": [{"required": ["password"]}, {"required": ["password_file"]}],
        "if": {"required": ["password"]},
        "then": {"properties": {"password_file": {
            "not": {}, "x-reason": "give password or password_file, not both"}}},
    }

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        super().__init__(config, context)
        cfg = self.config
        has_password, has_file = "password" in cfg, "password_file" in cfg
        if has_password == has_file:
            raise DriverError(f"ipmi fence driver of {context.node}: give exactly one of "
                              "password and password_file")
        self._password = str(cfg["password"]) if has_password else None
        self.password_file = Path(cfg["password_file"]) if has_file else None
        self.target = IpmiTarget(
            host=str(cfg["host"]), port=int(cfg.get("port", 623)),
            username=str(cfg["username"]), interface=str(cfg.get("interface", "lanplus")),
            cipher_suite=int(cfg.get("cipher_suite", 3)),
            privilege=str(cfg.get("privilege", "ADMINISTRATOR")),
            ipmitool=str(cfg.get("ipmitool", "ipmitool")))
        self.call_timeout = float(cfg.get("timeout", 10))
        self.retries = int(cfg.get("retries", 1))
        self._warned = False
        self._pause = threading.Event()  # never set: waits with timeouts, not sleeps

    def __repr__(self) -> str:  # never the password
        return f"<IpmiFenceDriver {self.context.node} via {self.target.label}>"

    # -- the FenceDriver contract ------------------------------------------

    def validate(self) -> ValidationResult:
        """One ``chassis power status`` within 5 s; ok=False says why fencing would fail."""
        where = f"BMC of {self.context.node} at {self.target.label}"
        if shutil.which(self.target.ipmitool) is None:
            return ValidationResult(False, f"{where}: {self.target.ipmitool} not found "
                                           "(install ipmitool): fencing would fail")
        try:
            text = self._call(["chassis", "power", "status"],
                              Deadline(min(VALIDATE_TIMEOUT, self.call_timeout)), retries=0)
        except DriverError as exc:
            return ValidationResult(False, f"fencing {self.context.node} would fail: {exc}")
        state = parse_power_status(text)
        note = self._file_warning()
        return ValidationResult(True, f"{where} answers, power {state.value}"
                                      + (f"; WARNING: {note}" if note else ""))

    def power_off(self, timeout: float) -> None:
        """``chassis power off``, then poll the status until it reads off.

        Returns only once the BMC reports the node off (already off is
        fine). Raises DriverError when the BMC refuses, DriverTimeout when
        ``timeout`` passes before the status reads off.
        """
        deadline = Deadline(timeout)
        try:
            self._call(["chassis", "power", "off"], deadline)
        except IpmiAuthError:
            raise
        except DriverError:  # the answer may be what got lost: off is off all the same
            if deadline.remaining() < MIN_ATTEMPT or self._status_or_none(deadline) \
                    is not PowerState.OFF:
                raise
            self.log.info("fence: %s reads off although power off failed (BMC %s)",
                          self.context.node, self.target.label)
            return
        last = "no status read"
        while True:
            try:
                state = parse_power_status(self._call(["chassis", "power", "status"],
                                                      deadline, retries=0))
                if state is PowerState.OFF:
                    self.log.info("fence: %s is proved off (BMC %s)", self.context.node,
                                  self.target.label)
                    return
                last = f"status reads {state.value}"
            except IpmiAuthError:
                raise
            except DriverError as exc:  # one failed read: read again until the deadline
                last = str(exc)
            if deadline.remaining() < POLL_INTERVAL:
                raise DriverTimeout(
                    f"ipmi power off of {self.context.node} at {self.target.label}: accepted, "
                    f"but not proved off within {timeout:g}s ({last})")
            self._pause.wait(POLL_INTERVAL)

    def power_status(self, timeout: float) -> PowerState:
        """``chassis power status``: ON, OFF, or UNKNOWN when the answer is unexpected."""
        text = self._call(["chassis", "power", "status"], Deadline(timeout))
        state = parse_power_status(text)
        if state is PowerState.UNKNOWN:
            self.log.warning("BMC %s of %s: unexpected power status %r", self.target.label,
                             self.context.node, text[:200])
        return state

    def power_on(self, timeout: float) -> None:
        """``chassis power on`` (returns when the BMC accepted it)."""
        self._call(["chassis", "power", "on"], Deadline(timeout))

    # -- internals -----------------------------------------------------------

    def _status_or_none(self, deadline: Deadline) -> PowerState | None:
        """One status read within the deadline; None when it fails."""
        try:
            return parse_power_status(self._call(["chassis", "power", "status"], deadline,
                                                 retries=0))
        except DriverError:
            return None

    def _call(self, command: list[str], deadline: Deadline, retries: int | None = None) -> str:
        """One ipmitool command, retried on failures other than authentication."""
        attempts = 1 + (self.retries if retries is None else retries)
        password = self._read_password()
        for attempt in range(1, attempts + 1):
            call_timeout = min(self.call_timeout, deadline.remaining())
            try:
                return run_ipmitool(self.target, command, password, call_timeout)
            except IpmiAuthError:
                raise
            except DriverError as exc:
                if attempt == attempts or deadline.remaining() < MIN_ATTEMPT:
                    raise
                self.log.info("BMC %s of %s: attempt %d failed, retrying: %s",
                              self.target.label, self.context.node, attempt, exc)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _read_password(self) -> str:
        """The password: from the config, or read from ``password_file`` now."""
        if self._password is not None:
            return self._password
        assert self.password_file is not None
        try:
            lines = self.password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise IpmiAuthError(f"ipmi fence driver of {self.context.node}: cannot read "
                                f"password_file {self.password_file}: "
                                f"{exc.strerror or exc}") from None
        if not lines or not lines[0]:
            raise IpmiAuthError(f"ipmi fence driver of {self.context.node}: password_file "
                                f"{self.password_file} is empty")
        note = self._file_warning()
        if note and not self._warned:
            self._warned = True
            self.log.warning("ipmi fence driver of %s: %s", self.context.node, note)
        return lines[0]

    def _file_warning(self) -> str:
        """A warning when the password file is readable by everyone ('' otherwise)."""
        if self.password_file is None:
            return ""
        try:
            mode = self.password_file.stat().st_mode
        except OSError:
            return ""
        if mode & stat.S_IROTH:
            return (f"password_file {self.password_file} is world-readable "
                    f"(mode {stat.S_IMODE(mode):04o}; chmod 600 it)")
        return ""
