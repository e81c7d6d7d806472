"""A flush or ready job's record as its runner writes it: state, plan, progress,
result, and a bounded log of its progress lines.

Each line is ``{"time": <unix time>, "message": "..."}``; the job's
``message`` is always its latest line. The log keeps its first
:data:`LOG_HEAD` lines (queued behind whom, the takeover wait, the plan) and
its last lines up to :data:`LOG_MAX` in all; in between, one line says how
many were dropped. It stays in the job after the job ended.
"""

from __future__ import annotations

import logging
from typing import Any

from pvc_core.clock import Clock
from pvc_core.errors import NotFound, PVCError
from pvc_core.store import Store
from pvc_core.store.jobs import FINISHED

#: Most lines a job's log holds.
LOG_MAX = 200
#: Lines at the start of the log that are never dropped.
LOG_HEAD = 5


def append_line(log: list[dict[str, Any]], line: dict[str, Any], limit: int = LOG_MAX,
                head: int = LOG_HEAD) -> list[dict[str, Any]]:
    """``log`` with ``line`` appended, at most ``limit`` lines (pure).

    Over the limit, the oldest lines after the first ``head`` are replaced by
    one ``{"dropped": n}`` line counting every line dropped so far.
    """
    assert limit >= head + 3, "room for the head, the dropped line and two more"
    out = [*log, line]
    if len(out) <= limit:
        return out
    start, rest = out[:head], out[head:]
    dropped = 0
    if rest and isinstance(rest[0], dict) and isinstance(rest[0].get("dropped"), int):
        dropped = int(rest[0]["dropped"])
        rest = rest[1:]
    keep = limit - head - 1
    dropped += len(rest) - keep
    rest = rest[len(rest) - keep:]
    marker = {"time": rest[0].get("time"), "message": f"... {dropped} lines dropped",
              "dropped": dropped}
    return [*start, marker, *rest]


class JobRecorder:
    """Writes one job's record (best effort: a store failure is logged, not raised)."""

    def __init__(self, store: Store, job_id: str | None, clock: Clock,
                 log: logging.Logger) -> None:
        self.store = store
        self.job_id = job_id
        self.clock = clock
        self.log = log

    def state(self) -> str | None:
        """The job's state now; None when there is no job record."""
        if not self.job_id:
            return None
        try:
            return str(self.store.jobs.get(self.job_id).value.get("state"))
        except NotFound:
            return None

    def finished(self) -> bool:
        """True once the job ended (succeeded, failed or cancelled)."""
        return self.state() in FINISHED

    def update(self, line: str | None = None, **changes: Any) -> None:
        """Apply ``changes`` and append ``line`` (also the job's ``message``), in one write.

        Stamps ``started`` when the state becomes ``running`` and ``finished``
        when it ends.
        """
        if not self.job_id:
            return
        now = self.clock.wall()
        if changes.get("state") == "running":
            changes["started"] = now
        elif changes.get("state") in FINISHED:
            changes["finished"] = now

        def change(job: dict[str, Any]) -> dict[str, Any]:
            new = {**job, **changes}
            if line is not None:
                old = job.get("log")
                new["log"] = append_line(list(old) if isinstance(old, list) else [],
                                         {"time": now, "message": line})
                new["message"] = line
            return new

        try:
            self.store.jobs.update(self.job_id, change)
        except NotFound:
            self.log.warning("job %s vanished", self.job_id)
        except PVCError as exc:
            self.log.warning("job %s not updated: %s", self.job_id, exc)
