"""The one place where exceptions become HTTP responses.

Every PVC error carries its status (:mod:`pvc_core.errors`); routing errors
from Pecan/WebOb (unknown path, method not allowed) keep theirs; anything else
is a bug: it is logged with its traceback and answered 500 with no detail.
Every error body has one shape: ``{"message": ..., "field": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any

from webob import Response
from webob.exc import HTTPException

from pvc_api.operation import json_response
from pvc_core.errors import InvalidInput, PVCError

log = logging.getLogger("pvc.api")


def error_body(message: str, field: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field}


def translate(exc: BaseException) -> Response:
    """The response for ``exc`` (see the module docstring)."""
    if isinstance(exc, PVCError):
        field = exc.field if isinstance(exc, InvalidInput) else None
        message = exc.message
        if field and message.startswith(f"{field}: "):
            message = message[len(field) + 2:]
        status = exc.status if 400 <= exc.status < 600 else 500
        if status >= 500 and status != 503:
            log.error("request failed: %s", exc)
        return json_response(error_body(message, field), status)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        if status == 400:  # Pecan/WebOb could not decode the request (e.g. not UTF-8)
            return json_response(error_body("the request could not be decoded (is it "
                                            "UTF-8 JSON?)", "body"), 400)
        message = {404: "no such path", 405: "method not allowed on this path"}.get(
            status, exc.explanation or exc.title)
        response = json_response(error_body(message), status)
        if status == 405 and exc.headers.get("Allow"):
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    log.exception("internal error while serving a request")
    return json_response(error_body("internal error (see the API server's log)"), 500)
