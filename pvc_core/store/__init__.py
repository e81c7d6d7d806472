"""The store: repositories over one bounded ZooKeeper client.

Domain code uses a :class:`Store` and its repositories; it never calls kazoo.
"""

from __future__ import annotations

from pvc_core.clock import Clock, SystemClock
from pvc_core.keyspace import Keyspace
from pvc_core.store.cluster import ClusterRepository
from pvc_core.store.decisions import DecisionLog
from pvc_core.store.faults import FaultRepository
from pvc_core.store.jobs import JobRepository
from pvc_core.store.migrations import SchemaManager
from pvc_core.store.nodes import NodeRepository
from pvc_core.store.vms import VmRepository
from pvc_core.store.zk import ZkClient


class Store:
    """All repositories of one cluster, sharing one ZooKeeper session."""

    def __init__(self, zk: ZkClient, keyspace: Keyspace | None = None,
                 clock: Clock | None = None) -> None:
        self.zk = zk
        self.ks = keyspace or Keyspace()
        self.clock: Clock = clock or SystemClock()
        self.schema = SchemaManager(zk, self.ks)
        self.cluster = ClusterRepository(zk, self.ks, self.clock)
        self.nodes = NodeRepository(zk, self.ks, self.clock)
        self.vms = VmRepository(zk, self.ks, self.clock)
        self.jobs = JobRepository(zk, self.ks, self.clock)
        self.decisions = DecisionLog(zk, self.ks, self.clock)
        self.faults = FaultRepository(zk, self.ks, self.clock)

    @classmethod
    def connect(cls, hosts: str, *, root: str = "/pvc", session_timeout: float = 10.0,
                op_timeout: float = 5.0, clock: Clock | None = None) -> Store:
        """Open a session to ``hosts`` and return a Store on ``root``."""
        zk = ZkClient(hosts, session_timeout=session_timeout, op_timeout=op_timeout, clock=clock)
        zk.start()
        return cls(zk, Keyspace(root), clock)

    def close(self) -> None:
        self.zk.stop()


__all__ = ["Store", "ZkClient"]
