"""A third-party package registers drivers in pvc's groups, with no change here.

The package is a throwaway distribution written into a tmp dir (see
tests/unit/fake_dist.py): a dist-info with entry points, and a module.
"""

from __future__ import annotations

import pytest
from stevedore import ExtensionManager

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.factory import (
    available,
    driver_class,
    load_driver,
    load_fence_chain,
)
from pvc_core.drivers.fence import FenceDriver, PowerState
from pvc_core.errors import DriverLoadError
from tests.unit.fake_dist import FakeDistInstaller

MODULE = '''
from pvc_core.drivers.base import ValidationResult
from pvc_core.drivers.fence import FenceDriver, PowerState


class RedfishFence(FenceDriver):
    config_schema = {"type": "object", "required": ["host"],
                     "properties": {"host": {"type": "string"}}}

    def __init__(self, config, context):
        super().__init__(config, context)
        self.state = PowerState.ON

    def validate(self):
        return ValidationResult(True, "redfish at " + self.config["host"])

    def power_off(self, timeout):
        self.state = PowerState.OFF

    def power_status(self, timeout):
        return self.state


class NotADriver:
    pass
'''

ENTRY_POINTS = {
    "pvc.drivers.fence": {
        "redfish": "thirdparty_fence_mod:RedfishFence",
        "broken": "no_such_module:X",
        "notadriver": "thirdparty_fence_mod:NotADriver",
    },
    "pvc.drivers.hypervisor": {"wrongkind": "thirdparty_fence_mod:RedfishFence"},
}


@pytest.fixture
def thirdparty(fake_dist: FakeDistInstaller) -> FakeDistInstaller:
    # Load from the group first, through pvc and through plain stevedore, so
    # any entry-point cache is warm before the package "is installed".
    assert driver_class("fence", "fake").__name__ == "FakeFenceDriver"
    ExtensionManager("pvc.drivers.fence", invoke_on_load=False)
    fake_dist.install("thirdparty-fence", ENTRY_POINTS, {"thirdparty_fence_mod": MODULE})
    return fake_dist


def test_third_party_driver_is_loaded_by_name(thirdparty: FakeDistInstaller) -> None:
    cls = driver_class("fence", "redfish")
    assert cls.__name__ == "RedfishFence" and issubclass(cls, FenceDriver)
    drv = load_driver("fence", "redfish", {"host": "bmc1"}, DriverContext(node="hv1"))
    assert drv.validate().ok
    assert isinstance(drv, FenceDriver)
    drv.power_off(5.0)
    assert drv.power_status(5.0) is PowerState.OFF


def test_third_party_names_are_listed(thirdparty: FakeDistInstaller) -> None:
    assert {"fake", "redfish", "broken", "notadriver"} <= set(available("fence"))


def test_broken_driver_not_enabled_is_ignored(thirdparty: FakeDistInstaller) -> None:
    chain = load_fence_chain([("fake", {}), ("redfish", {"host": "bmc1"})],
                             DriverContext(node="hv1"))
    assert [type(d).__name__ for d in chain] == ["FakeFenceDriver", "RedfishFence"]


def test_broken_driver_enabled_fails_clearly(thirdparty: FakeDistInstaller) -> None:
    with pytest.raises(DriverLoadError) as err:
        driver_class("fence", "broken")
    msg = str(err.value)
    assert "fence driver 'broken'" in msg
    assert "pvc.drivers.fence" in msg
    assert "failed to import" in msg
    assert "no_such_module" in msg


def test_entry_point_that_is_not_a_driver(thirdparty: FakeDistInstaller) -> None:
    with pytest.raises(DriverLoadError, match="not a subclass of pvc_core.drivers.fence"):
        driver_class("fence", "notadriver")


def test_driver_of_the_wrong_category(thirdparty: FakeDistInstaller) -> None:
    with pytest.raises(DriverLoadError, match="HypervisorDriver"):
        driver_class("hypervisor", "wrongkind")


def test_chain_with_broken_entry_reports_every_failure(thirdparty: FakeDistInstaller) -> None:
    with pytest.raises(DriverLoadError) as err:
        load_fence_chain([("broken", {}), ("fake", {}), ("missing", {})],
                         DriverContext(node="hv1"))
    msg = str(err.value)
    assert "'broken'" in msg and "failed to import" in msg
    assert "'missing' is not installed" in msg


def test_duplicate_names_are_refused(fake_dist: FakeDistInstaller) -> None:
    src = "from pvc_plugins.fake.dns import FakeDnsDriver as D\n"
    fake_dist.install("dup-one", {"pvc.drivers.dns": {"twice": "mod_one:D"}}, {"mod_one": src})
    fake_dist.install("dup-two", {"pvc.drivers.dns": {"twice": "mod_two:D"}}, {"mod_two": src})
    with pytest.raises(DriverLoadError, match="registered more than once"):
        driver_class("dns", "twice")
