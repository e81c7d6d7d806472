"""Live migration between fake hypervisors in one process.

A :class:`FakeMigrationRegistry` passed in ``context.extras["fake_hypervisors"]``
(:data:`MIGRATION_REGISTRY_KEY`) connects the fake hypervisors of a
simulated cluster: each fake hypervisor configured with
``live_migration: true`` registers itself there under its migration URI
(``fake://NODE``), and its ``migrate`` looks the target up by that URI.

The registry also keeps a ledger of where each domain is active, fed by
every registered driver as its domains start and stop, so a test can prove
that a VM never ran on two hypervisors at once (:meth:`overlaps`). A live
migration moves a domain from one entry to the other in one step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from pvc_core.errors import AlreadyExists, DriverError

#: Key of the shared :class:`FakeMigrationRegistry` in ``DriverContext.extras``.
MIGRATION_REGISTRY_KEY = "fake_hypervisors"
#: Scheme of a fake hypervisor's migration URI (``fake://node2``).
URI_SCHEME = "fake://"

D = TypeVar("D")


def migration_uri(node: str) -> str:
    """The migration URI of the fake hypervisor of ``node``."""
    return f"{URI_SCHEME}{node}"


class FakeMigrationRegistry(Generic[D]):
    """The live-migratable fake hypervisors of one process, by migration URI."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transfer = threading.Lock()  # one migration at a time: no lock-order cycles
        self._drivers: dict[str, D] = {}
        self._active: dict[str, set[str]] = {}
        self._overlaps: list[tuple[str, tuple[str, ...]]] = []

    def register(self, uri: str, driver: D) -> None:
        """Make ``driver`` reachable at ``uri``.

        :raises AlreadyExists: another driver (not closed) answers there.
        """
        with self._lock:
            other = self._drivers.get(uri)
            if other is not None and other is not driver:
                raise AlreadyExists(f"a fake hypervisor is already registered at {uri}")
            self._drivers[uri] = driver

    def unregister(self, uri: str, driver: D) -> None:
        """Forget ``driver`` (if it is the one at ``uri``) and where its domains ran."""
        with self._lock:
            if self._drivers.get(uri) is driver:
                del self._drivers[uri]
            for where in self._active.values():
                where.discard(uri)

    def lookup(self, uri: str) -> D:
        """The driver at ``uri``; DriverError when none answers there."""
        with self._lock:
            try:
                return self._drivers[uri]
            except KeyError:
                raise DriverError(f"no fake hypervisor answers at {uri}") from None

    @contextmanager
    def transfer(self, uri: str) -> Iterator[D]:
        """Hold the registry's migration slot and yield the driver at ``uri``.

        Migrations in one registry run one at a time, so a migration may lock
        its source and its target without ever meeting another in the
        opposite order. DriverError when no driver answers at ``uri``.
        """
        with self._transfer:
            yield self.lookup(uri)

    # -- the ledger --------------------------------------------------------------

    def note(self, uri: str, uuid: str, active: bool) -> None:
        """The domain ``uuid`` became active (or inactive) on the hypervisor at ``uri``."""
        with self._lock:
            where = self._active.setdefault(uuid, set())
            if active:
                where.add(uri)
                if len(where) > 1:
                    self._overlaps.append((uuid, tuple(sorted(where))))
            else:
                where.discard(uri)

    def moved(self, uuid: str, source: str, target: str) -> None:
        """A live migration moved the active domain ``uuid`` from ``source`` to ``target``."""
        with self._lock:
            where = self._active.setdefault(uuid, set())
            where.discard(source)
            where.add(target)
            if len(where) > 1:
                self._overlaps.append((uuid, tuple(sorted(where))))

    def active_on(self, uuid: str) -> set[str]:
        """The URIs of the registered hypervisors where ``uuid`` is active now."""
        with self._lock:
            return set(self._active.get(uuid, ()))

    def overlaps(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every time a domain became active on a second hypervisor: (uuid, URIs)."""
        with self._lock:
            return list(self._overlaps)
