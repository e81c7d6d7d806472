"""Fixtures for the launcher's unit tests: a driver lookup and throwaway child processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from pvc_core.drivers.base import Driver, ValidationResult
from pvc_core.drivers.factory import driver_class
from pvc_core.errors import DriverError


class StubLibvirt(Driver):
    """Stands in for the libvirt driver where it cannot be loaded (no libvirt-python).

    Its schema names exactly the options the launcher writes, so the test
    still proves the generated sections are complete and nothing more.
    """

    category = "hypervisor"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False, "required": ["uri"],
        "properties": {"uri": {"type": "string", "minLength": 1},
                       "migration_uri": {"type": "string", "minLength": 1},
                       "migration_address": {"type": "string", "pattern": "^tcp://[^/?#]+$"}},
    }

    def validate(self) -> ValidationResult:
        return ValidationResult(True)


def lookup_with_libvirt_stub(category: str, name: str) -> type[Driver]:
    """The real entry-point lookup; the stub for libvirt only when the real one fails."""
    try:
        return driver_class(category, name)
    except DriverError:
        if (category, name) == ("hypervisor", "libvirt"):
            return StubLibvirt
        raise


@pytest.fixture
def sleeper() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start real child processes that sleep (killed and reaped afterwards)."""
    made: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-c", "import time; time.sleep(60)"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        made.append(proc)
        return proc

    yield start
    for proc in made:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
