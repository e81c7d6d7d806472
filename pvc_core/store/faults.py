"""Faults: conditions an operator must see (N-1 reserve lost, storm guard, failed fence).

A fault is keyed by a stable id derived from its kind and subject, so raising
the same fault twice updates it (count, last seen) instead of duplicating it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pvc_core.errors import AlreadyExists, InvalidInput, NotFound
from pvc_core.store.base import Repository
from pvc_core.store.codec import encode, read_json, update_json

SEVERITIES = ("info", "warning", "critical")


def fault_id(kind: str, subject: str) -> str:
    return f"{kind}-{hashlib.sha256(subject.encode()).hexdigest()[:12]}"


class FaultRepository(Repository):
    """``{root}/faults/{id}``."""

    def raise_fault(self, kind: str, subject: str, message: str,
                    severity: str = "warning") -> dict[str, Any]:
        if severity not in SEVERITIES:
            raise InvalidInput(f"must be one of: {', '.join(SEVERITIES)}", "severity")
        fid = fault_id(kind, subject)
        now = self.clock.wall()
        fresh = {"id": fid, "kind": kind, "subject": subject, "message": message,
                 "severity": severity, "first_seen": now, "last_seen": now, "count": 1,
                 "acknowledged": False}
        try:
            self.zk.create(self.ks.fault(fid), encode(fresh))
            return fresh
        except AlreadyExists:
            return dict(update_json(self.zk, self.ks.fault(fid), lambda f: {
                **f, "message": message, "severity": severity, "last_seen": now,
                "count": int(f.get("count", 0)) + 1}).value)

    def get(self, fid: str) -> dict[str, Any]:
        try:
            return dict(read_json(self.zk, self.ks.fault(fid)).value)
        except NotFound:
            raise NotFound(f"fault {fid!r} does not exist") from None

    def all(self) -> list[dict[str, Any]]:
        out = []
        for fid in self.zk.children(self.ks.faults()):
            try:
                out.append(self.get(fid))
            except NotFound:
                continue
        return sorted(out, key=lambda f: (f["first_seen"], f["id"]))

    def acknowledge(self, fid: str) -> dict[str, Any]:
        try:
            return dict(update_json(self.zk, self.ks.fault(fid),
                                    lambda f: {**f, "acknowledged": True}).value)
        except NotFound:
            raise NotFound(f"fault {fid!r} does not exist") from None

    def delete(self, fid: str) -> None:
        try:
            self.zk.delete(self.ks.fault(fid))
        except NotFound:
            raise NotFound(f"fault {fid!r} does not exist") from None
