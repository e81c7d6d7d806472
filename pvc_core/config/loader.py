"""Read ``pvc.yaml`` and turn it into a validated :class:`Config`.

Order of work: find the file (argument, then ``PVC_CONFIG``, then
``/etc/pvc/pvc.yaml``); read it as UTF-8; reject duplicate keys; parse it
with ``yaml.safe_load``; fill defaults; validate the core schema; derive
dependent defaults; run cross-field checks; validate each enabled driver's
section with that driver's ``config_schema``. Any failure raises a
:class:`~pvc_core.errors.ConfigError` whose message is one line.
"""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Mapping
from typing import Any

import yaml

from pvc_core.config.checks import cross_checks, derive_defaults
from pvc_core.config.defaults import fill_defaults
from pvc_core.config.drivers import DriverLookup, check_drivers
from pvc_core.config.messages import validate
from pvc_core.config.model import Config, build_config
from pvc_core.config.problems import KeyPath, Problem, format_path, raise_if_any, with_value
from pvc_core.config.schema import core_schema, format_checker
from pvc_core.drivers.factory import driver_class
from pvc_core.errors import ConfigError, InvalidInput
from pvc_core.keyspace import check_node_name

#: Environment variable naming the configuration file.
ENV_VAR = "PVC_CONFIG"
#: Where the configuration is when neither ``--config`` nor ``PVC_CONFIG`` says.
DEFAULT_PATH = "/etc/pvc/pvc.yaml"

_KINDS = {"list": "a list", "str": "a string", "int": "a number", "float": "a number",
          "bool": "a boolean"}


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(text.split())


def config_path(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> str:
    """The file to read: ``path``, else ``$PVC_CONFIG`` (if not empty), else the default."""
    if path is not None:
        return os.fspath(path)
    environ = os.environ if env is None else env
    return environ.get(ENV_VAR) or DEFAULT_PATH


def default_hostname() -> str:
    """This host's short name in lower case (the default ``node.name``)."""
    return socket.gethostname().split(".")[0].lower()


def _scalar_key(node: yaml.Node) -> object:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _check_node(node: yaml.Node, path: KeyPath, source: str,
                stack: set[int], done: set[int]) -> None:
    if id(node) in stack:
        raise ConfigError(f"{format_path(path) or 'top level'}: recursive YAML alias "
                          f"in {source}")
    if id(node) in done:
        return
    stack.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[object, int] = {}
        for key_node, value_node in node.value:
            key = _scalar_key(key_node)
            if key is not None and key != "<<":
                line = key_node.start_mark.line + 1
                if key in first:
                    where = format_path(path + (key,))
                    raise ConfigError(f"{where}: duplicate key at line {line} "
                                      f"(first at line {first[key]}) in {source}")
                first[key] = line
            _check_node(value_node, path + (key,), source, stack, done)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_node(item, path + (i,), source, stack, done)
    stack.discard(id(node))
    done.add(id(node))


def parse_yaml(text: str, source: str = "<config>") -> object:
    """Parse YAML text safely; raise a one-line ConfigError on any YAML problem.

    Duplicate mapping keys (which YAML would silently resolve to the last
    one) and recursive aliases are errors.
    """
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        if tree is not None:
            _check_node(tree, (), source, set(), set())
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "; ".join(one_line(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{source}: invalid YAML{where}: {what or 'syntax error'}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {one_line(str(exc))}") from None


def read_config_file(path: str) -> object:
    """Read and parse one configuration file (its top level is not yet checked)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found "
                          f"(give --config or set {ENV_VAR})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: "
                          f"{one_line(exc.strerror or str(exc))}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_yaml(text, path)


def parse_config(data: object, *, source: str = "<config>",
                 driver_lookup: DriverLookup = driver_class,
                 hostname: str | None = None) -> Config:
    """Validate already-parsed configuration data and build the :class:`Config`.

    ``data`` is not modified. ``driver_lookup(category, name)`` returns a
    driver class (default: :func:`pvc_core.drivers.factory.driver_class`)
    and is called only for enabled drivers. ``hostname`` is the default
    ``node.name`` (default: this host's short name). Raises ConfigError
    (:class:`~pvc_core.config.problems.ConfigInvalid` for validation
    problems, with every problem in ``.problems``).
    """
    if data is None:
        raise ConfigError(f"{source}: configuration is empty")
    if not isinstance(data, dict):
        kind = _KINDS.get(type(data).__name__, type(data).__name__)
        raise ConfigError(f"{source}: top level must be a mapping of sections, got {kind}")
    work: dict[str, Any] = copy.deepcopy(data)
    schema = core_schema()
    fill_defaults(schema, work)
    raise_if_any(validate(schema, work, (), format_checker()), source)
    host = hostname if hostname is not None else default_hostname()
    name_defaulted = "name" not in work["node"]
    if name_defaulted:
        try:
            check_node_name(host)
        except InvalidInput:
            raise_if_any([Problem(("node", "name"), with_value(
                "is not set and this host's short name is not a valid node name "
                "(a lower-case DNS label); set node.name", host))], source)
    derive_defaults(work, host)
    raise_if_any(cross_checks(work, name_defaulted) + check_drivers(work, driver_lookup), source)
    return build_config(work, source)


def load_config(path: str | os.PathLike[str] | None = None, *,
                env: Mapping[str, str] | None = None,
                driver_lookup: DriverLookup = driver_class,
                hostname: str | None = None) -> Config:
    """Find, read and validate the configuration file (see :func:`config_path`).

    ``env`` replaces ``os.environ`` for the ``PVC_CONFIG`` lookup. Raises
    ConfigError with a one-line message when anything is wrong.
    """
    source = config_path(path, env)
    return parse_config(read_config_file(source), source=source,
                        driver_lookup=driver_lookup, hostname=hostname)
