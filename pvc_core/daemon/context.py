"""What every part of one node daemon shares: identity, store, drivers, hooks, clock."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pvc_core.clock import Clock
from pvc_core.config import Config
from pvc_core.daemon.logs import logger
from pvc_core.drivers.hypervisor import HypervisorDriver
from pvc_core.hooks.manager import HookManager
from pvc_core.store import Store


class ChangeNotifier:
    """Per-key change counters that threads can wait on (fed by ZooKeeper watches)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._versions: dict[str, int] = {}

    def notify(self, key: str) -> None:
        with self._cond:
            self._versions[key] = self._versions.get(key, 0) + 1
            self._cond.notify_all()

    def version(self, key: str) -> int:
        with self._cond:
            return self._versions.get(key, 0)

    def wait(self, key: str, since: int, timeout: float) -> bool:
        """Wait until ``key`` changed after version ``since``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._versions.get(key, 0) != since, timeout)


@dataclass
class NodeContext:
    """The shared parts of one node daemon (no module globals: one per daemon)."""

    me: str
    config: Config
    store: Store
    hv: HypervisorDriver
    hooks: HookManager
    clock: Clock
    changes: ChangeNotifier = field(default_factory=ChangeNotifier)
    #: Values handed to drivers this daemon builds (DriverContext.extras).
    driver_extras: dict[str, Any] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    def log(self, subsystem: str) -> logging.Logger:
        return logger(subsystem, self.me)

    def decide(self, kind: str, outcome: str, *, node: str | None = None,
               vm: str | None = None, **inputs: object) -> None:
        """Append to the decision log (about ``node``, default this one; by this node).

        A store failure is logged, never raised.
        """
        try:
            self.store.decisions.append(kind, outcome, node=node or self.me, vm=vm,
                                        inputs=dict(inputs), by=self.me)
        except Exception as exc:  # noqa: BLE001 - the log is best effort
            self.log("decision").warning("could not record %s/%s: %s", kind, outcome, exc)
