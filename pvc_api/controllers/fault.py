"""``/api/v1/fault``: conditions an operator must see; acknowledge or delete them."""

from __future__ import annotations

from typing import Any

from pecan import rest

from pvc_api.context import current
from pvc_api.operation import operation
from pvc_api.schemas import fault as s
from pvc_api.schemas.common import ERROR

TAG = "fault"


class FaultController(rest.RestController):
    """``/fault``: one resource per fault, addressed by its id."""

    _custom_actions = {"ack": ["POST"]}

    @operation("GET", "/fault", summary="List faults", tag=TAG,
               responses={200: s.FAULT_LIST, 503: ERROR})
    def get_all(self) -> list[dict[str, Any]]:
        ctx = current()
        ctx.cache.check_fresh()
        return ctx.cache.faults()

    @operation("GET", "/fault/{fault}", summary="One fault", tag=TAG,
               responses={200: s.FAULT, 400: ERROR, 404: ERROR, 503: ERROR})
    def get_one(self, fault: str) -> dict[str, Any]:
        return current().store.faults.get(fault)

    @operation("POST", "/fault/{fault}/ack", summary="Acknowledge a fault", tag=TAG,
               responses={200: s.FAULT, 400: ERROR, 404: ERROR, 409: ERROR, 503: ERROR})
    def ack(self, fault: str) -> dict[str, Any]:
        return current().store.faults.acknowledge(fault)

    @operation("DELETE", "/fault/{fault}", summary="Delete a fault (it is raised again "
               "if its condition persists)", tag=TAG,
               responses={200: s.FAULT, 400: ERROR, 404: ERROR, 409: ERROR, 503: ERROR})
    def delete(self, fault: str) -> dict[str, Any]:
        ctx = current()
        record = ctx.store.faults.get(fault)
        ctx.store.faults.delete(fault)
        return record
