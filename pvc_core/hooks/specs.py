"""Every hook specification of PVC, in one module (pluggy project ``pvc``).

stevedore answers "which implementation does this job"; these hooks answer
"tell every enabled plugin that this happened, or let it add something".
A plugin implements a hook by defining a function or method of the same
name decorated with :data:`hookimpl`; it may accept any subset of the
arguments, by name. Plugins are registered with the daemon's
:class:`~pvc_core.hooks.manager.HookManager` (enabled drivers that implement
hooks, and the plugins named in configuration).

Hooks marked with :func:`may_block` do I/O or wait for other systems. They
are always called through ``HookManager.call_with_deadline``: each
implementation runs in its own thread, one that overruns the deadline is
logged and skipped, and the caller (for instance the keepalive) never
stalls. The other hooks must return at once and are called directly.

Every hook here is documented in docs/hooks.md (a test enforces it).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import pluggy

#: The pluggy project name: markers set ``pvc_spec`` / ``pvc_impl``.
PROJECT = "pvc"
#: Entry-point group for hook plugins enabled by name in configuration.
PLUGIN_GROUP = "pvc.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

_F = TypeVar("_F", bound=Callable[..., Any])
_MAY_BLOCK_ATTR = "pvc_may_block"


def may_block(func: _F) -> _F:
    """Mark a hook specification whose implementations may block."""
    setattr(func, _MAY_BLOCK_ATTR, True)
    return func


# -- node lifecycle -----------------------------------------------------------


@hookspec
@may_block
def pvc_node_started(node: str) -> None:
    """The node daemon on ``node`` finished starting and entered ``run``.

    Called once, on that node, after its drivers validated and before it
    takes VMs. A plugin prepares node-local resources here. Exceptions and
    overruns are logged; they do not stop the daemon.
    """


@hookspec
@may_block
def pvc_became_primary(node: str) -> None:
    """``node`` (this node) has become the primary coordinator.

    Called on the new primary at the end of ``takeover``, before it
    reports ``primary``. Floating services follow the primary here: a
    network plugin adds the floating IPs (with gratuitous ARP) and the
    managed-network gateways and DHCP, a DNS plugin starts its aggregator.
    Must be idempotent. Exceptions and overruns are logged and raised as
    faults; the takeover still completes.
    """


@hookspec
@may_block
def pvc_relinquishing_primary(node: str) -> None:
    """``node`` (this node) is giving up primary, or has lost its session.

    Called on the old primary during ``relinquish``, and at once when it
    loses its ZooKeeper session. A plugin drops its floating services here
    (floating IPs, gateways, DHCP, DNS aggregator) before any other node
    can take them. Must be idempotent. Exceptions and overruns are logged.
    """


# -- VM lifecycle -------------------------------------------------------------


@hookspec
@may_block
def pvc_vm_about_to_start(vm_uuid: str, node: str) -> None:
    """The VM ``vm_uuid`` is about to start on ``node`` (this node).

    Called after the node took the VM's run-lease and before the
    hypervisor starts it. The storage plugin clears ``node``'s stale locks
    on the VM's volumes here. A plugin refuses the start by raising (the
    message is shown to the operator); an overrun also refuses. The VM then
    goes to ``fail`` with that reason.
    """


@hookspec
@may_block
def pvc_vm_stopped(vm_uuid: str, node: str) -> None:
    """The VM ``vm_uuid`` stopped on ``node`` (this node).

    Called after the hypervisor reports it shut off, whatever the cause
    (shutdown, stop, crash, migration away). Exceptions and overruns are
    logged.
    """


@hookspec
@may_block
def pvc_node_fenced(node: str) -> None:
    """``node`` was proved powered off by its fence chain.

    Called on the primary, before the fenced node's VMs are recovered. The
    storage plugin blocklists the node's clients here (storage fencing).
    Exceptions and overruns are logged and recorded in the decision log;
    recovery still proceeds (the node is already off).
    """


# -- keepalive and health -----------------------------------------------------


@hookspec
@may_block
def pvc_collect_keepalive_stats(node: str) -> dict[str, Any]:
    """Extra statistics for ``node``'s keepalive (this node).

    Return a flat dict of JSON-serialisable values; the keepalive stores it
    under the plugin's name. Called every keepalive interval with a short
    deadline: an overrun is skipped for that interval.
    """
    raise NotImplementedError  # a specification, never called


@hookspec
@may_block
def pvc_collect_health_checks(node: str) -> list[dict[str, Any]]:
    """Health checks of ``node`` (this node).

    Return a list of dicts with keys ``name`` (str, unique within the
    plugin), ``ok`` (bool) and ``message`` (str, what an operator should
    know). Called every keepalive interval with a deadline; the keepalive
    stores the checks in the node's keepalive record and any failing check
    makes the node's health ``degraded``. A plugin that raises, overruns,
    is still busy with its previous call or returns something else is
    reported as one failed check named after the plugin.
    """
    raise NotImplementedError  # a specification, never called


# -- extensions of the API ----------------------------------------------------


@hookspec
def pvc_api_controllers() -> dict[str, Any]:
    """Extra REST controllers: a dict of resource name to controller.

    Called once when the API server builds its application. Each value is a
    ``pecan.rest.RestController`` instance (or subclass, instantiated
    without arguments) mounted at ``/api/v1/<name>``, the way the
    ``pvc.api.controllers`` entry points are. A name that is not a
    lower-case resource name or that a core resource, an entry-point
    controller or another plugin already uses stops the API at start. Must
    return at once. (CLI commands come from the ``pvc.cli`` entry-point
    groups, not from hooks: the CLI runs without a cluster configuration.)
    """
    raise NotImplementedError  # a specification, never called


# -- introspection ------------------------------------------------------------


def spec_names(module: ModuleType | None = None) -> list[str]:
    """Names of the hook specifications in ``module`` (default: this one), sorted."""
    ns = vars(module) if module is not None else globals()
    return sorted(name for name, obj in ns.items()
                  if callable(obj) and hasattr(obj, f"{PROJECT}_spec"))


def blocking_hooks(module: ModuleType | None = None) -> frozenset[str]:
    """Names of the hook specifications marked :func:`may_block`."""
    ns = vars(module) if module is not None else globals()
    return frozenset(name for name in spec_names(module)
                     if getattr(ns[name], _MAY_BLOCK_ATTR, False))
