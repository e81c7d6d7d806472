"""The OpenAPI 3.1 document, built from the controllers' ``@operation``s.

Every declared operation becomes a path item: its path parameters, its query
parameters (the query schema's properties), its request body and responses
(the same schema objects the server validates with).
"""

from __future__ import annotations

import re
from typing import Any

from pecan import rest

from pvc_api.operation import Operation, operations_of
from pvc_api.schemas.common import ERROR

PREFIX = "/api/v1"
_PARAM = re.compile(r"{([a-z_]+)}")
_PATH_PARAM_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 128,
                      "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*$"}


def collect(controllers: dict[str, object]) -> list[Operation]:
    """Every operation on ``controllers`` and their sub-controllers."""
    seen: set[int] = set()
    out: list[Operation] = []

    def walk(controller: object) -> None:
        if id(controller) in seen:
            return
        seen.add(id(controller))
        out.extend(operations_of(controller))
        for name in dir(type(controller)):
            if name.startswith("_"):
                continue
            child = getattr(controller, name, None)
            if isinstance(child, rest.RestController):
                walk(child)

    for controller in controllers.values():
        walk(controller)
    return sorted(out, key=lambda op: (op.path, op.method))


def _operation(op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _PATH_PARAM_SCHEMA}
        for name in _PARAM.findall(op.path)]
    for name, schema in ((op.query or {}).get("properties") or {}).items():
        params.append({"name": name, "in": "query", "required": False, "schema": schema})
    responses: dict[str, Any] = {}
    for status, schema in sorted({**op.responses, 401: ERROR}.items()):
        item: dict[str, Any] = {"description": _REASONS.get(status, "response")}
        if schema is not None:
            item["content"] = {"application/json": {"schema": schema}}
        responses[str(status)] = item
    if op.mutating:
        responses.setdefault("403", {"description": _REASONS[403],
                                     "content": {"application/json": {"schema": ERROR}}})
    slug = _PARAM.sub(r"by_\1", op.path).strip("/").replace("/", "_")
    doc: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "responses": responses,
                           "operationId": f"{op.method.lower()}_{slug}"}
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": bool(op.body.get("required")),
                              "content": {"application/json": {"schema": op.body}}}
    if op.public:
        doc["security"] = []
    return doc


_REASONS = {200: "OK", 201: "created", 202: "accepted: not finished yet", 400: "invalid input",
            401: "no or bad API key", 403: "the key's role does not allow this",
            404: "not found", 409: "conflict", 503: "ZooKeeper unavailable"}


def document(controllers: dict[str, object], version: str, cluster: str) -> dict[str, Any]:
    """The whole OpenAPI document."""
    paths: dict[str, dict[str, Any]] = {}
    for op in collect(controllers):
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"PVC API ({cluster})", "version": version,
                 "description": "PVC cluster manager REST API; see docs/api.md."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}},
        "security": [{"apiKey": []}],
        "paths": paths,
    }
