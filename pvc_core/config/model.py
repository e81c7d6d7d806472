"""The typed, frozen configuration tree handed to daemons.

Built only from a validated dictionary (see :func:`build_config`), so every
field is known to have its documented type. Mappings are read-only views;
:meth:`Config.driver_options` and :attr:`Config.raw` return fresh copies.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pvc_core.errors import ConfigError


def _ro(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(value)))


@dataclass(frozen=True)
class NodeConfig:
    """This daemon's identity."""

    name: str
    state_dir: str


@dataclass(frozen=True)
class NetworkConfig:
    """A cluster network: a host device, its CIDR and an optional floating IP."""

    name: str
    device: str
    cidr: str
    floating_ip: str | None


@dataclass(frozen=True)
class ClusterConfig:
    """Cluster membership."""

    name: str
    nodes: tuple[str, ...]
    coordinators: tuple[str, ...]
    networks: Mapping[str, NetworkConfig]


@dataclass(frozen=True)
class ZookeeperConfig:
    """Where the cluster state lives; ``hosts`` is comma-joined for kazoo."""

    hosts: str
    host_list: tuple[str, ...]
    root: str
    session_timeout: float
    op_timeout: float


@dataclass(frozen=True)
class TimersConfig:
    """Intervals and timeouts of the node daemon, in seconds."""

    keepalive_interval: float
    vm_shutdown_timeout: float
    console_log_lines: int
    #: A crashed VM is restarted at most this many times in a row, then set to ``fail``.
    restart_max_tries: int = 3
    #: Seconds before the first restart of a crashed VM; doubled for each further try.
    restart_backoff: float = 2.0
    #: A VM that ran this long without crashing has its restart count reset.
    restart_reset_after: float = 300.0
    #: Size of the bounded pool that reconciles VMs in parallel.
    reconcile_workers: int = 8


@dataclass(frozen=True)
class FenceEntry:
    """One link of a node's fence chain: a fence driver and its options."""

    driver: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class FencingConfig:
    """Fencing policy (DESIGN.md section 5) and the per-node fence chains."""

    enabled: bool
    fence_intervals: int
    saving_throws: int
    storm_guard_share: float
    self_fence_after: float
    self_fence_action: str
    self_fence_command: tuple[str, ...]
    successful_fence: str
    failed_fence: str
    power_off_timeout: float
    chain: Mapping[str, tuple[FenceEntry, ...]]


@dataclass(frozen=True)
class MigrationConfig:
    """Migration and drain defaults."""

    default_selector: str
    parallel_limit: int
    vm_timeout: float
    max_downtime_ms: int
    method: str


@dataclass(frozen=True)
class LoggingConfig:
    """Log output."""

    level: str
    file: str | None
    color: str
    decision_log_max: int


@dataclass(frozen=True)
class TlsConfig:
    """API TLS certificate and key files."""

    cert_file: str
    key_file: str


@dataclass(frozen=True)
class ApiKey:
    """A hashed API key and its role (``read-only`` or ``admin``)."""

    name: str
    hash: str
    role: str


@dataclass(frozen=True)
class ApiConfig:
    """The REST API (pvcapid)."""

    listen: str
    port: int
    tls: TlsConfig | None
    keys: tuple[ApiKey, ...]
    metrics_auth: bool


@dataclass(frozen=True)
class SubsystemConfig:
    """A subsystem with zero or one driver (hypervisor, storage, dns).

    ``options`` is the enabled driver's validated section (empty when the
    subsystem is disabled: a disabled driver's section is never validated).
    """

    enabled: bool
    driver: str | None
    options: Mapping[str, Any]


