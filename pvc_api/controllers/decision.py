"""``/api/v1/decision``: the decision log (fencing, recovery, placement, primary)."""

from __future__ import annotations

from typing import Any

from pecan import rest

from pvc_api.context import current
from pvc_api.operation import operation
from pvc_api.schemas import decision as s
from pvc_api.schemas.common import ERROR
from pvc_core.errors import InvalidInput
from pvc_core.keyspace import check_uuid

TAG = "decision"


class DecisionController(rest.RestController):
    """``/decision``: read-only, newest last."""

    @operation("GET", "/decision", summary="The decision log, filtered by node, VM, kind "
               "and time", tag=TAG, query=s.LIST_QUERY,
               responses={200: s.DECISION_LIST, 400: ERROR, 404: ERROR, 503: ERROR})
    def get_all(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        ctx = current()
        vm = query.get("vm")
        if vm is not None:  # the log records UUIDs; a name is looked up (if still defined)
            try:
                vm = check_uuid(vm)
            except InvalidInput:
                vm = ctx.cache.vm(vm).uuid
        records = ctx.store.decisions.query(node=query.get("node"), vm=vm,
                                            since=query.get("since"))
        out = [d.to_dict() for d in records
               if (query.get("until") is None or d.time <= query["until"])
               and query.get("kind") in (None, d.kind)]
        return out[-int(query["limit"]):]
