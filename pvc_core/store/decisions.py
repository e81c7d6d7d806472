"""The decision log: a bounded sequence of structured records.

Every decision the cluster takes on its own (a node suspected, a saving
throw, a fence and its result, a VM placed or left stopped, a primary
change) is appended here so that an operator can always ask "why".
Records are sequential znodes; the oldest are trimmed beyond ``max_records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pvc_core.errors import InvalidInput, NotFound
from pvc_core.store.base import Repository
from pvc_core.store.codec import decode, encode

DEFAULT_MAX_RECORDS = 1000


@dataclass(frozen=True)
class Decision:
    """One record: what was decided, about what, from which inputs, with what outcome."""

    kind: str
    outcome: str
    node: str | None = None
    vm: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    by: str = ""
    time: float = 0.0
    seq: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "outcome": self.outcome, "node": self.node, "vm": self.vm,
                "inputs": self.inputs, "by": self.by, "time": self.time, "seq": self.seq}


class DecisionLog(Repository):
    """Append and read decision records (``{root}/decisions/d{seq}``)."""

    max_records: int = DEFAULT_MAX_RECORDS

    def append(self, kind: str, outcome: str, *, node: str | None = None,
               vm: str | None = None, inputs: dict[str, Any] | None = None,
               by: str = "") -> Decision:
        if not kind or not outcome:
            raise InvalidInput("kind and outcome must be non-empty")
        rec = Decision(kind, outcome, node, vm, dict(inputs or {}), by, self.clock.wall())
        path = self.zk.create(self.ks.decision_prefix(), encode(rec.to_dict()), sequence=True)
        seq = int(path.rsplit("/d", 1)[1])
        self._trim()
        return Decision(rec.kind, rec.outcome, rec.node, rec.vm, rec.inputs, rec.by, rec.time,
                        seq)

    def _trim(self) -> None:
        names = sorted(self.zk.children(self.ks.decisions()))
        for name in names[: max(0, len(names) - self.max_records)]:
            try:
                self.zk.delete(self.ks.decision(name))
            except NotFound:  # another writer trimmed it first
                continue

    def query(self, *, node: str | None = None, vm: str | None = None,
             since: float | None = None, limit: int | None = None) -> list[Decision]:
        """Records oldest first, filtered by node, VM and wall time; newest ``limit``."""
        names = sorted(self.zk.children(self.ks.decisions()))
        paths = [self.ks.decision(n) for n in names]
        out = []
        for name, result in zip(names, self.zk.get_many(paths), strict=True):
            if result is None:
                continue
            d = decode(result[0], name) or {}
            rec = Decision(d.get("kind", ""), d.get("outcome", ""), d.get("node"), d.get("vm"),
                           d.get("inputs") or {}, d.get("by", ""), float(d.get("time", 0)),
                           int(name[1:]))
            if node is not None and rec.node != node:
                continue
            if vm is not None and rec.vm != vm:
                continue
            if since is not None and rec.time < since:
                continue
            out.append(rec)
        return out[-limit:] if limit else out
