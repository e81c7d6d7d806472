"""``/api/v1/job``: long operations (flush, ready) with plan and progress."""

from __future__ import annotations

from typing import Any

from pecan import rest

from pvc_api.context import by, current
from pvc_api.operation import operation
from pvc_api.schemas import job as s
from pvc_api.schemas.common import ERROR
from pvc_core.errors import Conflict
from pvc_core.ops.flush import request_ready
from pvc_core.store.jobs import FINISHED

TAG = "job"


class JobController(rest.RestController):
    """``/job``: one resource per job, addressed by its id."""

    _custom_actions = {"cancel": ["POST"]}

    @operation("GET", "/job", summary="List jobs", tag=TAG, query=s.LIST_QUERY,
               responses={200: s.JOB_LIST, 400: ERROR, 503: ERROR})
    def get_all(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        ctx = current()
        ctx.cache.check_fresh()
        return [j for j in ctx.cache.jobs()
                if query.get("kind") in (None, j.get("kind"))
                and query.get("state") in (None, j.get("state"))]

    @operation("GET", "/job/{job}", summary="One job, with its plan and progress", tag=TAG,
               responses={200: s.JOB, 400: ERROR, 404: ERROR, 503: ERROR})
    def get_one(self, job: str) -> dict[str, Any]:
        ctx = current()
        ctx.cache.check_fresh()
        return ctx.cache.job(job)

    @operation("POST", "/job/{job}/cancel", summary="Cancel a queued or running flush: "
               "the node is asked to become ready again, which stops the flush and brings "
               "back the VMs already moved", tag=TAG,
               responses={200: s.JOB, 400: ERROR, 404: ERROR, 409: ERROR, 503: ERROR})
    def cancel(self, job: str) -> dict[str, Any]:
        ctx = current()
        record = ctx.store.jobs.get(job).value
        if record.get("state") in FINISHED:
            raise Conflict(f"job {job} has already ended ({record.get('state')})")
        if record.get("kind") != "flush":
            raise Conflict(f"a {record.get('kind')} job cannot be cancelled; "
                           "flush the node again to undo it")
        node = str((record.get("params") or {}).get("node"))
        ready = request_ready(ctx.store, node, by=by())
        return {**ctx.store.jobs.get(job).value, "cancelled_by_job": ready["id"]}
