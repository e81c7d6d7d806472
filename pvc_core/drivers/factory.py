"""Find and load drivers through entry points (stevedore).

Only enabled drivers are imported: a broken driver that is not enabled never
affects a node. An enabled driver that is missing or fails to import raises
:class:`~pvc_core.errors.DriverLoadError` naming the group, the name and the
cause, and nothing starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stevedore import driver as sd_driver
from stevedore.exception import NoMatches

from pvc_core.drivers.base import GROUPS, Driver, DriverContext
from pvc_core.errors import DriverLoadError


def group_of(category: str) -> str:
    """The entry-point group of a driver category."""
    try:
        return GROUPS[category]
    except KeyError:
        raise DriverLoadError(
            f"unknown driver category {category!r} (one of {', '.join(sorted(GROUPS))})"
        ) from None


def available(category: str) -> list[str]:
    """Names registered in a category's group (nothing is imported)."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=group_of(category))})


def driver_class(category: str, name: str) -> type[Driver]:
    """Import and return the driver class registered as ``name``.

    Raises DriverLoadError when no such entry point exists, when its import
    fails, or when it is not a :class:`Driver` of that category.
    """
    group = group_of(category)
    failures: list[BaseException] = []

    def on_failure(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
        failures.append(exc)

    try:
        mgr = sd_driver.DriverManager(
            namespace=group, name=name, invoke_on_load=False,
            on_load_failure_callback=on_failure, verify_requirements=False)
    except NoMatches:
        if failures:
            exc = failures[0]
            raise DriverLoadError(
                f"{category} driver {name!r} ({group}) failed to import: "
                f"{type(exc).__name__}: {exc}") from exc
        known = ", ".join(available(category)) or "none"
        raise DriverLoadError(
            f"{category} driver {name!r} is not installed (entry points in {group}: {known})"
        ) from None
    except RuntimeError as exc:  # stevedore: several drivers with one name
        raise DriverLoadError(f"{category} driver {name!r}: {exc}") from exc
    cls = mgr.driver
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise DriverLoadError(
            f"{category} driver {name!r} ({group}) is {cls!r}, not a pvc Driver subclass")
    if cls.category != category:
        raise DriverLoadError(
            f"{category} driver {name!r} declares category {cls.category!r}")
    return cls


def load_driver(category: str, name: str, config: Mapping[str, Any],
                context: DriverContext) -> Driver:
    """Import, configure and instantiate one enabled driver.

    ``config`` must already be validated against the class's
    ``config_schema`` (the configuration loader does that).
    """
    cls = driver_class(category, name)
    try:
        return cls(config, context)
    except Exception as exc:
        raise DriverLoadError(
            f"{category} driver {name!r} failed to initialise: {type(exc).__name__}: {exc}"
        ) from exc
