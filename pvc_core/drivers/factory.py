"""Find and load drivers through entry points (stevedore).

Only enabled drivers are imported: a broken driver that is not enabled never
affects a node. An enabled driver that is missing or fails to import raises
:class:`~pvc_core.errors.DriverLoadError` naming the group, the name and the
cause, and nothing starts.

Entry points are read from ``importlib.metadata`` on every load rather than
from stevedore's process-wide and on-disk caches, so a package installed
(or a path added) after the first load is seen, and nothing is written to
the user's home directory. Loading happens at startup, so the scan is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any, cast

from stevedore import driver as sd_driver
from stevedore.exception import MultipleMatches, NoMatches

from pvc_core.drivers.base import GROUPS, Driver, DriverContext
from pvc_core.drivers.dns import DnsDriver
from pvc_core.drivers.fence import FenceDriver
from pvc_core.drivers.hypervisor import HypervisorDriver
from pvc_core.drivers.network import NetworkDriver
from pvc_core.drivers.storage import StorageDriver
from pvc_core.errors import DriverLoadError

#: category -> the interface every driver of that category subclasses.
#: (Typed ``type`` rather than ``type[Driver]``: mypy rejects abstract classes there.)
INTERFACES: Mapping[str, type] = MappingProxyType({
    "hypervisor": HypervisorDriver,
    "network": NetworkDriver,
    "storage": StorageDriver,
    "dns": DnsDriver,
    "fence": FenceDriver,
})


class _FreshDriverManager(sd_driver.DriverManager[Any]):
    """A stevedore DriverManager that reads entry points fresh each time."""

    def list_entry_points(self) -> list[EntryPoint]:
        seen: set[tuple[str, str]] = set()
        found: list[EntryPoint] = []
        for ep in entry_points(group=self.namespace):
            if (ep.name, ep.value) not in seen:  # one package seen twice on sys.path
                seen.add((ep.name, ep.value))
                found.append(ep)
        return found


def group_of(category: str) -> str:
    """The entry-point group of a driver category."""
    try:
        return GROUPS[category]
    except KeyError:
        raise DriverLoadError(
            f"unknown driver category {category!r} (one of {', '.join(sorted(GROUPS))})"
        ) from None


def names_in(group: str) -> list[str]:
    """Names registered in an entry-point group (nothing is imported)."""
    return sorted({ep.name for ep in entry_points(group=group)})


def available(category: str) -> list[str]:
    """Names registered in a category's group (nothing is imported)."""
    return names_in(group_of(category))


def load_entry_point(group: str, name: str, what: str) -> Any:
    """Import and return the object registered as ``name`` in ``group``.

    Only that entry point is imported; broken neighbours are never touched.
    ``what`` describes it in errors (``"fence driver 'ipmi'"``). Raises
    DriverLoadError when it is not registered, registered twice, or fails
    to import.
    """
    failures: list[BaseException] = []

    def on_failure(_manager: Any, _entrypoint: Any, exc: BaseException) -> None:
        failures.append(exc)

    try:
        mgr = _FreshDriverManager(
            namespace=group, name=name, invoke_on_load=False,
            on_load_failure_callback=on_failure)
    except NoMatches:
        if failures:
            exc = failures[0]
            raise DriverLoadError(
                f"{what} ({group}) failed to import: {type(exc).__name__}: {exc}") from exc
        known = ", ".join(names_in(group)) or "none"
        raise DriverLoadError(
            f"{what} is not installed (entry points in {group}: {known})") from None
    except MultipleMatches as exc:
        raise DriverLoadError(
            f"{what} is registered more than once in {group}: {exc}") from exc
    return mgr.driver


def driver_class(category: str, name: str) -> type[Driver]:
    """Import and return the driver class registered as ``name``.

    Raises DriverLoadError when no such entry point exists, when its import
    fails, or when it is not a subclass of the category's interface.
    """
    group = group_of(category)
    cls = load_entry_point(group, name, f"{category} driver {name!r}")
    interface = INTERFACES[category]
    if not (isinstance(cls, type) and issubclass(cls, Driver) and issubclass(cls, interface)):
        raise DriverLoadError(
            f"{category} driver {name!r} ({group}) is {cls!r}, "
            f"not a subclass of {interface.__module__}.{interface.__qualname__}")
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


def load_drivers(category: str, enabled: Iterable[tuple[str, Mapping[str, Any]]],
                 context: DriverContext) -> list[Driver]:
    """Load every enabled driver of a category, in order.

    ``enabled`` holds ``(name, config)`` pairs (a network driver list, a
    fence chain). Every entry is attempted; if any fails, the drivers that
    did load are closed and one DriverLoadError lists every failure.
    """
    loaded: list[Driver] = []
    errors: list[str] = []
    for name, config in enabled:
        try:
            loaded.append(load_driver(category, name, config, context))
        except DriverLoadError as exc:
            errors.append(str(exc))
    if errors:
        for drv in loaded:
            drv.close()
        raise DriverLoadError("; ".join(errors))
    return loaded


# -- typed loaders, one per category (cardinalities of DESIGN.md section 3) --
# The casts are safe: driver_class() checked each class against INTERFACES.


def load_hypervisor(name: str, config: Mapping[str, Any],
                    context: DriverContext) -> HypervisorDriver:
    """Load the node's one hypervisor driver."""
    return cast(HypervisorDriver, load_driver("hypervisor", name, config, context))


def load_networks(enabled: Iterable[tuple[str, Mapping[str, Any]]],
                  context: DriverContext) -> list[NetworkDriver]:
    """Load the node's network drivers (zero or more), in order."""
    return cast(list[NetworkDriver], load_drivers("network", enabled, context))


def load_storage(name: str, config: Mapping[str, Any],
                 context: DriverContext) -> StorageDriver:
    """Load the storage driver."""
    return cast(StorageDriver, load_driver("storage", name, config, context))


def load_dns(name: str, config: Mapping[str, Any], context: DriverContext) -> DnsDriver:
    """Load the DNS driver."""
    return cast(DnsDriver, load_driver("dns", name, config, context))


def load_fence_chain(chain: Iterable[tuple[str, Mapping[str, Any]]],
                     context: DriverContext) -> list[FenceDriver]:
    """Load a fence chain for the node ``context.node`` (the *target*), in order."""
    return cast(list[FenceDriver], load_drivers("fence", chain, context))
