"""The keepalive: every ``keepalive_interval``, this node's resources and a heartbeat.

Each beat collects, every collector under its own deadline (a hung driver
or plugin never delays the beat; it is skipped until it returns):

- host memory (total/used/free), CPUs and load from the hypervisor driver;
- the domains defined here: running VMs, **allocated** memory and vCPUs
  (running VMs only);
- **provisioned** memory: every VM assigned to this node whatever its
  state, from the sizes read from its domain XML when it was defined (kept
  in the store, so a stopped VM counts too);
- per-VM runtime stats of *running* domains only (paused or stopped ones
  are skipped, never waited for);
- whatever plugins add through ``pvc_collect_keepalive_stats``.

Then it bumps the liveness sequence with the stats. The keepalive is the
last thing to stop when the daemon shuts down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pvc_core.clock import Deadline
from pvc_core.coordination.liveness import Liveness
from pvc_core.daemon.bounded import BoundedCaller
from pvc_core.daemon.context import NodeContext
from pvc_core.drivers.hypervisor import DomainInfo, DomainState
from pvc_core.errors import PVCError
from pvc_core.store.records import VmRecord

#: A nudged beat waits this long so that many VMs starting at once cost one beat.
NUDGE_COALESCE = 0.2


class Keepalive:
    """Collects stats and beats on its own thread until :meth:`stop`."""

    def __init__(self, ctx: NodeContext, liveness: Liveness,
                 assigned: Callable[[], list[VmRecord]]) -> None:
        self.ctx = ctx
        self.liveness = liveness
        self.assigned = assigned
        self.log = ctx.log("keepalive")
        self.bounded = BoundedCaller(self.log)
        self.interval = ctx.config.timers.keepalive_interval
        self._stop = threading.Event()
        self._held = threading.Event()
        self._nudged = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"keepalive-{ctx.me}",
                                        daemon=True)
        self.last_stats: dict[str, Any] = {}
        self.beats = 0

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._nudged.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def hold(self) -> None:
        """Stop beating while the daemon otherwise runs: a hung node, for simulators."""
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def nudge(self) -> None:
        """Beat soon (e.g. a VM just started here) instead of at the next interval."""
        self._nudged.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._nudged.wait(self.interval)
            if self._stop.is_set():
                return
            if self._nudged.is_set():  # coalesce a burst of nudges into one beat
                self._stop.wait(NUDGE_COALESCE)
                self._nudged.clear()
            if not self._held.is_set():
                self.beat()

    def beat(self) -> None:
        """Collect (bounded) and write one keepalive; errors are logged, never raised."""
        stats = self.collect()
        try:
            self.liveness.beat(stats)
            self.beats += 1
            self.last_stats = stats
        except PVCError as exc:
            self.log.warning("keepalive not written: %s", exc)

    def collect(self) -> dict[str, Any]:
        budget = max(0.2, self.interval * 0.8)
        deadline = Deadline(budget, self.ctx.clock)
        stats: dict[str, Any] = {"errors": []}

        def bounded(name: str, fn: Callable[[], Any]) -> Any:
            try:
                return self.bounded.call(name, fn, max(0.05, deadline.remaining()))
            except Exception as exc:  # noqa: BLE001 - one collector must not stop the beat
                stats["errors"].append(f"{name}: {exc}")
                return None

        host = bounded("host", self.ctx.hv.host_stats)
        if host is not None:
            stats.update(memory_total_mib=host.memory_total_mib,
                         memory_used_mib=host.memory_used_mib,
                         memory_free_mib=host.memory_free_mib, cpus=host.cpu_count,
                         load=host.load1)
        domains: list[DomainInfo] | None = bounded("domains", self.ctx.hv.list_domains)
        if domains is not None:
            running = [d for d in domains if d.state is DomainState.RUNNING]
            active = [d for d in domains if d.state.active]
            stats.update(vms_running=len(running),
                         memory_allocated_mib=sum(d.memory_mib for d in active),
                         vcpus_allocated=sum(d.vcpus for d in active))
            stats["vm_stats"] = bounded("vm-stats", lambda: self._vm_stats(running, deadline))
        assigned = self.assigned()
        stats.update(memory_provisioned_mib=sum(v.memory_mib for v in assigned),
                     vms_assigned=len(assigned))
        plugins = self.ctx.hooks.call_with_deadline(
            "pvc_collect_keepalive_stats", max(0.05, deadline.remaining()), node=self.ctx.me)
        stats["plugins"] = {k: v for k, v in plugins.by_plugin().items() if v is not None}
        stats["errors"] += plugins.problems()
        return stats

    def _vm_stats(self, running: list[DomainInfo], deadline: Deadline) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for dom in running:
            if deadline.expired():
                break
            try:
                s = self.ctx.hv.domain_stats(dom.uuid)
            except PVCError:
                continue  # stopped meanwhile
            out[dom.uuid] = {"cpu_time_ns": s.cpu_time_ns, "memory_mib": s.memory_mib,
                             "vcpus": s.vcpus}
        return out
