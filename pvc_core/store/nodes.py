"""Node records: ``{root}/nodes/{name}``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pvc_core.errors import AlreadyExists, NotFound
from pvc_core.keyspace import check_node_name
from pvc_core.states import DaemonState
from pvc_core.store.base import Repository
from pvc_core.store.codec import Versioned, encode, read_json, update_json
from pvc_core.store.records import NodeRecord
from pvc_core.store.zk import Op


class NodeRepository(Repository):
    """Register nodes and change their states with compare-and-set."""

    def names(self) -> list[str]:
        return sorted(self.zk.children(self.ks.nodes()))

    def get(self, name: str) -> Versioned[NodeRecord]:
        try:
            raw = read_json(self.zk, self.ks.node(name))
        except NotFound:
            raise NotFound(f"node {name!r} does not exist") from None
        record = NodeRecord.from_dict(raw.value) if raw.value else NodeRecord(name=name)
        return Versioned(record, raw.version)

    def all(self) -> list[NodeRecord]:
        out = []
        for name in self.names():
            try:
                out.append(self.get(name).value)
            except NotFound:  # removed between listing and reading
                continue
        return out

    def register(self, name: str, info: dict[str, Any]) -> NodeRecord:
        """Create the node record, or refresh its static ``info`` if it exists.

        The registering daemon is starting: its daemon state becomes ``init``
        in the same write as its new ``info`` (so nobody sees the new pid with
        the previous run's ``run``). Its other states are kept (a restarting
        daemon does not reset its domain state: a flushed node stays flushed).
        """
        check_node_name(name)
        record = NodeRecord(name=name, info=dict(info))
        try:
            self.zk.create(self.ks.node(name), encode(record.to_dict()), makepath=True)
            return record
        except AlreadyExists:
            return self.update(name, lambda r: dataclasses.replace(
                r, info=dict(info), daemon_state=DaemonState.INIT))

    def update(self, name: str, change: Callable[[NodeRecord], NodeRecord]) -> NodeRecord:
        """Apply ``change`` to the record with compare-and-set (retried on races)."""

        def apply(raw: Any) -> dict[str, Any]:
            # An empty znode is a node whose liveness znode was created first.
            current = NodeRecord.from_dict(raw) if raw else NodeRecord(name=name)
            return change(current).to_dict()

        try:
            result = update_json(self.zk, self.ks.node(name), apply)
        except NotFound:
            raise NotFound(f"node {name!r} does not exist") from None
        return NodeRecord.from_dict(result.value)

    def write_op(self, record: NodeRecord, version: int) -> Op:
        """A compare-and-set transaction operation writing ``record``."""
        return Op.set(self.ks.node(record.name), encode(record.to_dict()), version)

    def set_states(self, name: str, **states: Any) -> NodeRecord:
        """Set any of ``daemon_state``, ``coordinator_state``, ``domain_state``."""
        allowed = {"daemon_state", "coordinator_state", "domain_state"}
        bad = set(states) - allowed
        if bad:
            raise ValueError(f"not a node state: {sorted(bad)}")

        def change(r: NodeRecord) -> NodeRecord:
            d = r.to_dict()
            d.update({k: getattr(v, "value", v) for k, v in states.items()})
            return NodeRecord.from_dict(d)

        return self.update(name, change)