@dataclass(frozen=True)
class NetworkingConfig:
    """Networking: zero or more drivers, each with its validated section."""

    enabled: bool
    drivers: tuple[str, ...]
    options: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Config:
    """The whole validated configuration of one daemon."""

    node: NodeConfig
    cluster: ClusterConfig
    zookeeper: ZookeeperConfig
    timers: TimersConfig
    fencing: FencingConfig
    migration: MigrationConfig
    logging: LoggingConfig
    api: ApiConfig
    hypervisor: SubsystemConfig
    networking: NetworkingConfig
    storage: SubsystemConfig
    dns: SubsystemConfig
    source: str = "<config>"
    _raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def raw(self) -> dict[str, Any]:
        """A copy of the validated dictionary, defaults included."""
        return copy.deepcopy(dict(self._raw))

    def enabled_drivers(self) -> tuple[tuple[str, str], ...]:
        """``(category, name)`` of every enabled driver, fence drivers last, no repeats."""
        found: list[tuple[str, str]] = []
        for category, sub in (("hypervisor", self.hypervisor), ("storage", self.storage),
                              ("dns", self.dns)):
            if sub.enabled and sub.driver is not None:
                found.append((category, sub.driver))
        if self.networking.enabled:
            found += [("network", name) for name in self.networking.drivers]
        if self.fencing.enabled:
            for node in sorted(self.fencing.chain):
                found += [("fence", e.driver) for e in self.fencing.chain[node]]
        return tuple(dict.fromkeys(found))

    def driver_enabled(self, category: str, name: str) -> bool:
        """Whether driver ``name`` of ``category`` is enabled on this node."""
        if category == "fence":
            return any(e.driver == name for chain in self.fencing.chain.values()
                       for e in chain)
        try:
            self.driver_options(category, name)
        except ConfigError:
            return False
        return True

    def driver_options(self, category: str, name: str) -> dict[str, Any]:
        """A copy of the validated section of the enabled driver ``name``.

        Fence drivers have options per chain entry: use ``fencing.chain``.
        Raises ConfigError for a driver that is not enabled.
        """
        subs = {"hypervisor": self.hypervisor, "storage": self.storage, "dns": self.dns}
        if category in subs:
            sub = subs[category]
            if sub.enabled and sub.driver == name:
                return copy.deepcopy(dict(sub.options))
        elif category == "network":
            if self.networking.enabled and name in self.networking.options:
                return copy.deepcopy(dict(self.networking.options[name]))
        elif category == "fence":
            raise ConfigError(f"fence driver {name!r} has options per chain entry; "
                              "read them from Config.fencing.chain")
        raise ConfigError(f"{category} driver {name!r} is not enabled in {self.source}")


def _subsystem(section: Mapping[str, Any]) -> SubsystemConfig:
    driver = section["driver"]
    options = (section.get(driver) or {}) if section["enabled"] and driver else {}
    return SubsystemConfig(section["enabled"], driver, _ro(options))


def _chain(chain: Mapping[str, Any]) -> Mapping[str, tuple[FenceEntry, ...]]:
    return MappingProxyType({
        node: tuple(FenceEntry(e["driver"], _ro({k: v for k, v in e.items() if k != "driver"}))
                    for e in entries)
        for node, entries in chain.items()})


def build_config(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build the typed tree from a validated dictionary with all defaults filled."""
    c, z, t, f = data["cluster"], data["zookeeper"], data["timers"], data["fencing"]
    m, lg, a, n = data["migration"], data["logging"], data["api"], data["networking"]
    tls = a["tls"]
    return Config(
        node=NodeConfig(data["node"]["name"], data["node"]["state_dir"]),
        cluster=ClusterConfig(
            c["name"], tuple(c["nodes"]), tuple(c["coordinators"]),
            MappingProxyType({k: NetworkConfig(k, v["device"], v["cidr"], v["floating_ip"])
                              for k, v in c["networks"].items()})),
        zookeeper=ZookeeperConfig(",".join(z["hosts"]), tuple(z["hosts"]), z["root"],
                                  float(z["session_timeout"]), float(z["op_timeout"])),
        timers=TimersConfig(float(t["keepalive_interval"]), float(t["vm_shutdown_timeout"]),
                            int(t["console_log_lines"]), int(t["restart_max_tries"]),
                            float(t["restart_backoff"]), float(t["restart_reset_after"]),
                            int(t["reconcile_workers"])),
        fencing=FencingConfig(
            f["enabled"], int(f["fence_intervals"]), int(f["saving_throws"]),
            float(f["storm_guard_share"]), float(f["self_fence_after"]),
            f["self_fence_action"], tuple(f["self_fence_command"]), f["successful_fence"],
            f["failed_fence"], float(f["power_off_timeout"]), _chain(f["chain"])),
        migration=MigrationConfig(m["default_selector"], int(m["parallel_limit"]),
                                  float(m["vm_timeout"]), int(m["max_downtime_ms"]),
                                  m["method"]),
        logging=LoggingConfig(lg["level"], lg["file"], lg["color"], int(lg["decision_log_max"])),
        api=ApiConfig(a["listen"], int(a["port"]),
                      TlsConfig(tls["cert_file"], tls["key_file"]) if tls else None,
                      tuple(ApiKey(k["name"], k["hash"], k["role"]) for k in a["keys"]),
                      a["metrics_auth"]),
        hypervisor=_subsystem(data["hypervisor"]),
        networking=NetworkingConfig(
            n["enabled"], tuple(n["drivers"]),
            MappingProxyType({d: _ro(n.get(d) or {}) for d in n["drivers"]}
                             if n["enabled"] else {})),
        storage=_subsystem(data["storage"]),
        dns=_subsystem(data["dns"]),
        source=source,
        _raw=copy.deepcopy(dict(data)),
    )
