"""The JSON Schema of PVC's core configuration sections.

Each property carries its ``default`` (filled in by
:func:`pvc_core.config.defaults.fill_defaults`) and, where the generated
wording would be poor (patterns, formats), an ``x-reason``: the human reason
used in error messages. Schemas are built by functions, never kept in
module-level mutable state.

Drivers own their own sections: ``hypervisor.<driver>``,
``networking.<driver>``, ``storage.<driver>``, ``dns.<driver>`` and each
entry of ``fencing.chain`` are validated against the driver class's
``config_schema`` (see :mod:`pvc_core.config.drivers`), not here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from jsonschema import FormatChecker

from pvc_core.errors import InvalidInput
from pvc_core.keyspace import Keyspace, check_node_name

Schema = dict[str, Any]

SELECTORS = ("mem", "memprov", "load", "vcpus", "vms")
#: Keys of a subsystem section that are not a driver's section.
SUBSYSTEM_KEYS = ("enabled", "driver", "drivers")

NODE_REASON = ("must be a lower-case DNS label (a-z, 0-9 and '-', 1-63 characters, "
               "not starting or ending with '-')")
DRIVER_REASON = ("must be a driver name (a lower-case letter, then a-z, 0-9, '_' or '-'; "
                 "not enabled, driver or drivers)")
PLUGIN_REASON = ("must be a hook plugin name: an entry point of pvc.plugins (a lower-case "
                 "letter, then a-z, 0-9, '_' or '-')")
_NAME_PATTERN = "^[a-z][a-z0-9_-]{0,62}$"


def _num(default: float, *, gt: float | None = 0, le: float | None = None) -> Schema:
    s: Schema = {"type": "number", "default": default}
    if gt is not None:
        s["exclusiveMinimum"] = gt
    if le is not None:
        s["maximum"] = le
    return s


def _int(default: int, *, ge: int = 0, le: int | None = None) -> Schema:
    s: Schema = {"type": "integer", "minimum": ge, "default": default}
    if le is not None:
        s["maximum"] = le
    return s


def _enum(default: str | None, *choices: str) -> Schema:
    return {"enum": list(choices), "default": default}


def _bool(default: bool) -> Schema:
    return {"type": "boolean", "default": default}


def _text(**extra: Any) -> Schema:
    return {"type": "string", "minLength": 1, **extra}


def _section(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    s: Schema = {"type": "object", "default": {}, "additionalProperties": False,
                 "properties": properties}
    if required:
        s["required"] = required
    return s


def node_name_schema() -> Schema:
    """A node name: a DNS label, checked by :func:`pvc_core.keyspace.check_node_name`."""
    return {"type": "string", "format": "pvc-node-name", "x-reason": NODE_REASON}


def driver_name_schema() -> Schema:
    """A driver's entry-point name; never one of :data:`SUBSYSTEM_KEYS`."""
    return {"type": "string", "pattern": _NAME_PATTERN,
            "not": {"enum": list(SUBSYSTEM_KEYS)}, "x-reason": DRIVER_REASON}


def plugin_list_schema() -> Schema:
    """``plugins``: hook plugins of the ``pvc.plugins`` group enabled by name."""
    return {"type": "array", "uniqueItems": True, "default": [],
            "items": {"type": "string", "pattern": _NAME_PATTERN, "x-reason": PLUGIN_REASON}}


def _node_list(**extra: Any) -> Schema:
    return {"type": "array", "minItems": 1, "uniqueItems": True,
            "items": node_name_schema(), **extra}


def _subsystem(enabled: bool, driver: str | None, *, multi: bool = False) -> Schema:
    props: dict[str, Schema] = {"enabled": _bool(enabled)}
    if multi:
        props["drivers"] = {"type": "array", "uniqueItems": True, "default": [],
                            "items": driver_name_schema()}
    else:
        named = driver_name_schema()
        props["driver"] = {**named, "type": ["string", "null"], "default": driver,
                           "x-reason": DRIVER_REASON + " or null"}
    # Other keys are driver sections, checked in pvc_core.config.checks/drivers.
    return {"type": "object", "default": {}, "properties": props, "additionalProperties": True}


def _network() -> Schema:
    return {
        "type": "object", "additionalProperties": False, "required": ["device", "cidr"],
        "properties": {
            "device": {"type": "string", "pattern": r"^[^\s/:]{1,15}$",
                       "x-reason": "must be a network interface name (1-15 characters, "
                                   "no spaces, '/' or ':')"},
            "cidr": {"type": "string", "format": "ip-network",
                     "x-reason": "must be an IP network like 10.0.0.0/24"},
            "floating_ip": {"type": ["string", "null"], "format": "ip-address",
                            "default": None, "x-reason": "must be an IP address or null"},
        },
    }


def _fence_entry() -> Schema:
    # Keys besides "driver" belong to the fence driver's config_schema.
    return {"type": "object", "required": ["driver"], "additionalProperties": True,
            "properties": {"driver": driver_name_schema()}}


def _api_key() -> Schema:
    return {
        "type": "object", "additionalProperties": False, "required": ["name", "hash"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                     "x-reason": "must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter "
                                 "or digit"},
            "hash": _text(pattern="^sha256:[0-9a-fA-F]{64}$", **{"x-secret": True},
                          **{"x-reason": "must be sha256:<64 hex digits> of the key "
                                         "(never the key itself)"}),
            "role": _enum("read-only", "read-only", "admin"),
        },
    }


