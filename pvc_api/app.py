"""The WSGI application: the controller tree, hooks, and driver controllers."""

from __future__ import annotations

import logging
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


def make_app(ctx: ApiContext) -> Any:
    """The Pecan WSGI application serving ``ctx``'s cluster."""
    resources = core_resources()
    resources.update(plugin_resources(ctx, set(resources)))
    return pecan.make_app(
        RootController(resources),
        hooks=[ContextHook(ctx), ErrorHook(), AuditHook()],
        force_canonical=False, guess_content_type_from_ext=False, debug=False,
        logging=False)
