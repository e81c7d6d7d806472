"""Run one ``ipmitool`` command: argument list, deadline, password off argv.

:class:`IpmiTarget` says which BMC and how (interface, cipher suite,
privilege); :func:`run_ipmitool` runs one command against it and returns
its standard output, or raises:

- :class:`~pvc_core.errors.DriverTimeout` when the call outlives its
  timeout (the process group is SIGKILLed and reaped) or the BMC does not
  answer at all (ipmitool gives up by itself: an unreachable address or
  port, a stopped BMC, an unknown user on some BMCs);
- :class:`IpmiAuthError` (a DriverError) when the BMC refuses the
  credentials or the cipher suite: retrying cannot help;
- :class:`~pvc_core.errors.DriverError` for anything else (a refused
  command, ipmitool missing).

The password reaches ipmitool only through ``IPMI_PASSWORD`` in the
child's own environment (``-E``); it is never on a command line and never
in the daemon's ``os.environ``, and it is masked in every message. ipmitool
runs with ``-v`` so that its errors say *why* a session failed (``RAKP 2
HMAC is invalid``: a wrong password); ``-N``/``-R`` make it give up by
itself within the call's timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pvc_core.errors import DriverError, DriverTimeout

#: PATH for ipmitool when the daemon has none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: stderr lines of ``ipmitool -v`` that carry no information about a failure.
NOISE = ("Loading IANA PEN Registry", "Running Get VSO Capabilities", "Discovered IPMB",
         "Invalid completion code received: Invalid command", "Password:")


class IpmiAuthError(DriverError):
    """The BMC refused the credentials, the privilege level or the cipher suite."""


#: (substring of ipmitool's stderr, exception class, what it means), first match wins.
DIAGNOSES: tuple[tuple[str, type[DriverError], str], ...] = (
    ("RAKP 2 HMAC is invalid", IpmiAuthError, "authentication failed (wrong password)"),
    ("unauthorized name", IpmiAuthError, "authentication failed (unknown user)"),
    ("Unable to read password", IpmiAuthError, "no password given"),
    ("password is longer than", IpmiAuthError,
     "the password is too long for IPMI (at most 20 bytes, 16 with -I lan)"),
    ("no matching cipher suite", IpmiAuthError, "the BMC refused the cipher suite"),
    ("Set Session Privilege Level", IpmiAuthError,
     "the BMC refused the privilege level (or the user)"),
    ("no response from RAKP 1", DriverTimeout,
     "no answer after the user name (unknown user, or the BMC stopped answering)"),
    ("Get Auth Capabilities error", DriverTimeout,
     "no answer from the BMC (unreachable address or port, or the BMC is down)"),
    ("No response from remote controller", DriverTimeout, "no answer from the BMC"),
    ("Address lookup", DriverError, "the BMC's host name does not resolve"),
)


@dataclass(frozen=True)
class IpmiTarget:
    """One BMC and how to talk to it."""

    host: str
    port: int = 623
    username: str = ""
    interface: str = "lanplus"
    cipher_suite: int = 3
    privilege: str = "ADMINISTRATOR"
    ipmitool: str = "ipmitool"

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self, command: Sequence[str], call_timeout: float) -> list[str]:
        """The full command line (no password: ``-E`` reads ``IPMI_PASSWORD``).

        ipmitool waits ``-N`` seconds per try and tries ``-R`` times, which
        takes about ``2 * N`` seconds with ``-R 1``; N is half the call's
        timeout so it gives up by itself before it is killed.
        """
        argv = [self.ipmitool, "-v", "-I", self.interface, "-H", self.host,
                "-p", str(self.port), "-U", self.username, "-E", "-L", self.privilege]
        if self.interface == "lanplus":
            argv += ["-C", str(self.cipher_suite)]
        argv += ["-N", str(max(1, int(call_timeout / 2))), "-R", "1"]
        return argv + list(command)


def child_env(password: str) -> dict[str, str]:
    """The environment of one ipmitool process: PATH, the C locale, the password."""
    return {"PATH": os.environ.get("PATH") or DEFAULT_PATH, "LC_ALL": "C",
            "IPMI_PASSWORD": password}


def mask(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


def explain(stderr: str) -> tuple[type[DriverError], str]:
    """The exception class and a one-line reason for a failed call's stderr.

    The reason is what the failure means (when known) and ipmitool's first
    informative stderr line.
    """
    lines = [line.strip().lstrip("> ").strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line and not line.startswith(NOISE)]
    first = lines[0] if lines else "no error message"
    for needle, cls, meaning in DIAGNOSES:
        if needle.lower() in stderr.lower():
            return cls, f"{meaning} (ipmitool: {first})"
    return DriverError, f"ipmitool: {first}"


def run_ipmitool(target: IpmiTarget, command: Sequence[str], password: str,
                 timeout: float) -> str:
    """Run ``ipmitool ... COMMAND`` against ``target`` within ``timeout`` seconds.

    Returns standard output (stripped). Raises as described in the module
    docstring; every message names the command and the BMC, never the
    password.
    """
    what = f"ipmitool {' '.join(command)} on {target.label}"
    if timeout <= 0:
        raise DriverTimeout(f"{what}: no time left")
    argv = target.argv(command, timeout)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(  # noqa: S603 - an argument list; the password is in env only
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=child_env(password), start_new_session=True, close_fds=True)
    except OSError as exc:
        raise DriverError(f"{what}: cannot run {target.ipmitool}: "
                          f"{exc.strerror or exc} (is ipmitool installed?)") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise DriverTimeout(f"{what}: no result within {timeout:.1f}s (killed; "
                            "is the BMC reachable?)") from None
    except BaseException:
        _kill_group(proc)
        raise
    stdout = out.decode(errors="replace").strip()
    stderr = mask(err.decode(errors="replace"), password)
    if proc.returncode == 0:
        return mask(stdout, password)
    cls, reason = explain(stderr + "\n" + mask(stdout, password))
    elapsed = time.monotonic() - started
    raise cls(f"{what}: {reason} [exit {proc.returncode} after {elapsed:.1f}s]")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the call's process group and reap it (pipes closed)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a grandchild holds the pipes: stop reading
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
