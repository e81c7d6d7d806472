"""Turn jsonschema errors into human, one-line :class:`Problem` reasons.

``type`` and bounds become ``must be an integer >= 0``; ``enum`` becomes
``must be one of: a, b``; ``required`` names the missing key
(``<path>.<key>: is required``); ``additionalProperties`` names the unknown
key (``<path>.<key>: unknown key``, with a suggestion when one is close);
``pattern``, ``format`` and ``not`` use the schema's ``x-reason``. Any
schema, including a driver's ``config_schema``, may set ``x-reason``, and
``x-secret: true`` so that the offending value is never repeated.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.validators import validator_for

from pvc_core.config.problems import KeyPath, Problem, format_path, format_value, with_value

_NOUNS = {"integer": "an integer", "number": "a number", "string": "a string",
          "boolean": "a boolean (true or false)", "array": "a list", "object": "a mapping",
          "null": "null"}
_BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
           ("exclusiveMaximum", "<"))
#: Keywords whose generated reason is better than any x-reason.
_OWN_WORDING = frozenset({"required", "additionalProperties", "enum", "uniqueItems",
                          "minItems", "maxItems"})


def _num(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _choice(value: object) -> str:
    return value if isinstance(value, str) else format_value(value)


def describe(schema: Mapping[str, Any]) -> str:
    """What a value must be, e.g. ``must be a number > 0 and <= 1``."""
    if "x-reason" in schema:
        return str(schema["x-reason"])
    if "enum" in schema:
        return "must be one of: " + ", ".join(_choice(c) for c in schema["enum"])
    if "const" in schema:
        return f"must be {format_value(schema['const'])}"
    raw = schema.get("type", [])
    types = [raw] if isinstance(raw, str) else list(raw)
    nouns = []
    for t in types:
        noun = _NOUNS.get(t, t)
        if t == "string" and schema.get("minLength") == 1:
            noun = "a non-empty string"
        nouns.append(noun)
    text = " or ".join(nouns) or "a valid value"
    bounds = [f"{op} {_num(schema[k])}" for k, op in _BOUNDS if k in schema]
    return "must be " + text + ("" if not bounds else " " + " and ".join(bounds))


def _suggest(key: object, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def _duplicates(items: Sequence[object]) -> list[tuple[int, int]]:
    seen: dict[str, int] = {}
    found = []
    for i, item in enumerate(items):
        key = format_value(item)
        if key in seen:
            found.append((i, seen[key]))
        else:
            seen.setdefault(key, i)
    return found


def translate(error: ValidationError, prefix: KeyPath = ()) -> list[Problem]:
    """The problems one jsonschema error stands for (usually one)."""
    path: KeyPath = prefix + tuple(error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    keyword = error.validator
    instance: Any = error.instance
    schema_path = list(error.absolute_schema_path)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        # A bad mapping key: the instance is the key itself.
        return [Problem(path + (instance,), with_value(describe(schema), instance)
                        if "x-reason" in schema else "not allowed as a key here")]
    if keyword == "required" and isinstance(instance, Mapping):
        wanted: Any = error.validator_value
        return [Problem(path + (k,), "is required") for k in wanted if k not in instance]
    if keyword == "additionalProperties" and isinstance(instance, Mapping):
        known = [str(k) for k in schema.get("properties", {})]
        return [Problem(path + (k,), "unknown key" + _suggest(k, known))
                for k in instance if k not in schema.get("properties", {})]
    if keyword == "uniqueItems" and isinstance(instance, list):
        return [Problem(path + (i,), with_value(f"duplicate of {format_path(path + (first,))}",
                                                instance[i]))
                for i, first in _duplicates(instance)[:1]]
    if keyword == "minItems":
        n = error.validator_value
        reason = "must not be empty" if n == 1 else f"must have at least {n} items"
        return [Problem(path, with_value(reason, instance))]
    if keyword == "maxItems":
        return [Problem(path, with_value(f"must have at most {error.validator_value} items",
                                         instance))]
    if keyword in ("anyOf", "oneOf") and "x-reason" not in schema and error.context:
        inner = best_match(error.context)
        return translate(inner, prefix) if inner is not None else []
    if schema.get("x-secret"):  # never echo what may be a secret into a log
        return [Problem(path, describe(schema))]
    if keyword in _OWN_WORDING or "x-reason" in schema:
        return [Problem(path, with_value(describe(schema), instance))]
    if keyword in ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                   "minLength", "const"):
        return [Problem(path, with_value(describe(schema), instance))]
    if keyword == "pattern":
        return [Problem(path, with_value(f"must match {error.validator_value}", instance))]
    if keyword == "format":
        return [Problem(path, with_value(f"must be a valid {error.validator_value}", instance))]
    if keyword == "False schema":
        return [Problem(path, "is not allowed here")]
    return [Problem(path, " ".join(error.message.split()))]


def validate(schema: Mapping[str, Any], instance: Any, prefix: KeyPath = (),
             checker: FormatChecker | None = None) -> list[Problem]:
    """Every problem of ``instance`` against ``schema``.

    The schema's ``$schema`` picks the draft; draft 2020-12 when it has none.
    """
    cls = validator_for(schema, default=Draft202012Validator)
    validator = cls(schema, format_checker=checker)
    problems: list[Problem] = []
    for error in validator.iter_errors(instance):
        problems.extend(translate(error, prefix))
    return problems
