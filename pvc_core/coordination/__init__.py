"""Coordination recipes over ZooKeeper (DESIGN.md section 4).

Small classes shaped like kazoo's recipes: ``(client, path, identifier, *,
clock)``, idempotent inner operations, every ZooKeeper call bounded by the
:class:`~pvc_core.store.zk.ZkClient` deadline, and a SUSPENDED/LOST listener
that only sets flags.

* :mod:`.lock`: exclusive :class:`Lock` and :class:`ReadWriteLock`;
* :mod:`.liveness`: :class:`Liveness` (a node's side) and :class:`LivenessObserver`;
* :mod:`.lease`: the VM :class:`RunLease` with its strictly increasing epoch.
"""

from pvc_core.coordination.lease import LeaseInfo, RunLease
from pvc_core.coordination.liveness import Liveness, LivenessObserver, NodeLiveness
from pvc_core.coordination.lock import BaseLock, Lock, ReadLock, ReadWriteLock, WriteLock

__all__ = [
    "BaseLock",
    "LeaseInfo",
    "Liveness",
    "LivenessObserver",
    "Lock",
    "NodeLiveness",
    "ReadLock",
    "ReadWriteLock",
    "RunLease",
    "WriteLock",
]
