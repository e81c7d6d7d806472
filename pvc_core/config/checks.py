"""Derived defaults and cross-field checks of the core sections.

Runs after the core schema passed, so every value has its schema type here.
"""

from __future__ import annotations

import difflib
import ipaddress
from typing import Any

from pvc_core.config.problems import Problem, with_value
from pvc_core.config.schema import SUBSYSTEM_KEYS

#: section name -> (driver category, multi-driver?)
SUBSYSTEMS: dict[str, tuple[str, bool]] = {
    "hypervisor": ("hypervisor", False),
    "networking": ("network", True),
    "storage": ("storage", False),
    "dns": ("dns", False),
}


def derive_defaults(data: dict[str, Any], hostname: str) -> None:
    """Fill the defaults that depend on other values, in place.

    ``node.name`` defaults to ``hostname``; ``cluster.coordinators`` to all
    ``cluster.nodes``; ``zookeeper.hosts`` given as one comma-separated
    string becomes a list.
    """
    data["node"].setdefault("name", hostname)
    data["cluster"].setdefault("coordinators", list(data["cluster"]["nodes"]))
    hosts = data["zookeeper"]["hosts"]
    if isinstance(hosts, str):
        data["zookeeper"]["hosts"] = [h.strip() for h in hosts.split(",")]


def selected_drivers(section: dict[str, Any]) -> list[str]:
    """The driver names a subsystem section selects (enabled or not)."""
    if "drivers" in section:
        return list(section["drivers"])
    return [section["driver"]] if section.get("driver") is not None else []


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _cluster(data: dict[str, Any], name_defaulted: bool) -> list[Problem]:
    problems = []
    nodes = data["cluster"]["nodes"]
    known = _names(nodes)
    name = data["node"]["name"]
    if name not in nodes:
        reason = (f"is not set and this host's short name is not in cluster.nodes ({known}); "
                  "set node.name" if name_defaulted
                  else f"must be one of cluster.nodes ({known})")
        problems.append(Problem(("node", "name"), with_value(reason, name)))
    for i, coord in enumerate(data["cluster"]["coordinators"]):
        if coord not in nodes:
            problems.append(Problem(("cluster", "coordinators", i),
                                    with_value(f"not in cluster.nodes ({known})", coord)))
    for node in data["fencing"]["chain"]:
        if node not in nodes:
            problems.append(Problem(("fencing", "chain", node),
                                    f"not in cluster.nodes ({known})"))
    for net, spec in data["cluster"]["networks"].items():
        fip = spec.get("floating_ip")
        cidr = ipaddress.ip_network(spec["cidr"], strict=False)
        if fip is not None and ipaddress.ip_address(fip) not in cidr:
            problems.append(Problem(("cluster", "networks", net, "floating_ip"),
                                    with_value(f"must be inside cidr {cidr}", fip)))
    return problems


def _fencing(data: dict[str, Any]) -> list[Problem]:
    fencing = data["fencing"]
    if fencing["self_fence_action"] == "command" and not fencing["self_fence_command"]:
        return [Problem(("fencing", "self_fence_command"), with_value(
            "must be a non-empty argv list when self_fence_action is command",
            fencing["self_fence_command"]))]
    return []


def _api(data: dict[str, Any]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for i, key in enumerate(data["api"]["keys"]):
        if key["name"] in seen:
            problems.append(Problem(("api", "keys", i, "name"), with_value(
                f"duplicate of api.keys[{seen[key['name']]}].name", key["name"])))
        seen.setdefault(key["name"], i)
    return problems


def _subsystem(name: str, section: dict[str, Any]) -> list[Problem]:
    multi = SUBSYSTEMS[name][1]
    own = ("enabled", "drivers") if multi else ("enabled", "driver")
    selected = selected_drivers(section)
    enabled = section["enabled"]
    problems = []
    if enabled and not selected:
        key = "drivers" if multi else "driver"
        what = "at least one driver" if multi else "a driver"
        problems.append(Problem((name, key), with_value(
            f"must name {what} when {name}.enabled is true", section.get(key))))
    for key, value in section.items():
        if key in own:
            continue
        is_section = value is None or isinstance(value, dict)
        if key in selected and key not in SUBSYSTEM_KEYS:
            if enabled and not is_section:
                problems.append(Problem((name, key), with_value(
                    f"must be a mapping (the {key} driver's section)", value)))
        elif not is_section:
            close = difflib.get_close_matches(str(key), list(own), n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(Problem((name, key), "unknown key" + hint))
        elif enabled:
            chosen = ", ".join(selected) or "none"
            problems.append(Problem((name, key), "unknown key (not a selected driver; "
                                    f"selected: {chosen})"))
    return problems


def cross_checks(data: dict[str, Any], name_defaulted: bool = False) -> list[Problem]:
    """Problems that involve more than one value (all of them, unsorted).

    ``name_defaulted`` says that ``node.name`` came from the host name.
    """
    problems = _cluster(data, name_defaulted) + _fencing(data) + _api(data)
    for name in SUBSYSTEMS:
        problems += _subsystem(name, data[name])
    return problems
