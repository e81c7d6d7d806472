"""A fake fence driver and the simulated BMCs it talks to.

A :class:`FakeBmc` holds the power state of one node ("on" at first) and
the callbacks to run when that node loses power (the local cluster stops
the node's daemon there). The fence driver built for a target node uses the
BMC of that node from a :class:`FakeBmcRegistry` passed in
``context.extras["fake_bmcs"]``, so every primary that fences the node sees
the same power state; without a registry each driver has a private BMC.

Config (per fence-chain entry): ``fail`` (every operation raises
DriverError, validate fails), ``stuck_on`` (power-off is accepted but the
node stays on), ``hang`` (every operation blocks until its timeout and
raises DriverTimeout, until :meth:`FakeFenceDriver.release` is called).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.fence import FenceDriver, PowerState
from pvc_core.errors import DriverError, DriverTimeout
from pvc_plugins.fake._recorder import CallRecorder

#: Key of the shared :class:`FakeBmcRegistry` in ``DriverContext.extras``.
BMC_REGISTRY_KEY = "fake_bmcs"

PowerCallback = Callable[[str], None]


class FakeBmc:
    """The simulated power controller of one node."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._switching = threading.RLock()  # one power change at a time
        self._state = PowerState.ON
        self._off_callbacks: list[PowerCallback] = []
        self._on_callbacks: list[PowerCallback] = []

    @property
    def state(self) -> PowerState:
        with self._lock:
            return self._state

    def register_power_off_callback(self, callback: PowerCallback) -> None:
        """Call ``callback(node)`` whenever this node loses power."""
        with self._lock:
            self._off_callbacks.append(callback)

    def register_power_on_callback(self, callback: PowerCallback) -> None:
        """Call ``callback(node)`` whenever this node is powered on."""
        with self._lock:
            self._on_callbacks.append(callback)

    def power_off(self) -> None:
        """Cut power: run every power-off callback, then read off.

        A node already off is left alone. If a callback raises, the node
        stays on and DriverError is raised (the power-off failed).
        """
        self._switch(PowerState.OFF, self._off_callbacks)

    def power_on(self) -> None:
        """Restore power: run every power-on callback, then read on."""
        self._switch(PowerState.ON, self._on_callbacks)

    def _switch(self, target: PowerState, callbacks: list[PowerCallback]) -> None:
        with self._switching:
            with self._lock:
                if self._state is target:
                    return
                todo = list(callbacks)
            for callback in todo:
                try:
                    callback(self.node)
                except Exception as exc:
                    raise DriverError(
                        f"fake BMC of {self.node}: power {target} failed in a callback: "
                        f"{type(exc).__name__}: {exc}") from exc
            with self._lock:
                self._state = target


class FakeBmcRegistry:
    """The fake BMCs of a simulated cluster, one per node, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bmcs: dict[str, FakeBmc] = {}

    def get(self, node: str) -> FakeBmc:
        with self._lock:
            if node not in self._bmcs:
                self._bmcs[node] = FakeBmc(node)
            return self._bmcs[node]


class FakeFenceDriver(CallRecorder, FenceDriver):
    """The ``fake`` fence driver; ``context.node`` is the node it fences."""

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "fail": {"type": "boolean", "default": False},
            "stuck_on": {"type": "boolean", "default": False},
            "hang": {"type": "boolean", "default": False},
        },
        "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any], context: DriverContext) -> None:
        CallRecorder.__init__(self)
        FenceDriver.__init__(self, config, context)
        registry = context.extras.get(BMC_REGISTRY_KEY)
        self.bmc = (registry.get(context.node) if isinstance(registry, FakeBmcRegistry)
                    else FakeBmc(context.node))
        self.fail = bool(self.config.get("fail", False))
        self.stuck_on = bool(self.config.get("stuck_on", False))
        self.hang = bool(self.config.get("hang", False))
        self._released = threading.Event()

    def register_power_off_callback(self, callback: PowerCallback) -> None:
        """Call ``callback(node)`` when this driver's target loses power."""
        self.bmc.register_power_off_callback(callback)

    def release(self) -> None:
        """End every current and future ``hang`` (tests call it in teardown)."""
        self._released.set()

    def close(self) -> None:
        self.release()

    def validate(self) -> ValidationResult:
        self._record("validate")
        if self.fail:
            return ValidationResult(False, f"fake BMC of {self.context.node} refuses (fail)")
        if self.hang:
            return ValidationResult(False, f"fake BMC of {self.context.node} does not answer")
        return ValidationResult(True, f"fake BMC of {self.context.node} reachable")

    def power_off(self, timeout: float) -> None:
        self._record("power_off", timeout)
        self._check("power off", timeout)
        if not self.stuck_on:
            self.bmc.power_off()

    def power_status(self, timeout: float) -> PowerState:
        self._record("power_status", timeout)
        self._check("power status", timeout)
        return self.bmc.state

    def power_on(self, timeout: float) -> None:
        self._record("power_on", timeout)
        self._check("power on", timeout)
        self.bmc.power_on()

    def _check(self, what: str, timeout: float) -> None:
        if self.hang and not self._released.wait(timeout):
            raise DriverTimeout(
                f"fake BMC of {self.context.node}: {what} timed out after {timeout}s")
        if self.fail:
            raise DriverError(f"fake BMC of {self.context.node}: {what} failed (fail)")
