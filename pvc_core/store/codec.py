"""Encoding of znode values and the compare-and-set update loop."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pvc_core.errors import PVCError, VersionConflict
from pvc_core.store.zk import ZkClient

T = TypeVar("T")

#: How often a read-modify-write is retried after losing a compare-and-set race.
CAS_RETRIES = 20


class CorruptValue(PVCError):
    """A znode holds data that is not what the keyspace says it should be."""

    status = 500


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A value together with the znode version it was read at (for CAS writes)."""

    value: T
    version: int


def encode(value: Any) -> bytes:
    """JSON, compact and key-sorted so equal values give equal bytes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def decode(data: bytes, path: str) -> Any:
    """Parse a JSON znode value; an empty znode decodes to None."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise CorruptValue(f"{path}: not valid JSON ({exc})") from exc


def read_json(zk: ZkClient, path: str) -> Versioned[Any]:
    data, stat = zk.get(path)
    return Versioned(decode(data, path), stat.version)


def update_json(zk: ZkClient, path: str, change: Callable[[Any], Any],
                retries: int = CAS_RETRIES) -> Versioned[Any]:
    """Read-modify-write ``path`` with compare-and-set, retrying lost races.

    ``change`` receives the current value and returns the new one; it may
    raise a :class:`PVCError` to abort (nothing is written). It must be a
    pure function of its argument because it may run several times.
    """
    pause = threading.Event()  # never set: a bounded, jittered backoff between attempts
    for attempt in range(retries):
        current = read_json(zk, path)
        new = change(current.value)
        try:
            stat = zk.set(path, encode(new), current.version)
        except VersionConflict:
            pause.wait(random.uniform(0, min(0.1, 0.002 * 2**attempt)))  # noqa: S311
            continue
        return Versioned(new, stat.version)
    raise VersionConflict(f"{path}: still changing after {retries} attempts")
