"""The fake fence driver and its simulated BMCs."""

from __future__ import annotations

import time

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.factory import load_fence_chain
from pvc_core.drivers.fence import PowerState
from pvc_core.errors import DriverError, DriverTimeout
from pvc_plugins.fake.fence import BMC_REGISTRY_KEY, FakeBmcRegistry, FakeFenceDriver


def fence(node: str = "hv2", registry: FakeBmcRegistry | None = None,
          **config: bool) -> FakeFenceDriver:
    extras = {BMC_REGISTRY_KEY: registry} if registry else {}
    return FakeFenceDriver(config, DriverContext(node=node, extras=extras))


def test_power_off_runs_callbacks_then_reads_off() -> None:
    drv = fence()
    seen: list[tuple[str, PowerState]] = []
    drv.register_power_off_callback(lambda node: seen.append((node, drv.bmc.state)))
    drv.register_power_off_callback(lambda node: seen.append((node, drv.bmc.state)))
    assert drv.validate().ok
    assert drv.power_status(5.0) is PowerState.ON
    drv.power_off(5.0)
    assert seen == [("hv2", PowerState.ON), ("hv2", PowerState.ON)]
    assert drv.power_status(5.0) is PowerState.OFF
    drv.power_off(5.0)  # already off: no new callbacks, not an error
    assert len(seen) == 2
    assert drv.calls == [("validate", ()), ("power_status", (5.0,)), ("power_off", (5.0,)),
                         ("power_status", (5.0,)), ("power_off", (5.0,))]


def test_failing_callback_fails_the_power_off() -> None:
    drv = fence()

    def refuse(node: str) -> None:
        raise RuntimeError("daemon would not die")

    drv.register_power_off_callback(refuse)
    with pytest.raises(DriverError, match="daemon would not die"):
        drv.power_off(5.0)
    assert drv.power_status(5.0) is PowerState.ON


def test_power_on() -> None:
    drv = fence()
    drv.power_off(5.0)
    woken: list[str] = []
    drv.bmc.register_power_on_callback(woken.append)
    drv.power_on(5.0)
    assert drv.power_status(5.0) is PowerState.ON and woken == ["hv2"]


def test_fail_option() -> None:
    drv = fence(fail=True)
    called: list[str] = []
    drv.register_power_off_callback(called.append)
    assert not drv.validate().ok
    for op in (drv.power_off, drv.power_status, drv.power_on):
        with pytest.raises(DriverError, match="fail"):
            op(5.0)
    assert called == [] and drv.bmc.state is PowerState.ON


def test_stuck_on_option() -> None:
    drv = fence(stuck_on=True)
    called: list[str] = []
    drv.register_power_off_callback(called.append)
    drv.power_off(5.0)
    assert drv.power_status(5.0) is PowerState.ON and called == []


def test_hang_option_times_out_and_release_ends_it() -> None:
    drv = fence(hang=True)
    assert not drv.validate().ok
    start = time.monotonic()
    with pytest.raises(DriverTimeout, match="timed out after 0.05s"):
        drv.power_off(0.05)
    assert time.monotonic() - start < 2.0
    drv.release()
    drv.power_off(5.0)
    assert drv.power_status(5.0) is PowerState.OFF


def test_registry_shares_a_node_bmc_between_drivers() -> None:
    registry = FakeBmcRegistry()
    first, second, other = fence("hv2", registry), fence("hv2", registry), fence("hv3", registry)
    first.power_off(5.0)
    assert second.power_status(5.0) is PowerState.OFF
    assert other.power_status(5.0) is PowerState.ON
    assert registry.get("hv2") is first.bmc is second.bmc


def test_without_registry_each_driver_has_its_own_bmc() -> None:
    first, second = fence("hv2"), fence("hv2")
    first.power_off(5.0)
    assert second.power_status(5.0) is PowerState.ON


def test_chain_from_the_factory_targets_the_context_node() -> None:
    registry = FakeBmcRegistry()
    ctx = DriverContext(node="hv4", extras={BMC_REGISTRY_KEY: registry})
    broken, good = load_fence_chain([("fake", {"fail": True}), ("fake", {})], ctx)
    with pytest.raises(DriverError):
        broken.power_off(5.0)
    good.power_off(5.0)
    assert registry.get("hv4").state is PowerState.OFF