def core_schema() -> Schema:
    """The JSON Schema (draft 2020-12) of every core section, with defaults."""
    hosts_reason = "must be a list of host:port strings, or one comma-separated string of them"
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "node": _section({
                "name": node_name_schema(),  # default: this host's short name
                "state_dir": {"type": "string", "pattern": "^/", "default": "/var/lib/pvc",
                              "x-reason": "must be an absolute path"},
            }),
            "cluster": _section({
                "name": {"type": "string", "default": "pvc",
                         "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
                         "x-reason": "must be 1-63 of A-Z a-z 0-9 . _ - starting with a "
                                     "letter or digit"},
                "nodes": _node_list(),
                "coordinators": _node_list(),  # default: cluster.nodes
                "networks": {"type": "object", "default": {},
                             "propertyNames": {"type": "string", "pattern": _NAME_PATTERN,
                                               "x-reason": "must be a network name (a "
                                               "lower-case letter, then a-z, 0-9, '_' or '-')"},
                             "additionalProperties": _network()},
            }, required=["nodes"]),
            "zookeeper": _section({
                "hosts": {"type": ["array", "string"], "minItems": 1, "default": ["127.0.0.1:2181"],
                          "format": "host-port-list", "x-reason": hosts_reason,
                          "items": {"type": "string", "format": "host-port",
                                    "x-reason": "must be a host:port string"}},
                "root": {"type": "string", "format": "pvc-znode-root", "default": "/pvc",
                         "x-reason": "must be an absolute znode path like /pvc"},
                "session_timeout": _num(10),
                "op_timeout": _num(5),
            }),
            "timers": _section({
                "keepalive_interval": _num(5),
                "vm_shutdown_timeout": _num(180),
                "console_log_lines": _int(1000),
                "restart_max_tries": _int(3, ge=1),
                "restart_backoff": _num(2),
                "restart_reset_after": _num(300),
                "reconcile_workers": _int(8, ge=1, le=256),
            }),
            "fencing": _section({
                "enabled": _bool(True),
                "fence_intervals": _int(6, ge=1),
                "saving_throws": _int(2),
                "storm_guard_share": _num(0.5, le=1),
                "self_fence_after": _num(30),
                "self_fence_action": _enum("stop-vms", "stop-vms", "command", "none"),
                "self_fence_command": {"type": "array", "default": [],
                                       "items": _text(**{"x-reason": "must be a non-empty "
                                                                     "string (one argv item)"})},
                "successful_fence": _enum("migrate", "migrate", "none"),
                "failed_fence": _enum("none", "none", "migrate", "migrate-after-self-fence"),
                "power_off_timeout": _num(30),
                "chain": {"type": "object", "default": {}, "propertyNames": node_name_schema(),
                          "additionalProperties": {"type": "array", "items": _fence_entry()}},
            }),
            "migration": _section({
                "default_selector": _enum("mem", *SELECTORS),
                "parallel_limit": _int(4, ge=1),
                "vm_timeout": _num(600),
                "max_downtime_ms": _int(300, ge=1),
                "method": _enum("auto", "auto", "live", "shutdown"),
            }),
            "logging": _section({
                "level": _enum("info", "debug", "info", "warning", "error"),
                "file": {"type": ["string", "null"], "minLength": 1, "default": None},
                "color": _enum("auto", "auto", "always", "never"),
                "decision_log_max": _int(1000, ge=1),
            }),
            "api": _section({
                "listen": _text(pattern=r"^\S+$", default="127.0.0.1",
                                **{"x-reason": "must be an IP address or host name"}),
                "port": _int(7370, ge=1, le=65535),
                "tls": {"type": ["object", "null"], "default": None,
                        "additionalProperties": False, "required": ["cert_file", "key_file"],
                        "properties": {"cert_file": _text(), "key_file": _text()}},
                "keys": {"type": "array", "default": [], "items": _api_key()},
                "metrics_auth": _bool(True),
            }),
            "hypervisor": _subsystem(True, "libvirt"),
            "networking": _subsystem(False, None, multi=True),
            "storage": _subsystem(False, None),
            "dns": _subsystem(False, None),
            "plugins": plugin_list_schema(),
        },
    }


def _host_port(value: str) -> bool:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        return bool(host) and ":" in host
    return ":" not in host and not any(c.isspace() or c in "/,[]" for c in host)


def format_checker() -> FormatChecker:
    """A fresh checker for PVC's custom formats (non-strings always pass)."""
    checker = FormatChecker(formats=())

    def check(name: str, raises: type[Exception] | tuple[type[Exception], ...] = ()) -> Any:
        def register(func: Any) -> Any:
            def wrapped(value: object) -> bool:
                return not isinstance(value, str) or bool(func(value))
            checker.checks(name, raises)(wrapped)
            return func
        return register

    check("pvc-node-name", InvalidInput)(check_node_name)
    check("pvc-znode-root", InvalidInput)(Keyspace)
    check("ip-address", ValueError)(ipaddress.ip_address)
    check("ip-network", ValueError)(lambda v: "/" in v and ipaddress.ip_network(v, strict=False))
    check("host-port")(_host_port)
    check("host-port-list")(lambda v: all(_host_port(h) for h in v.split(",")))
    return checker
