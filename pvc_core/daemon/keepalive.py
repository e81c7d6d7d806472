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
- whatever plugins add through ``pvc_collect_keepalive_stats``;
- the health checks plugins give through ``pvc_collect_health_checks``,
  stored as ``health``: a list of ``{plugin, name, ok, message}`` (see
  :func:`health_checks`). A plugin that fails, overruns or answers
  nonsense is one failed check named after it.

The two hooks share what is left of the beat's budget: the statistics get
half of it, the health checks the rest (so a hung statistics plugin does
not turn every health check into an overrun). Then it bumps the liveness
sequence with the stats. The keepalive is the last thing to stop when the
daemon shuts down.
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
from pvc_core.hooks.results import HookResults
from pvc_core.store.records import VmRecord

#: A nudged beat waits this long so that many VMs starting at once cost one beat.
NUDGE_COALESCE = 0.2
#: The shortest deadline a collector or hook call is given, seconds.
MIN_DEADLINE = 0.05
#: At most this many checks are kept per plugin, and this many characters per message.
MAX_CHECKS_PER_PLUGIN = 50
MAX_MESSAGE = 300


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
        self._failing: set[tuple[str, str]] = set()

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
            "pvc_collect_keepalive_stats", max(MIN_DEADLINE, deadline.remaining() / 2),
            node=self.ctx.me)
        stats["plugins"] = {k: v for k, v in plugins.by_plugin().items() if v is not None}
        stats["errors"] += plugins.problems()
        health_deadline = max(MIN_DEADLINE, deadline.remaining())
        checks = self.ctx.hooks.call_with_deadline(
            "pvc_collect_health_checks", health_deadline, node=self.ctx.me)
        stats["health"] = health_checks(checks, health_deadline)
        self._log_health(stats["health"])
        return stats

    def _log_health(self, checks: list[dict[str, Any]]) -> None:
        """Log a check when it starts failing and when it passes again."""
        failing = {(c["plugin"], c["name"]): c["message"] for c in checks if not c["ok"]}
        for plugin, name in sorted(set(failing) - self._failing):
            self.log.warning("health check %s/%s failing: %s", plugin, name,
                             failing[(plugin, name)])
        for plugin, name in sorted(self._failing - set(failing)):
            self.log.info("health check %s/%s no longer failing", plugin, name)
        self._failing = set(failing)

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


def _check(plugin: str, name: str, ok: bool, message: str) -> dict[str, Any]:
    return {"plugin": plugin, "name": name, "ok": ok, "message": message[:MAX_MESSAGE]}


def _invalid(item: object) -> str | None:
    """Why ``item`` is not a health check (None when it is one)."""
    if not isinstance(item, dict):
        return f"is {type(item).__name__}, not a mapping"
    name, ok, message = item.get("name"), item.get("ok"), item.get("message")
    if not isinstance(name, str) or not name:
        return "has no name (a non-empty string)"
    if not isinstance(ok, bool):
        return f"{name!r}: ok must be true or false"
    if not isinstance(message, str):
        return f"{name!r}: message must be a string"
    return None


def health_checks(results: HookResults, deadline_s: float) -> list[dict[str, Any]]:
    """The checks of one ``pvc_collect_health_checks`` call, as the keepalive stores them.

    Each is ``{"plugin", "name", "ok", "message"}``, in call order. A plugin
    that raised, overran ``deadline_s``, was still busy with its previous
    call, or returned something that is not a list of checks becomes one
    failed check named after the plugin; an invalid item of an otherwise
    valid list becomes such a failed check too, the valid items are kept.
    A plugin returning None has no checks. At most
    :data:`MAX_CHECKS_PER_PLUGIN` checks are kept per plugin and messages
    are cut at :data:`MAX_MESSAGE` characters.
    """
    out: list[dict[str, Any]] = []
    for value in results.values:
        plugin, checks = value.plugin, value.value
        if checks is None:
            continue
        if not isinstance(checks, list | tuple):
            out.append(_check(plugin, plugin, False, f"plugin {plugin} returned "
                              f"{type(checks).__name__}, not a list of health checks"))
            continue
        kept: list[dict[str, Any]] = []
        for index, item in enumerate(checks):
            reason = _invalid(item)
            if reason is not None:
                kept.append(_check(plugin, plugin, False,
                                   f"plugin {plugin}: health check #{index} {reason}"))
            else:
                kept.append(_check(plugin, item["name"], item["ok"], item["message"]))
        if len(kept) > MAX_CHECKS_PER_PLUGIN:
            kept = kept[:MAX_CHECKS_PER_PLUGIN - 1] + [_check(
                plugin, plugin, False, f"plugin {plugin} returned {len(kept)} health checks; "
                f"only the first {MAX_CHECKS_PER_PLUGIN - 1} are kept")]
        out += kept
    for failure in results.failed:
        out.append(_check(failure.plugin, failure.plugin, False,
                          f"plugin {failure.plugin} raised {type(failure.error).__name__}: "
                          f"{failure.error}"))
    for plugin in results.overran:
        out.append(_check(plugin, plugin, False, f"plugin {plugin} did not answer within "
                          f"{deadline_s:.2g}s"))
    for plugin in results.busy:
        out.append(_check(plugin, plugin, False, f"plugin {plugin} is still running an "
                          "earlier health check"))
    return out
