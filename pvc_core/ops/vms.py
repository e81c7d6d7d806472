"""VM operations: define, change state, migrate, unmigrate, move, modify, remove."""

from __future__ import annotations

from typing import Any

from pvc_core.domainxml import parse_domain_xml
from pvc_core.errors import Conflict, InvalidInput, NotFound
from pvc_core.keyspace import check_vm_name
from pvc_core.ops.selector import default_selector
from pvc_core.ops.view import ClusterView, read_view, vm_view
from pvc_core.placement import PlacementResult, VmView, place
from pvc_core.states import VM_MIGRATING_STATES, VMState, check_transition
from pvc_core.store import Store
from pvc_core.store.records import Placement, VmMeta, VmRecord, VmStateRecord

#: States in which a VM is not running and may simply be reassigned.
_AT_REST = frozenset({VMState.STOP, VMState.DISABLE, VMState.FAIL})


def _check_limit(meta: VmMeta, nodes: list[str]) -> None:
    for i, node in enumerate(meta.node_limit):
        if node not in nodes:
            raise InvalidInput(f"unknown node {node!r}", f"meta.node_limit[{i}]")


def _place(store: Store, view: ClusterView, vm: VmRecord | Any,
           exclude: tuple[str, ...] = ()) -> PlacementResult:
    return place(vm_view(vm) if isinstance(vm, VmRecord) else vm, view.node_views(),
                 default_selector=default_selector(store), exclude=exclude)


def define_vm(store: Store, xml: str, *, meta: VmMeta | dict[str, Any] | None = None,
              node: str | None = None, start: bool = False, by: str = "") -> VmRecord:
    """Define a VM from domain XML; place it (or use ``node``); optionally start it.

    Raises InvalidInput for bad XML, names or metadata (unknown nodes in the
    limit included), NotFound for an unknown target node, AlreadyExists when
    the name or UUID is taken. Nothing is written on error.
    """
    parsed = parse_domain_xml(xml)
    check_vm_name(parsed.name)
    vm_meta = meta if isinstance(meta, VmMeta) else VmMeta.from_dict(meta)
    view = read_view(store)
    _check_limit(vm_meta, list(view.nodes))
    if node is not None and node not in view.nodes:
        raise NotFound(f"node {node!r} does not exist")
    if node is None:
        result = place(VmView(parsed.name, parsed.memory_mib, parsed.vcpus, None,
                              vm_meta.node_limit, vm_meta.selector, vm_meta.anti_affinity),
                       view.node_views(), default_selector=default_selector(store))
        node = result.node
        if node is None and start:
            raise Conflict(f"no node can run VM {parsed.name}: {result.explain()}")
    return store.vms.define(parsed.uuid, parsed.name, parsed.xml, meta=vm_meta, node=node,
                            state=VMState.START if start else VMState.STOP, by=by,
                            memory_mib=parsed.memory_mib, vcpus=parsed.vcpus)


def _parse_state(state: VMState | str) -> VMState:
    """The VMState named by ``state``; InvalidInput (nothing read or written) if none."""
    if isinstance(state, VMState):
        return state
    try:
        return VMState(state)
    except ValueError:
        settable = ", ".join(s.value for s in VMState if s not in VM_MIGRATING_STATES)
        raise InvalidInput(f"unknown VM state {state!r}; must be one of: {settable}",
                           "state") from None


def set_vm_state(store: Store, vm: str, state: VMState | str, *, reason: str = "",
                 by: str = "", force: bool = False) -> VmRecord:
    """Request a desired state (start, stop, shutdown, restart, disable).

    Checks the state table (409 when the change makes no sense now), unless
    ``force``: the operator's override for a VM stuck in a transitional
    state (a hung migration, a shutdown that never ends). A
    started while unassigned, or assigned to a node that cannot take it, is
    placed first. Migration states go through :func:`migrate_vm`. An unknown
    state string raises InvalidInput before anything is read or written.
    """
    new = _parse_state(state)
    if new in VM_MIGRATING_STATES:
        raise InvalidInput("use migrate, unmigrate or move to move a VM", "state")
    record = store.vms.get(vm)
    if not force:
        check_transition(record.state.state, new, f"VM {record.name}")
    placement = record.placement
    if new is VMState.START and record.state.state is not VMState.START:
        view = read_view(store)
        node = placement.node
        usable = next((n for n in view.node_views() if n.name == node
                       and n.daemon_state == "run" and n.domain_state == "ready"), None)
        if usable is None:
            result = _place(store, view, record)
            if result.node is None:
                raise Conflict(f"no node can run VM {record.name}: {result.explain()}")
            placement = Placement(result.node, placement.last_node, None)
    rec = VmStateRecord(new, reason or f"set by {by or 'operator'}", by)
    store.vms.set_placement_and_state(record, placement, rec)
    return store.vms.get(record.uuid)


