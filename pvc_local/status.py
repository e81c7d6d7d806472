"""What ``pvc-local status`` reports about each node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pvc_core.errors import NotFound, PVCError
from pvc_core.states import DaemonState, VMState
from pvc_core.store import Store
from pvc_core.store.records import NodeRecord


@dataclass(frozen=True)
class NodeStatus:
    """One node as ``pvc-local status`` shows it.

    ``process``: ``alive``, ``stopped`` (SIGSTOP: a hung node), ``dead`` or
    ``down`` (stopped by ``down``). The three states come from ZooKeeper
    (None when it is unreachable or the node never registered). ``vms``
    counts the VMs placed on the node whose desired state is ``start``
    (None when ZooKeeper is unreachable).
    """

    name: str
    pid: int | None
    process: str
    daemon_state: str | None
    coordinator_state: str | None
    domain_state: str | None
    vms: int | None
    log: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StoreView:
    """What the store says about the nodes: records by name, VMs to run by node."""

    records: dict[str, NodeRecord]
    vms: dict[str, int]


def running_as(store: Store, name: str, pid: int) -> bool:
    """True when node ``name`` is in state ``run``, written by the daemon in process ``pid``.

    A daemon records its PID in the node's ``info`` when it registers; a
    record left by an earlier (killed) daemon of the same node says ``run``
    too, but with the old PID, so it does not count. A record without a PID
    is taken at its word.
    """
    try:
        record = store.nodes.get(name).value
    except NotFound:
        return False
    recorded = record.info.get("pid")
    return record.daemon_state == DaemonState.RUN and (recorded is None or recorded == pid)


def read_store(connect: Callable[..., Store], names: list[str],
               connect_timeout: float = 3.0) -> StoreView | None:
    """Read node records and VM counts; None when ZooKeeper does not answer."""
    try:
        store = connect(connect_timeout=connect_timeout)
    except PVCError:
        return None
    try:
        records = {}
        for name in names:
            try:
                records[name] = store.nodes.get(name).value
            except NotFound:
                continue
        counts: dict[str, int] = {}
        try:
            for vm in store.vms.all():
                if vm.state.state == VMState.START and vm.placement.node:
                    counts[vm.placement.node] = counts.get(vm.placement.node, 0) + 1
        except NotFound:
            pass  # no VM tree yet
        return StoreView(records, counts)
    except PVCError:
        return None
    finally:
        store.close()


def node_status(name: str, pid: int | None, process: str, log: str,
                view: StoreView | None) -> NodeStatus:
    """Combine a node's process state with what the store says."""
    rec = view.records.get(name) if view else None
    return NodeStatus(
        name, pid, process,
        rec.daemon_state.value if rec else None,
        rec.coordinator_state.value if rec else None,
        rec.domain_state.value if rec else None,
        view.vms.get(name, 0) if view else None, log)


@dataclass(frozen=True)
class ApiStatus:
    """One API server as ``pvc-local status`` shows it.

    ``process``: ``alive``, ``stopped``, ``dead`` or ``down`` (stopped by
    ``down``), as for the nodes.
    """

    node: str
    url: str
    pid: int | None
    process: str
    log: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
