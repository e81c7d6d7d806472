"""Validate each enabled driver's section against the driver's own schema.

A driver class (found by ``driver_lookup(category, name)``, by default
:func:`pvc_core.drivers.factory.driver_class`) owns its section through
``config_schema``. Only enabled drivers are looked up, so a disabled
subsystem's driver is never imported. A lookup failure becomes a problem at
the key that names the driver (``hypervisor.driver: ...``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from pvc_core.config.checks import SUBSYSTEMS, selected_drivers
from pvc_core.config.defaults import fill_defaults
from pvc_core.config.messages import validate
from pvc_core.config.problems import KeyPath, Problem
from pvc_core.drivers.base import Driver
from pvc_core.errors import DriverError

#: ``(category, name) -> driver class``; raises DriverError when unavailable.
DriverLookup = Callable[[str, str], type[Driver]]


@dataclass(frozen=True)
class DriverUse:
    """One use of an enabled driver: which, where it is named, where its section is."""

    category: str
    name: str
    name_path: KeyPath
    section_path: KeyPath
    #: for fence entries: the chain's node and the entry's index
    node: str = ""
    index: int = -1


def driver_uses(data: dict[str, Any]) -> Iterator[DriverUse]:
    """Every enabled driver use, in file order (subsystems, then fence entries)."""
    for section, (category, multi) in SUBSYSTEMS.items():
        if not data[section]["enabled"]:
            continue
        for i, name in enumerate(selected_drivers(data[section])):
            name_path: KeyPath = (section, "drivers", i) if multi else (section, "driver")
            yield DriverUse(category, name, name_path, (section, name))
    if data["fencing"]["enabled"]:
        for node in sorted(data["fencing"]["chain"]):
            for i, entry in enumerate(data["fencing"]["chain"][node]):
                at: KeyPath = ("fencing", "chain", node, i)
                yield DriverUse("fence", entry["driver"], at + ("driver",), at, node, i)


def _section(data: dict[str, Any], use: DriverUse) -> dict[str, Any] | None:
    """The section to validate (a copy for fence entries); None if not a mapping."""
    if use.category == "fence":
        entry = data["fencing"]["chain"][use.node][use.index]
        return {k: v for k, v in entry.items() if k != "driver"}
    section = data[str(use.section_path[0])]
    value = section.get(use.name)
    if value is None:
        value = section[use.name] = {}
    return value if isinstance(value, dict) else None


def _store(data: dict[str, Any], use: DriverUse, options: dict[str, Any]) -> None:
    if use.category == "fence":
        data["fencing"]["chain"][use.node][use.index] = {"driver": use.name, **options}
    else:
        data[str(use.section_path[0])][use.name] = options


def _schema_of(cls: type[Driver], use: DriverUse) -> tuple[dict[str, Any] | None, str]:
    schema = getattr(cls, "config_schema", None)
    if not isinstance(schema, dict):
        return None, f"{use.category} driver {use.name!r} has no config_schema mapping"
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        reason = " ".join(exc.message.split())
        return None, f"{use.category} driver {use.name!r} has an invalid config_schema: {reason}"
    return schema, ""


def check_drivers(data: dict[str, Any], lookup: DriverLookup) -> list[Problem]:
    """Look up every enabled driver and validate its section, filling its defaults.

    ``data`` must have passed the core schema and cross checks; validated
    sections (with the driver schema's defaults) are written back into it.
    """
    problems: list[Problem] = []
    classes: dict[tuple[str, str], type[Driver] | None] = {}
    for use in driver_uses(data):
        key = (use.category, use.name)
        if key not in classes:
            try:
                classes[key] = lookup(use.category, use.name)
            except DriverError as exc:
                classes[key] = None
                problems.append(Problem(use.name_path, " ".join(str(exc).split())))
        cls = classes[key]
        if cls is None:
            continue
        schema, broken = _schema_of(cls, use)
        if schema is None:
            problems.append(Problem(use.name_path, broken))
            continue
        section = _section(data, use)
        if section is None:
            continue  # already reported by the cross checks
        options = copy.deepcopy(section)
        fill_defaults(schema, options)
        found = validate(schema, options, use.section_path,
                         Draft202012Validator.FORMAT_CHECKER)
        problems.extend(found)
        if not found:
            _store(data, use, options)
    return problems
