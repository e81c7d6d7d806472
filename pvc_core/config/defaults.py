"""Fill documented defaults from a JSON Schema's ``default`` keywords."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def fill_defaults(schema: Mapping[str, Any], instance: object) -> None:
    """Insert, in place, the ``default`` of every absent property of ``instance``.

    Walks ``properties`` of mappings and ``items`` / ``additionalProperties``
    schemas of containers. A property set to null whose schema is exactly an
    object (a section) counts as absent, so an empty ``timers:`` line means
    "all defaults". Values of the wrong type are left alone for validation to
    report.
    """
    if isinstance(instance, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        for key, sub in props.items():
            if not isinstance(sub, Mapping):
                continue
            absent = key not in instance or (instance[key] is None and sub.get("type") == "object")
            if absent and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                fill_defaults(sub, instance[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, value in instance.items():
                if key not in props:
                    fill_defaults(extra, value)
    elif isinstance(instance, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for value in instance:
                fill_defaults(items, value)
