"""Common base of the repositories."""

from __future__ import annotations

from pvc_core.clock import Clock, SystemClock
from pvc_core.keyspace import Keyspace
from pvc_core.store.zk import ZkClient


class Repository:
    """A repository reads and writes one kind of record through the keyspace."""

    def __init__(self, zk: ZkClient, keyspace: Keyspace, clock: Clock | None = None) -> None:
        self.zk = zk
        self.ks = keyspace
        self.clock: Clock = clock or SystemClock()
