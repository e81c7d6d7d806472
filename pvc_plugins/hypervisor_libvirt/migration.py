"""Live migration with ``virDomainMigrate3``: target URIs, deadline, abort.

The target of a migration is what the target node's driver returned from
``migration_uri()``: its libvirt URI (how this node's client reaches the
target libvirtd), optionally carrying the target's data address as the
query parameter ``pvc_migration_address`` (``tcp://HOST[:PORT]``, passed to
libvirt as ``VIR_MIGRATE_PARAM_URI``: where the target QEMU listens for the
migration stream). The parameter is PVC's own and is stripped before the URI
reaches libvirt. Without it, a network URI (``qemu+tcp://HOST/system``)
gives ``tcp://HOST``; a local one (``qemu+unix://...``) lets libvirt choose
(the target's hostname).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import libvirt

from pvc_core.errors import DriverError, DriverTimeout, InvalidInput, PVCError
from pvc_plugins.hypervisor_libvirt.connection import LibvirtConnection, map_error

#: PVC's own query parameter in a migration URI (see the module docstring).
ADDRESS_PARAM = "pvc_migration_address"
#: Flags of every live migration: the target keeps a persistent definition
#: and the source's definition is removed, so a VM is defined on one node.
MIGRATE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
                 | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
#: How long to wait for ``migrate3`` to return after ``abortJob()``.
ABORT_GRACE_S = 30.0
#: Pause between refused ``abortJob()`` attempts.
ABORT_RETRY_S = 0.2


def with_address(libvirt_uri: str, address: str | None) -> str:
    """A migration URI: ``libvirt_uri`` with the data address attached.

    The libvirt URI's own query is kept byte for byte (libvirt does its own
    unescaping, which differs from ``urllib``'s).
    """
    if not address:
        return libvirt_uri
    sep = "&" if "?" in libvirt_uri else "?"
    return f"{libvirt_uri}{sep}{ADDRESS_PARAM}={quote(address, safe='/:[]')}"


def split_target(target_uri: str) -> tuple[str, str | None]:
    """``(libvirt URI, data address or None)`` of a migration target URI."""
    parts = urlsplit(target_uri)
    if not parts.scheme:
        raise InvalidInput(f"migration target {target_uri!r} is not a libvirt URI")
    base, _, query = target_uri.partition("?")
    kept, address = [], None
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        if key == ADDRESS_PARAM:
            address = unquote(value)
        else:
            kept.append(item)
    uri = f"{base}?{'&'.join(kept)}" if kept else base
    host = parts.hostname
    if address is None and host and "unix" not in parts.scheme:
        address = f"tcp://[{host}]" if ":" in host else f"tcp://{host}"
    return uri, address


@dataclass(frozen=True)
class MigrationResult:
    """What one migration took: wall time and QEMU's own figures where known."""

    wall_s: float
    downtime_ms: int | None = None
    total_ms: int | None = None
    data_bytes: int | None = None


def _completed_stats(dom: Any) -> dict[str, Any]:
    try:
        return dict(dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))
    except libvirt.libvirtError:
        return {}


def _abort(dom: Any, done: threading.Event,
           guard: Callable[[str, Callable[[], Any], float], Any], log: logging.Logger) -> bool:
    """``abortJob()`` until it is accepted; True once ``migrate3`` returned.

    An abort is refused while the migration job is not (yet, or any longer)
    active; it is then retried every :data:`ABORT_RETRY_S` while waiting.
    """
    deadline, accepted = time.monotonic() + ABORT_GRACE_S, False
    while not done.is_set() and time.monotonic() < deadline:
        if not accepted:
            try:
                guard("abortJob", dom.abortJob, 10.0)
                accepted = True
            except (libvirt.libvirtError, DriverTimeout) as exc:
                log.warning("aborting the migration of %s: %s", dom.UUIDString(), exc)
        done.wait(min(ABORT_RETRY_S, max(0.0, deadline - time.monotonic())))
    return done.is_set()


def run_migration(dom: Any, dest: Any, address: str | None, *, timeout: float,
                  guard: Callable[[str, Callable[[], Any], float], Any],
                  log: logging.Logger) -> MigrationResult:
    """Migrate ``dom`` to the connection ``dest``; abort it after ``timeout``.

    ``migrate3`` runs in a daemon thread; when it has not returned after
    ``timeout`` seconds, ``abortJob()`` cancels it (the domain keeps running
    on the source) and DriverTimeout is raised. A migration that completes
    while being aborted counts as done. ``guard`` runs short libvirt calls
    with a hard timeout. libvirt errors propagate unmapped.
    """
    params = {libvirt.VIR_MIGRATE_PARAM_URI: address} if address else {}
    done = threading.Event()
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["dom"] = dom.migrate3(dest, params, MIGRATE_FLAGS)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
        finally:
            done.set()

    started = time.monotonic()
    threading.Thread(target=worker, name=f"migrate {dom.UUIDString()}", daemon=True).start()
    if not done.wait(timeout):
        log.warning("migration of %s exceeded %g s: aborting", dom.UUIDString(), timeout)
        if not _abort(dom, done, guard, log):
            raise DriverTimeout(
                f"migration of {dom.UUIDString()} did not finish within {timeout:g} s and "
                f"did not stop within {ABORT_GRACE_S:g} s of being aborted: check both nodes")
        if "error" in box:
            raise DriverTimeout(
                f"migration of {dom.UUIDString()} did not finish within {timeout:g} s: "
                "aborted, the domain stays on this node") from None
    if "error" in box:
        raise box["error"]
    wall = time.monotonic() - started
    new_dom = box.get("dom")
    if new_dom is None:
        raise DriverError(f"migration of {dom.UUIDString()} returned no domain")
    stats = _completed_stats(new_dom)
    result = MigrationResult(
        wall_s=wall, downtime_ms=stats.get("downtime"), total_ms=stats.get("time_elapsed"),
        data_bytes=stats.get("data_processed"))
    log.info("migrated %s in %.2f s (QEMU: %s ms total, %s ms downtime, %s bytes)",
             dom.UUIDString(), wall, result.total_ms, result.downtime_ms, result.data_bytes)
    return result


def migrate_to(lv: LibvirtConnection, dom: Any, dest_uri: str, address: str | None, *,
               max_downtime_ms: int, timeout: float, connect_timeout: float,
               log: logging.Logger) -> MigrationResult:
    """Open ``dest_uri``, set the maximum downtime, migrate, close the target.

    ``max_downtime_ms`` > 0 is set with ``migrateSetMaxDowntime`` before the
    job starts (libvirt allows it at any time; QEMU keeps it for the job).
    libvirt errors are mapped to PVC errors.
    """
    what = f"migrate {dom.UUIDString()} to {dest_uri}"
    dest = lv.open_uri(dest_uri, connect_timeout)
    try:
        if max_downtime_ms:
            lv.run(what, lambda: dom.migrateSetMaxDowntime(max_downtime_ms, 0), 10.0)
        return run_migration(dom, dest, address, timeout=timeout, guard=lv.run, log=log)
    except libvirt.libvirtError as exc:
        raise map_error(exc, what) from None
    finally:
        try:
            lv.run("close migration target", dest.close, connect_timeout)
        except (libvirt.libvirtError, PVCError) as exc:
            log.warning("closing %s: %s", dest_uri, exc)
