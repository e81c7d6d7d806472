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
    from stevedore import ExtensionManager

    def failed(_manager: Any, entry_point: Any, exc: BaseException) -> None:
        log.error("API controller %s could not be loaded: %s", entry_point.name, exc)

    manager = ExtensionManager(CONTROLLER_GROUP, invoke_on_load=False,
                               on_load_failure_callback=failed)
    out: dict[str, object] = {}
    for ext in manager:
        cls = ext.plugin
        if ext.name in taken or not (isinstance(cls, type)
                                     and issubclass(cls, rest.RestController)):
            log.error("API controller %s ignored: the name is taken or it is not a "
                      "RestController", ext.name)
            continue
        driver = getattr(cls, "pvc_driver", None)
        if driver is not None and not ctx.config.driver_enabled(*driver):
            continue
        out[ext.name] = cls()
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
