"""``/api/v1/node``: list and show nodes; flush, ready, primary, secondary."""

from __future__ import annotations

from typing import Any

from pecan import rest

from pvc_api import present, waiting
from pvc_api.context import ApiContext, by, current
from pvc_api.operation import Reply, operation
from pvc_api.schemas import job as js
from pvc_api.schemas import node as s
from pvc_api.schemas.common import ERROR
from pvc_core.errors import NotFound
from pvc_core.ops.flush import plan_flush, request_flush, request_ready
from pvc_core.ops.nodes import request_primary, request_secondary
from pvc_core.states import CoordinatorState
from pvc_core.store.cache import CachedNode

TAG = "node"
_ERRORS = {400: ERROR, 404: ERROR, 409: ERROR, 503: ERROR}


def _matches(node: CachedNode, query: dict[str, Any]) -> bool:
    r = node.record
    return all(query.get(k) in (None, v) for k, v in (
        ("daemon_state", r.daemon_state.value),
        ("coordinator_state", r.coordinator_state.value),
        ("domain_state", r.domain_state.value)))


def _job_reply(ctx: ApiContext, job: dict[str, Any], query: dict[str, Any]) -> Reply:
    done = waiting.wait(ctx, lambda: waiting.job_done(ctx, job["id"]), query)
    if query.get("wait"):
        job = ctx.store.jobs.get(job["id"]).value
    return Reply({**job, "done": done}, 200 if done else 202)


def _coordinator_state(ctx: ApiContext, node: str | None) -> CoordinatorState | None:
    if node is None:
        return None
    try:
        return ctx.cache.node(node).record.coordinator_state
    except NotFound:  # a node that vanished holds no role
        return None


def _handed_to(ctx: ApiContext, node: str) -> bool:
    """``node`` is primary and settled there."""
    return (ctx.cache.primary() == node
            and _coordinator_state(ctx, node) is CoordinatorState.PRIMARY)


def _handed_from(ctx: ApiContext, node: str) -> bool:
    """Another coordinator is primary and settled, and ``node`` is secondary."""
    primary = ctx.cache.primary()
    return (primary not in (None, node) and _handed_to(ctx, str(primary))
            and _coordinator_state(ctx, node) is CoordinatorState.SECONDARY)


def _primary_reply(ctx: ApiContext, result: dict[str, Any], node: str, to: bool,
                   query: dict[str, Any]) -> Reply:
    done = waiting.wait(ctx, lambda: (_handed_to if to else _handed_from)(ctx, node), query)
    body = {**result, "primary": ctx.cache.primary(), "done": done}
    return Reply(body, 200 if done else 202)


class NodeController(rest.RestController):
    """``/node``: one resource per node, addressed by name."""

    _custom_actions = {"flush": ["POST"], "ready": ["POST"], "primary": ["POST"],
                       "secondary": ["POST"]}

    @operation("GET", "/node", summary="List nodes", tag=TAG, query=s.LIST_QUERY,
               responses={200: s.NODE_LIST, 400: ERROR, 503: ERROR})
    def get_all(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        ctx = current()
        ctx.cache.check_fresh()
        return [present.node(n) for n in ctx.cache.nodes() if _matches(n, query)]

    @operation("GET", "/node/{node}", summary="One node", tag=TAG,
               responses={200: s.NODE, 404: ERROR, 503: ERROR})
    def get_one(self, node: str) -> dict[str, Any]:
        ctx = current()
        ctx.cache.check_fresh()
        return present.node(ctx.cache.node(node))

    @operation("POST", "/node/{node}/flush", summary="Drain the node (its VMs move to "
               "other nodes); dry_run=true returns the plan and changes nothing", tag=TAG,
               query=s.FLUSH_QUERY,
               responses={200: {"oneOf": [s.PLAN, js.JOB_WAITED]}, 202: js.JOB_WAITED,
                          **_ERRORS})
    def flush(self, node: str, query: dict[str, Any]) -> Reply:
        ctx = current()
        if query.get("dry_run"):
            plan = plan_flush(ctx.store, node)
            return Reply({"node": node, "dry_run": True,
                          "plan": [i.to_dict() for i in plan]}, 200)
        return _job_reply(ctx, request_flush(ctx.store, node, by=by()), query)

    @operation("POST", "/node/{node}/ready", summary="Undrain the node (its VMs come "
               "back); cancels a flush still running", tag=TAG, query=s.WAIT_QUERY,
               responses={200: js.JOB_WAITED, 202: js.JOB_WAITED, **_ERRORS})
    def ready(self, node: str, query: dict[str, Any]) -> Reply:
        ctx = current()
        return _job_reply(ctx, request_ready(ctx.store, node, by=by()), query)

    @operation("POST", "/node/{node}/primary", summary="Make this coordinator the primary "
               "(a planned move)", tag=TAG, query=s.WAIT_QUERY,
               responses={200: s.PRIMARY, 202: s.PRIMARY, **_ERRORS})
    def primary(self, node: str, query: dict[str, Any]) -> Reply:
        ctx = current()
        return _primary_reply(ctx, request_primary(ctx.store, node, by=by()), node, True,
                              query)

    @operation("POST", "/node/{node}/secondary", summary="Make this primary step down to "
               "another running coordinator", tag=TAG, query=s.WAIT_QUERY,
               responses={200: s.PRIMARY, 202: s.PRIMARY, **_ERRORS})
    def secondary(self, node: str, query: dict[str, Any]) -> Reply:
        ctx = current()
        return _primary_reply(ctx, request_secondary(ctx.store, node, by=by()), node, False,
                              query)
