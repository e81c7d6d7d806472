"""``@operation``: one declaration per endpoint that validates and documents it.

A controller method decorated with :func:`operation` states its method, its
path template (``/vm/{vm}/start``), its query and body schemas (JSON Schema
from ``pvc_api.schemas``), and its responses. The wrapper

- binds the path segments Pecan routed to the method's positional parameters
  (a path with extra or missing segments is a 404, not a TypeError);
- converts query parameters (strings on the wire) to the types their schema
  names, and validates them and the JSON body, so a bad request is a 400
  naming the field before the method runs;
- after a write, waits for the watch-fed cache to apply it, so the caller's
  next read through this server sees it (read-your-writes);
- turns the method's return value into a JSON response with the declared
  status (a method may return ``Reply(data, status)`` to choose another).

The same declarations produce the OpenAPI document (:mod:`pvc_api.openapi`),
so what is documented is what is enforced.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pecan
from webob import Response

from pvc_api.context import current
from pvc_core.config.messages import validate
from pvc_core.config.problems import sort_problems
from pvc_core.errors import InvalidInput, NotFound

Schema = dict[str, Any]

#: Marker attribute holding an endpoint's :class:`Operation` on the function.
ATTR = "_pvc_operation"


@dataclass(frozen=True)
class Reply:
    """A response body with an explicit status (e.g. 202 while a job runs)."""

    data: Any
    status: int


@dataclass(frozen=True)
class Operation:
    """The declaration of one endpoint (see the module docstring)."""

    method: str
    path: str
    summary: str
    tag: str
    query: Schema | None = None
    body: Schema | None = None
    responses: Mapping[int, Schema | None] = field(default_factory=dict)
    status: int = 200
    public: bool = False

    @property
    def mutating(self) -> bool:
        return self.method not in ("GET", "HEAD")


def _coerce(value: str, schema: Schema) -> Any:
    """A query string value as the type its schema asks for (left alone if it
    does not parse: validation then reports it)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "boolean" in kinds:
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    if "integer" in kinds:
        try:
            return int(value)
        except ValueError:
            pass
    if "number" in kinds:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if number == number and number not in (float("inf"), float("-inf")):
                return number
    return value


def _check(schema: Schema, instance: Any, where: str) -> None:
    problems = sort_problems(validate(schema, instance))
    if problems:
        first = problems[0]
        raise InvalidInput(first.reason, first.key or where)


def parse_query(schema: Schema | None, params: Mapping[str, str]) -> dict[str, Any]:
    """Validate query parameters against ``schema`` (an object schema)."""
    props: dict[str, Schema] = (schema or {}).get("properties", {})
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in props:
            known = ", ".join(sorted(props)) or "none"
            raise InvalidInput(f"unknown query parameter (known: {known})", name)
        out[name] = _coerce(value, props[name])
    if schema is not None:
        _check(schema, out, "query")
    for name, prop in props.items():
        if name not in out and "default" in prop:
            out[name] = prop["default"]
    return out


def parse_body(schema: Schema | None, raw: bytes) -> dict[str, Any]:
    """Parse and validate a JSON object body; an empty body is ``{}``."""
    if schema is None:
        if raw.strip() not in (b"", b"{}"):
            raise InvalidInput("this endpoint takes no request body (send none, or {})",
                               "body")
        return {}
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"not valid JSON: {exc}", "body") from None
    if not isinstance(data, dict):
        raise InvalidInput("must be a JSON object", "body")
    _check(schema, data, "body")
    for name, prop in schema.get("properties", {}).items():
        if name not in data and "default" in prop:
            data[name] = prop["default"]
    return data


def encode_json(data: Any) -> bytes:
    """Compact UTF-8 JSON, as every response is encoded."""
    return json.dumps(data, separators=(",", ":")).encode()


def json_response(data: Any, status: int) -> Response:
    """A JSON response; ``data`` already encoded (bytes) is sent as it is."""
    body = data if isinstance(data, bytes) else encode_json(data)
    return Response(body=body, status=status, content_type="application/json",
                    charset="utf-8")


def operation(method: str, path: str, *, summary: str, tag: str,
              query: Schema | None = None, body: Schema | None = None,
              responses: Mapping[int, Schema | None] | None = None, status: int = 200,
              public: bool = False,
              exposed: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare, validate and document one endpoint (see the module docstring).

    The decorated method is called as ``fn(self, *path_args, query=..., body=...)``
    (``query``/``body`` only when it declares them) and returns the response
    data, or a :class:`Reply`. ``exposed=False`` leaves it to a dispatcher
    (one Pecan method serving two paths, like ``POST /vm`` and ``POST /vm/{vm}``).
    """
    op = Operation(method.upper(), path, summary, tag, query, body, dict(responses or {}),
                   status, public)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)
        wants = {name for name in ("query", "body") if name in signature.parameters}
        positional = [p for p in signature.parameters.values()
                      if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                      and p.name not in ("query", "body")]

        @functools.wraps(fn)
        def endpoint(self: Any, *args: Any, **_ignored: Any) -> Response:
            if len(args) != len(positional) - 1:
                raise NotFound(f"no such path: {pecan.request.path}")
            kwargs: dict[str, Any] = {}
            request = pecan.request
            params = parse_query(op.query, request.GET)
            if "query" in wants:
                kwargs["query"] = params
            parsed = parse_body(op.body, request.body) if op.mutating else {}
            if "body" in wants:
                kwargs["body"] = parsed
            result = fn(self, *args, **kwargs)
            if op.mutating:  # the caller's next read sees this write
                ctx = current()
                ctx.cache.settle(ctx.config.zookeeper.op_timeout)
            if isinstance(result, Reply):
                return json_response(result.data, result.status)
            return json_response(result, op.status)

        setattr(endpoint, ATTR, op)
        return pecan.expose()(endpoint) if exposed else endpoint

    return decorate


def operations_of(controller: object) -> list[Operation]:
    """Every :class:`Operation` declared on ``controller``'s class."""
    out = []
    for _name, member in inspect.getmembers(type(controller)):
        op = getattr(member, ATTR, None)
        if isinstance(op, Operation):
            out.append(op)
    return out
