"""Job records: long operations (flush, ready, migrations) with plan and progress."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from pvc_core.errors import InvalidInput, NotFound
from pvc_core.store.base import Repository
from pvc_core.store.codec import Versioned, encode, read_json, update_json
from pvc_core.store.zk import Op

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


class JobRepository(Repository):
    """``{root}/jobs/{id}``: one JSON document per job, changed by compare-and-set."""

    def build(self, kind: str, params: dict[str, Any], *, by: str = "") -> dict[str, Any]:
        """A new job document (not yet stored); see :meth:`create_op`."""
        if not isinstance(kind, str) or not kind:
            raise InvalidInput("must be a non-empty string", "kind")
        return {"id": uuidlib.uuid4().hex, "kind": kind, "params": params, "state": "queued",
                "by": by, "created": self.clock.wall(), "updated": self.clock.wall(),
                "plan": None, "progress": {"done": 0, "total": 0}, "result": None, "log": []}

    def create_op(self, job: dict[str, Any]) -> Op:
        """The transaction operation that stores ``job`` (to write it atomically with more)."""
        return Op.create(self.ks.job(job["id"]), encode(job))

    def create(self, kind: str, params: dict[str, Any], *, by: str = "") -> dict[str, Any]:
        job = self.build(kind, params, by=by)
        self.zk.transaction([self.create_op(job)])
        return job

    def get(self, job_id: str) -> Versioned[dict[str, Any]]:
        try:
            return read_json(self.zk, self.ks.job(job_id))
        except NotFound:
            raise NotFound(f"job {job_id!r} does not exist") from None

    def all(self) -> list[dict[str, Any]]:
        out = []
        for job_id in self.zk.children(self.ks.jobs()):
            try:
                out.append(self.get(job_id).value)
            except NotFound:
                continue
        return sorted(out, key=lambda j: (j.get("created", 0), j["id"]))

    def update(self, job_id: str,
               change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Apply ``change`` with compare-and-set; a bad ``state`` is InvalidInput."""
        wall = self.clock.wall()

        def apply(job: dict[str, Any]) -> dict[str, Any]:
            new = change(dict(job))
            if new.get("state") not in JOB_STATES:
                raise InvalidInput(f"must be one of: {', '.join(JOB_STATES)}", "state")
            return {**new, "updated": wall}

        try:
            return dict(update_json(self.zk, self.ks.job(job_id), apply).value)
        except NotFound:
            raise NotFound(f"job {job_id!r} does not exist") from None

    def delete(self, job_id: str) -> None:
        self.zk.delete(self.ks.job(job_id))
