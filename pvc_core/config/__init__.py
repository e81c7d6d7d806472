"""PVC configuration: one YAML file (``pvc.yaml``) for every daemon.

Use :func:`load_config` (a file: ``--config``, ``PVC_CONFIG`` or
``/etc/pvc/pvc.yaml``) or :func:`parse_config` (already-parsed data). Both
return a frozen, typed :class:`Config` or raise
:class:`~pvc_core.errors.ConfigError` with a one-line message naming the key
path and the reason. See ``docs/configuration.md``.
"""

from __future__ import annotations

from pvc_core.config.drivers import DriverLookup
from pvc_core.config.loader import (
    DEFAULT_PATH,
    ENV_VAR,
    config_path,
    load_config,
    parse_config,
    parse_yaml,
    read_config_file,
)
from pvc_core.config.model import (
    ApiConfig,
    ApiKey,
    ClusterConfig,
    Config,
    FenceEntry,
    FencingConfig,
    LoggingConfig,
    MigrationConfig,
    NetworkConfig,
    NetworkingConfig,
    NodeConfig,
    SubsystemConfig,
    TimersConfig,
    TlsConfig,
    ZookeeperConfig,
)
from pvc_core.config.problems import ConfigInvalid, Problem
from pvc_core.config.schema import core_schema

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "ApiConfig",
    "ApiKey",
    "ClusterConfig",
    "Config",
    "ConfigInvalid",
    "DriverLookup",
    "FenceEntry",
    "FencingConfig",
    "LoggingConfig",
    "MigrationConfig",
    "NetworkConfig",
    "NetworkingConfig",
    "NodeConfig",
    "Problem",
    "SubsystemConfig",
    "TimersConfig",
    "TlsConfig",
    "ZookeeperConfig",
    "config_path",
    "core_schema",
    "load_config",
    "parse_config",
    "parse_yaml",
    "read_config_file",
]
