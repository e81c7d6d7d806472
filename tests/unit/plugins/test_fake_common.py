"""What every fake driver shares: real interfaces, schemas, call records."""

from __future__ import annotations

import threading
from typing import Any

import jsonschema
import pytest

from pvc_core.drivers.base import Driver, DriverContext
from pvc_core.drivers.factory import INTERFACES, driver_class

CATEGORIES = sorted(INTERFACES)


@pytest.mark.parametrize("category", CATEGORIES)
def test_fake_subclasses_its_interface(category: str) -> None:
    cls = driver_class(category, "fake")
    assert issubclass(cls, INTERFACES[category])
    assert cls.category == category
    assert not getattr(cls, "__abstractmethods__", None)


@pytest.mark.parametrize("category", CATEGORIES)
def test_config_schema_is_valid_and_strict(category: str) -> None:
    cls = driver_class(category, "fake")
    jsonschema.Draft202012Validator.check_schema(cls.config_schema)
    jsonschema.validate({}, cls.config_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"no_such_option": 1}, cls.config_schema)


@pytest.mark.parametrize("category", CATEGORIES)
def test_no_state_shared_between_instances(category: str) -> None:
    cls = driver_class(category, "fake")
    one: Any = cls({}, DriverContext(node="a"))
    two: Any = cls({}, DriverContext(node="b"))
    one.validate()
    assert len(one.calls) == 1 and two.calls == []


@pytest.mark.parametrize("category", CATEGORIES)
def test_call_record_is_thread_safe(category: str) -> None:
    drv: Driver = driver_class(category, "fake")({}, DriverContext(node="a"))
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for _ in range(200):
            drv.validate()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(drv.calls) == 1600  # type: ignore[attr-defined]


@pytest.mark.parametrize("category", CATEGORIES)
def test_schema_defaults_build_a_working_driver(category: str) -> None:
    cls = driver_class(category, "fake")
    props = cls.config_schema.get("properties", {})
    config = {k: v["default"] for k, v in props.items() if "default" in v}
    jsonschema.validate(config, cls.config_schema)
    drv: Any = cls(config, DriverContext(node="a"))
    assert drv.validate().ok