def migrate_vm(store: Store, vm: str, target: str | None = None, *, live_only: bool = False,
               permanent: bool = False, by: str = "") -> VmRecord:
    """Move a VM to ``target`` (or the best node). Never to the node it is on.

    ``permanent`` (move) forgets the previous node; otherwise (migrate) it is
    remembered for :func:`unmigrate_vm`. A running VM is migrated by the
    daemons (state migrate, or migrate-live with ``live_only``); a stopped one
    is only reassigned.
    """
    record = store.vms.get(vm)
    view = read_view(store)
    current = record.placement.node
    if target is not None:
        if target not in view.nodes:
            raise NotFound(f"node {target!r} does not exist")
        if target == current:
            raise Conflict(f"VM {record.name} is already on {target}")
    result = _place(store, view, record, ())
    if target is not None:
        chosen = place(vm_view(record), [n for n in view.node_views() if n.name == target],
                       default_selector=default_selector(store))
        if chosen.node is None:
            raise Conflict(f"{target} cannot take VM {record.name}: "
                           f"{chosen.rejected.get(target, chosen.reason)}")
        result = chosen
    if result.node is None:
        raise Conflict(f"no node can take VM {record.name}: {result.explain()}")
    placement = Placement(result.node, None if permanent else current, None)
    return request_move(store, record, placement,
                         VMState.MIGRATE_LIVE if live_only else VMState.MIGRATE, by,
                         f"{'move' if permanent else 'migrate'} to {result.node}: "
                         f"{result.reason}")


def unmigrate_vm(store: Store, vm: str, *, by: str = "") -> VmRecord:
    """Return a migrated VM to the node it came from (and forget that node)."""
    record = store.vms.get(vm)
    last = record.placement.last_node
    if not last:
        raise Conflict(f"VM {record.name} has no previous node to return to")
    if last == record.placement.node:
        raise Conflict(f"VM {record.name} is already on {last}")
    return request_move(store, record, Placement(last, None, None), VMState.UNMIGRATE, by,
                         f"unmigrate to {last}")


def request_move(store: Store, record: VmRecord, placement: Placement, state: VMState,
                 by: str, reason: str) -> VmRecord:
    """Write a move decided elsewhere (a flush plan): placement, and for a running VM
    the migration state, compare-and-set against ``record``'s versions."""
    current = record.state.state
    if current in _AT_REST:
        store.vms.set_placement_and_state(record, placement)
    elif current is VMState.START:
        check_transition(current, state, f"VM {record.name}")
        store.vms.set_placement_and_state(record, placement, VmStateRecord(state, reason, by))
    else:
        raise Conflict(f"VM {record.name} is {current.value}: wait until it is started "
                       "or stopped before moving it")
    return store.vms.get(record.uuid)


def modify_vm(store: Store, vm: str, xml: str) -> VmRecord:
    """Replace the domain XML (same UUID and name); applies at the next start."""
    record = store.vms.get(vm)
    parsed = parse_domain_xml(xml)
    if parsed.uuid != record.uuid:
        raise InvalidInput(f"UUID {parsed.uuid} is not this VM's ({record.uuid})", "xml")
    if parsed.name != record.name:
        raise InvalidInput(f"renaming ({record.name} -> {parsed.name}) is not supported",
                           "xml")
    store.vms.set_xml(record.uuid, parsed.xml, memory_mib=parsed.memory_mib,
                      vcpus=parsed.vcpus)
    return store.vms.get(record.uuid)


def set_vm_meta(store: Store, vm: str, **changes: Any) -> VmMeta:
    """Change VM metadata; node limits must name existing nodes."""
    if "node_limit" in changes:
        _check_limit(VmMeta.from_dict({"node_limit": changes["node_limit"]}),
                     store.nodes.names())
    return store.vms.update_meta(vm, **changes)


def remove_vm(store: Store, vm: str) -> None:
    """Undefine a VM that is not running (stop, disable or fail)."""
    record = store.vms.get(vm)
    if record.state.state not in _AT_REST:
        raise Conflict(f"VM {record.name} is {record.state.state.value}: stop it first")
    store.vms.remove(record.uuid)
