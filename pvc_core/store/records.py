"""Typed records stored as JSON in ZooKeeper.

Each record converts to and from plain dicts; ``from_dict`` tolerates missing
keys (defaults) so older writers stay readable, and rejects wrong types with
:class:`~pvc_core.errors.InvalidInput` naming the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pvc_core.errors import InvalidInput
from pvc_core.keyspace import check_node_name
from pvc_core.states import CoordinatorState, DaemonState, DomainState, VMState, parse

SELECTORS = ("mem", "memprov", "load", "vcpus", "vms")
MIGRATION_METHODS = ("auto", "live", "shutdown")


def _str_list(value: object, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"must be a list of strings, got {value!r}", field_name)
    return tuple(value)


@dataclass(frozen=True)
class VmMeta:
    """Placement and behaviour settings of one VM (settable at define time and later).

    ``node_limit`` empty means "any node"; ``selector`` None means the
    cluster default; ``migration_method`` is auto (live, falling back to
    shutdown), live or shutdown; ``max_downtime_ms`` None means the cluster
    default.
    """

    node_limit: tuple[str, ...] = ()
    selector: str | None = None
    autostart: bool = False
    migration_method: str = "auto"
    max_downtime_ms: int | None = None
    tags: tuple[str, ...] = ()
    anti_affinity: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, prefix: str = "meta") -> VmMeta:
        data = dict(data or {})
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise InvalidInput("unknown key", f"{prefix}.{sorted(unknown)[0]}")
        limit = _str_list(data.get("node_limit"), f"{prefix}.node_limit")
        for i, node in enumerate(limit):
            check_node_name(node, f"{prefix}.node_limit[{i}]")
        selector = data.get("selector")
        if selector is not None and selector not in SELECTORS:
            raise InvalidInput(f"must be one of: {', '.join(SELECTORS)}, got {selector!r}",
                               f"{prefix}.selector")
        autostart = data.get("autostart", False)
        if not isinstance(autostart, bool):
            raise InvalidInput(f"must be true or false, got {autostart!r}", f"{prefix}.autostart")
        method = data.get("migration_method", "auto")
        if method not in MIGRATION_METHODS:
            raise InvalidInput(
                f"must be one of: {', '.join(MIGRATION_METHODS)}, got {method!r}",
                f"{prefix}.migration_method")
        downtime = data.get("max_downtime_ms")
        if downtime is not None and (isinstance(downtime, bool) or not isinstance(downtime, int)
                                     or downtime <= 0):
            raise InvalidInput(f"must be an integer > 0, got {downtime!r}",
                               f"{prefix}.max_downtime_ms")
        anti = data.get("anti_affinity")
        if anti is not None and not isinstance(anti, str):
            raise InvalidInput(f"must be a string, got {anti!r}", f"{prefix}.anti_affinity")
        return cls(limit, selector, autostart, method, downtime,
                   _str_list(data.get("tags"), f"{prefix}.tags"), anti)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["node_limit"] = list(self.node_limit)
        d["tags"] = list(self.tags)
        return d


@dataclass(frozen=True)
class VmStateRecord:
    """Desired state of a VM, why it was set, and by whom."""

    state: VMState
    reason: str = ""
    by: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VmStateRecord:
        return cls(VMState(parse(VMState, data.get("state"), "state")),
                   str(data.get("reason", "")), str(data.get("by", "")))

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "reason": self.reason, "by": self.by}


@dataclass(frozen=True)
class Placement:
    """Where a VM is assigned and why.

    ``node``: the node it runs on (or will start on). ``last_node``: where a
    ``migrate`` took it from (``unmigrate`` returns it there; ``move`` clears
    it). ``wait_for``: the VM was stopped because no node could take it and
    starts again when that node is ready.
    """

    node: str | None = None
    last_node: str | None = None
    wait_for: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Placement:
        return cls(data.get("node"), data.get("last_node"), data.get("wait_for"))

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "last_node": self.last_node, "wait_for": self.wait_for}


@dataclass(frozen=True)
class VmRecord:
    """Everything the store knows about one VM, read in one go."""

    uuid: str
    name: str
    meta: VmMeta
    state: VmStateRecord
    placement: Placement
    versions: dict[str, int] = field(default_factory=dict)
    #: Resources read from the domain XML when it was defined or modified.
    memory_mib: int = 0
    vcpus: int = 0


@dataclass(frozen=True)
class NodeRecord:
    """A node's states and static facts, as its daemon last wrote them."""

    name: str
    daemon_state: DaemonState = DaemonState.INIT
    coordinator_state: CoordinatorState = CoordinatorState.CLIENT
    domain_state: DomainState = DomainState.READY
    info: dict[str, Any] = field(default_factory=dict)
    #: The flush or ready job that drives the current domain state, if any.
    job: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeRecord:
        return cls(
            name=str(data["name"]),
            daemon_state=DaemonState(data.get("daemon_state", "init")),
            coordinator_state=CoordinatorState(data.get("coordinator_state", "client")),
            domain_state=DomainState(data.get("domain_state", "ready")),
            info=dict(data.get("info") or {}),
            job=data.get("job"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "daemon_state": self.daemon_state.value,
                "coordinator_state": self.coordinator_state.value,
                "domain_state": self.domain_state.value, "info": self.info, "job": self.job}
