"""Pecan hooks: the request context, authentication, error translation, audit."""

from __future__ import annotations

import json
import time
from typing import Any

from pecan.hooks import PecanHook

from pvc_api import errors
from pvc_api.auth import Caller, KeyRing
from pvc_api.context import ApiContext

#: Paths anyone may read without a key.
PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})
METRICS_PATH = "/metrics"
#: Body fields never copied into the audit log (large or sensitive).
_UNAUDITED_FIELDS = frozenset({"xml"})


class ContextHook(PecanHook):
    """Attach the server's :class:`ApiContext` and authenticate the caller."""

    priority = 10

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def on_route(self, state: Any) -> None:
        request = state.request
        # Every answer is JSON whatever the client accepts: keep Pecan's content
        # negotiation from refusing "Accept: application/json" (406).
        request.environ.pop("HTTP_ACCEPT", None)
        request.pvc = self.ctx
        request.pvc_started = time.monotonic()
        request.pvc_caller = Caller("anonymous", "none")
        path = request.path.rstrip("/") or "/"
        if path in PUBLIC_PATHS or (path == METRICS_PATH and not self.ctx.config.api.metrics_auth):
            return
        request.pvc_caller = self.ctx.keys.authenticate(request.headers.get("X-Api-Key"))
        KeyRing.authorize(request.pvc_caller, request.method)


class ErrorHook(PecanHook):
    """Every exception becomes a JSON error response (pvc_api.errors)."""

    priority = 20

    def on_error(self, state: Any, exc: BaseException) -> Any:
        response = errors.translate(exc)
        state.response = response
        return response


class AuditHook(PecanHook):
    """Log every mutating request: who, what, and the result."""

    priority = 30

    def after(self, state: Any) -> None:
        request = state.request
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        ctx: ApiContext | None = getattr(request, "pvc", None)
        if ctx is None:
            return
        who: Caller = getattr(request, "pvc_caller", Caller("anonymous", "none"))
        response = state.response
        started = getattr(request, "pvc_started", time.monotonic())
        record = {"who": who.name, "role": who.role, "method": request.method,
                  "path": request.path, "query": dict(request.GET),
                  "body": _audited_body(request.body), "status": response.status_int,
                  "ms": round((time.monotonic() - started) * 1000, 1),
                  "remote": request.remote_addr}
        if response.status_int >= 400:
            record["error"] = _error_message(response.body)
        ctx.audit.info(json.dumps(record, sort_keys=True))


def _audited_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return f"<{len(raw)} bytes, not JSON>"
    if isinstance(data, dict):
        return {k: ("<omitted>" if k in _UNAUDITED_FIELDS else v) for k, v in data.items()}
    return "<not an object>"


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message"))
    except (ValueError, AttributeError):
        return raw[:200].decode(errors="replace")
