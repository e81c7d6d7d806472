"""Node operations: move the primary coordinator role, and show who holds it.

A planned move is a request znode (``cluster/primary_request``) that the
coordinators act on (docs/coordinator.md): the primary relinquishes, the
requested node takes over, and that node clears the request. These
functions validate and write the request; they return at once. Wait for
the result by reading :func:`primary_status` (or the node records).
"""

from __future__ import annotations

from typing import Any

from pvc_core.coordination.election import read_request, write_request
from pvc_core.errors import Conflict, NotFound
from pvc_core.keyspace import check_node_name
from pvc_core.states import CoordinatorState
from pvc_core.store import Store
from pvc_core.store.records import NodeRecord

C = CoordinatorState


def _alive(store: Store, node: str) -> bool:
    return store.zk.exists(store.ks.node_alive(node)) is not None


def _record(store: Store, node: str) -> NodeRecord:
    check_node_name(node)
    return store.nodes.get(node).value  # NotFound for an unknown node


def primary_status(store: Store) -> dict[str, Any]:
    """Who is primary, every coordinator's state, and the pending request.

    ``{"primary": "hv1" | None, "coordinators": {"hv1": "primary", ...},
    "request": {...} | None}`` (nodes in state ``client`` are left out).
    """
    primary = store.cluster.get_primary().value
    states = {r.name: r.coordinator_state.value for r in store.nodes.all()
              if r.coordinator_state is not C.CLIENT}
    request = read_request(store.zk, store.ks)
    return {"primary": primary, "coordinators": states,
            "request": request.to_dict() if request is not None else None}


def request_primary(store: Store, node: str, *, by: str = "") -> dict[str, Any]:
    """Ask for ``node`` to become the primary coordinator (a planned move).

    Returns ``{"node", "changed", "request", "message"}``; ``changed`` is
    False when ``node`` is already primary (nothing is written).

    :raises NotFound: no such node.
    :raises Conflict: ``node`` is not a coordinator, is not running, or is
        itself handing the role over right now.
    """
    record = _record(store, node)
    state = record.coordinator_state
    if state is C.CLIENT:
        raise Conflict(f"node {node} is not a coordinator (cluster.coordinators)")
    if not _alive(store, node):
        raise Conflict(f"node {node} is not running: it cannot become primary")
    if state is C.RELINQUISH:
        raise Conflict(f"node {node} is giving up primary right now; ask again when it is"
                       " secondary")
    current = store.cluster.get_primary().value
    if state in (C.PRIMARY, C.TAKEOVER) and current == node:
        return {"node": node, "changed": False, "request": None,
                "message": f"{node} is already primary"}
    request = write_request(store.zk, store.ks, target=node, source=current, by=by)
    return {"node": node, "changed": True, "request": request.to_dict(),
            "message": f"{node} will take over from {current or 'nobody'}"}


def request_secondary(store: Store, node: str, *, by: str = "") -> dict[str, Any]:
    """Ask the primary ``node`` to step down to any other running coordinator.

    Returns ``{"node", "changed", "request", "message"}``; ``changed`` is
    False when ``node`` is already secondary and not primary.

    :raises NotFound: no such node.
    :raises Conflict: ``node`` is not a coordinator, or no other coordinator
        is running to take over.
    """
    record = _record(store, node)
    if record.coordinator_state is C.CLIENT:
        raise Conflict(f"node {node} is not a coordinator (cluster.coordinators)")
    current = store.cluster.get_primary().value
    if current != node and record.coordinator_state is C.SECONDARY:
        return {"node": node, "changed": False, "request": None,
                "message": f"{node} is already secondary"}
    others = [r.name for r in store.nodes.all()
              if r.name != node and r.coordinator_state is C.SECONDARY and _alive(store, r.name)]
    if not others:
        raise Conflict(f"no other coordinator is running to take over from {node}")
    request = write_request(store.zk, store.ks, target=None, source=node, by=by)
    return {"node": node, "changed": True, "request": request.to_dict(),
            "message": f"{node} will hand over to one of {', '.join(sorted(others))}"}


__all__ = ["NotFound", "primary_status", "request_primary", "request_secondary"]
