"""Schema pieces shared by every resource."""

from __future__ import annotations

from typing import Any

from pvc_core.keyspace import ID_PATTERN, NODE_NAME_PATTERN, VM_NAME_PATTERN

Schema = dict[str, Any]

NODE_NAME: Schema = {"type": "string", "pattern": NODE_NAME_PATTERN,
                     "x-reason": "must be a lower-case DNS label (a-z, 0-9, '-', at most 63)"}
VM_NAME: Schema = {"type": "string", "pattern": VM_NAME_PATTERN,
                   "x-reason": "must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter "
                               "or digit"}
IDENT: Schema = {"type": "string", "pattern": ID_PATTERN,
                 "x-reason": "must be 1-128 of A-Z a-z 0-9 . _ -"}
NULLABLE_STR: Schema = {"type": ["string", "null"]}
NULLABLE_NUM: Schema = {"type": ["number", "null"]}

ERROR: Schema = {
    "type": "object", "required": ["message", "field"],
    "properties": {"message": {"type": "string"}, "field": NULLABLE_STR},
}


def obj(properties: dict[str, Schema], required: list[str] | None = None,
        additional: bool = False) -> Schema:
    """An object schema; unknown fields refused unless ``additional``."""
    out: Schema = {"type": "object", "properties": properties,
                   "additionalProperties": additional}
    if required:
        out["required"] = required
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def boolean(default: bool = False) -> Schema:
    return {"type": "boolean", "default": default}


#: ``?wait=true&timeout=N`` on every long operation.
WAIT_PARAMS: dict[str, Schema] = {
    "wait": boolean(False),
    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600, "default": 60},
}
WAIT_QUERY: Schema = obj(dict(WAIT_PARAMS))


def with_done(schema: Schema) -> Schema:
    """``schema`` plus the ``done`` flag of a waitable answer."""
    props = dict(schema["properties"])
    props["done"] = {"type": "boolean"}
    return {**schema, "properties": props, "required": [*schema.get("required", []), "done"]}
