"""The WSGI application: the controller tree, hooks, and plugin controllers.

Resources under ``/api/v1`` come from three places, mounted in this order:
the core controllers, the ``pvc.api.controllers`` entry points (of enabled
drivers), and the controllers the configured hook plugins return from
``pvc_api_controllers``. A hook plugin's resource whose name is already
taken stops the start; a clashing entry point is logged and left out.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pecan
from pecan import rest

from pvc_api.context import ApiContext
from pvc_api.controllers.cluster import ClusterController
from pvc_api.controllers.decision import DecisionController
from pvc_api.controllers.fault import FaultController
from pvc_api.controllers.job import JobController
from pvc_api.controllers.node import NodeController
from pvc_api.controllers.root import RootController
from pvc_api.controllers.vm import VmController
from pvc_api.hooks import AuditHook, ContextHook, ErrorHook

log = logging.getLogger("pvc.api")
CONTROLLER_GROUP = "pvc.api.controllers"
#: Attributes of the ``/api/v1`` controller that no resource may replace.
RESERVED = frozenset({"index", "openapi"})
_RESOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def core_resources() -> dict[str, object]:
    return {"node": NodeController(), "vm": VmController(), "cluster": ClusterController(),
            "job": JobController(), "decision": DecisionController(),
            "fault": FaultController()}


def plugin_resources(ctx: ApiContext, taken: set[str]) -> dict[str, object]:
    """Controllers registered in ``pvc.api.controllers`` whose driver is enabled.

    A controller class may name its driver with ``pvc_driver = ("storage", "ceph")``;
    it is mounted only while that driver is enabled. One that cannot be loaded
    is logged and left out; the API serves the rest.
    """
    from pvc_core.drivers.factory import load_entry_point, names_in
    from pvc_core.errors import DriverLoadError

    out: dict[str, object] = {}
    for name in names_in(CONTROLLER_GROUP):  # read fresh: no stevedore cache
        if name in taken:
            log.error("API controller %s ignored: the name is a core resource", name)
            continue
        try:
            cls = load_entry_point(CONTROLLER_GROUP, name, f"API controller {name!r}")
        except DriverLoadError as exc:
            log.error("API controller %s could not be loaded: %s", name, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, rest.RestController)):
            log.error("API controller %s ignored: not a pecan RestController", name)
            continue
        driver = getattr(cls, "pvc_driver", None)
        if driver is not None and not ctx.config.driver_enabled(*driver):
            continue
        out[name] = cls()
    return out


def hook_resources(ctx: ApiContext, core: set[str], entry_points: set[str]) -> dict[str, object]:
    """Controllers the hook plugins in ``ctx.hooks`` return from ``pvc_api_controllers``.

    Each value is a ``pecan.rest.RestController`` instance, or a subclass
    instantiated here. Raises DriverLoadError, naming the plugin, when a
    plugin raises, returns something that is not a dict of controllers,
    uses a name that is not a resource name (a lower-case letter, then
    a-z, 0-9, ``_`` or ``-``), or uses a name that a core resource, an
    entry-point controller or another plugin already has.
    """
    from pvc_core.errors import DriverLoadError

    results = ctx.hooks.call("pvc_api_controllers")
    if results.failed:
        failure = results.failed[0]
        raise DriverLoadError(f"hook plugin {failure.plugin!r}: pvc_api_controllers raised "
                              f"{type(failure.error).__name__}: {failure.error}")
    out: dict[str, object] = {}
    owner: dict[str, str] = {}
    for plugin, value in results.by_plugin().items():
        what = f"hook plugin {plugin!r}: pvc_api_controllers"
        if value is None:
            continue
        if not isinstance(value, dict):
            raise DriverLoadError(f"{what} returned {type(value).__name__}, not a dict of "
                                  "resource name to controller")
        for name, controller in value.items():
            if not isinstance(name, str) or not _RESOURCE_NAME.fullmatch(name) or name in RESERVED:
                raise DriverLoadError(f"{what}: {name!r} is not a resource name (a lower-case "
                                      "letter, then a-z, 0-9, '_' or '-'; not index or openapi)")
            clash = ("a core resource" if name in core else
                     f"the {CONTROLLER_GROUP} entry point {name!r}" if name in entry_points else
                     f"hook plugin {owner[name]!r}" if name in owner else None)
            if clash is not None:
                raise DriverLoadError(f"{what}: resource {name!r} is already taken by {clash}")
            if isinstance(controller, type) and issubclass(controller, rest.RestController):
                try:
                    controller = controller()
                except Exception as exc:
                    raise DriverLoadError(f"{what}: resource {name!r} failed to initialise: "
                                          f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(controller, rest.RestController):
                raise DriverLoadError(f"{what}: resource {name!r} is {controller!r}, not a "
                                      "pecan RestController")
            out[name] = controller
            owner[name] = plugin
    return out


def make_app(ctx: ApiContext) -> Any:
    """The Pecan WSGI application serving ``ctx``'s cluster.

    Loads the hook plugins of ``ctx.config`` (``plugins``) into ``ctx.hooks``
    and mounts the controllers they offer. Raises DriverLoadError when an
    enabled plugin is missing or broken, or offers a controller that cannot
    be mounted (see :func:`hook_resources`).
    """
    from pvc_core.daemon.plugins import load_hook_plugins

    load_hook_plugins(ctx.hooks, ctx.config)
    resources = core_resources()
    core = set(resources) | RESERVED
    from_entry_points = plugin_resources(ctx, core)
    resources.update(from_entry_points)
    resources.update(hook_resources(ctx, core, set(from_entry_points)))
    return pecan.make_app(
        RootController(resources),
        hooks=[ContextHook(ctx), ErrorHook(), AuditHook()],
        force_canonical=False, guess_content_type_from_ext=False, debug=False,
        logging=False)
