"""Helpers for the flush and ready tests (not fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pvc_core.coordination.lock import ReadWriteLock
from pvc_core.states import CoordinatorState
from pvc_core.store import Store
from pvc_core.store.codec import decode

FINISHED = ("succeeded", "failed", "cancelled")


def job(store: Store, job_id: str) -> dict[str, Any]:
    return store.jobs.get(job_id).value


def finished(store: Store, job_id: str) -> bool:
    return job(store, job_id)["state"] in FINISHED


def messages(doc: dict[str, Any]) -> list[str]:
    """A job's log lines, oldest first."""
    return [line["message"] for line in doc["log"]]


def logged(store: Store, job_id: str, prefix: str) -> list[str]:
    """The lines of the job's log that start with ``prefix`` (for wait_for)."""
    return [m for m in messages(job(store, job_id)) if m.startswith(prefix)]


def keepalive_seq(store: Store, node: str) -> int:
    """How many keepalives ``node`` has written: a clock that needs no sleep."""
    raw, _ = store.zk.get(store.ks.node_keepalive(node))
    return int((decode(raw, node) or {}).get("seq") or 0)


@contextmanager
def takeover_held(store: Store) -> Iterator[str]:
    """Hold a primary takeover "in progress" while the block runs.

    A coordinator's takeover is visible to the cluster only as its node
    record's ``coordinator_state`` (``takeover`` until the floating services
    are up), which is what a flush waits on. A secondary's record is set to
    ``takeover`` (its daemon writes the record only when its own state
    changes) and set back to ``secondary`` afterwards. Yields its name.
    """
    name = next(n.name for n in sorted(store.nodes.all(), key=lambda n: n.name)
                if n.coordinator_state is CoordinatorState.SECONDARY)
    store.nodes.set_states(name, coordinator_state=CoordinatorState.TAKEOVER)
    try:
        yield name
    finally:
        store.nodes.set_states(name, coordinator_state=CoordinatorState.SECONDARY)


@contextmanager
def transition_lock_held(store: Store) -> Iterator[str]:
    """Hold the write side of the primary-transition lock while the block runs.

    A coordinator holds it through relinquish and takeover; a flush takes
    the read side before it starts. Yields what the flush's message names.
    """
    writer = ReadWriteLock(store.zk, store.ks.transition_lock(), "test").write_lock()
    assert writer.acquire(timeout=5)
    try:
        yield "the primary-transition lock is held"
    finally:
        writer.release()
