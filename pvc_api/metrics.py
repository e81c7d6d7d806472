"""Prometheus metrics, read from the watch-fed cache at each scrape.

A collector on a registry of its own (never prometheus_client's global one):
``pvc_cluster_*``, ``pvc_node_*``, ``pvc_vm_*``, ``pvc_faults``, ``pvc_jobs``,
``pvc_fences_total``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pvc_api.context import ApiContext
from pvc_api.controllers.cluster import status
from pvc_core.errors import PVCError
from pvc_core.states import CoordinatorState, DaemonState, DomainState, VMState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NODE_STATS = {
    "memory_total_mib": "Memory of the node (MiB)",
    "memory_used_mib": "Memory in use on the node (MiB)",
    "memory_free_mib": "Free memory on the node (MiB)",
    "memory_allocated_mib": "Memory of running VMs (MiB)",
    "memory_provisioned_mib": "Memory of every VM assigned to the node (MiB)",
    "vcpus_allocated": "vCPUs of running VMs",
    "load": "1-minute load average",
    "vms_running": "VMs running on the node",
}
_FENCE_KINDS = {"fenced": "success", "fence-failed": "failed"}


def _state_gauge(name: str, doc: str, labels: list[str], states: list[str],
                 rows: list[tuple[list[str], str]]) -> GaugeMetricFamily:
    """One-hot state gauge: value 1 for the current state, 0 for the others."""
    family = GaugeMetricFamily(name, doc, labels=[*labels, "state"])
    for values, current in rows:
        for state in states:
            family.add_metric([*values, state], 1.0 if state == current else 0.0)
    return family


class PvcCollector(Collector):
    """Builds every family from one status snapshot."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        ctx = self.ctx
        st = status(ctx)
        up = GaugeMetricFamily("pvc_cluster_healthy", "1 when the cluster health is ok")
        up.add_metric([], 1.0 if st["health"] == "ok" else 0.0)
        yield up
        yield _gauge("pvc_cluster_maintenance", "1 in maintenance mode (fencing off)",
                     float(st["maintenance"]))
        primary = GaugeMetricFamily("pvc_cluster_primary", "The primary coordinator",
                                    labels=["node"])
        if st["primary"]:
            primary.add_metric([st["primary"]], 1.0)
        yield primary
        nodes = ctx.cache.nodes()
        yield _state_gauge("pvc_node_daemon_state", "Node daemon state", ["node"],
                           [s.value for s in DaemonState],
                           [([n.record.name], n.record.daemon_state.value) for n in nodes])
        yield _state_gauge("pvc_node_coordinator_state", "Node coordinator state", ["node"],
                           [s.value for s in CoordinatorState],
                           [([n.record.name], n.record.coordinator_state.value)
                            for n in nodes])
        yield _state_gauge("pvc_node_domain_state", "Node domain (drain) state", ["node"],
                           [s.value for s in DomainState],
                           [([n.record.name], n.record.domain_state.value) for n in nodes])
        alive = GaugeMetricFamily("pvc_node_alive", "1 while the node's session exists",
                                  labels=["node"])
        for n in nodes:
            alive.add_metric([n.record.name], 1.0 if n.alive else 0.0)
        yield alive
        for key, doc in _NODE_STATS.items():
            family = GaugeMetricFamily(f"pvc_node_{key}", doc, labels=["node"])
            for n in nodes:
                value = n.stats.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric([n.record.name], float(value))
            yield family
        vms = ctx.cache.vms()
        by_state = GaugeMetricFamily("pvc_vms", "VMs by desired state", labels=["state"])
        counts = Counter(v.state.state.value for v in vms)
        for state in VMState:
            by_state.add_metric([state.value], float(counts.get(state.value, 0)))
        yield by_state
        mem = GaugeMetricFamily("pvc_vm_memory_mib", "VM memory (MiB)", labels=["vm", "node"])
        cpus = GaugeMetricFamily("pvc_vm_vcpus", "VM vCPUs", labels=["vm", "node"])
        vm_running = GaugeMetricFamily("pvc_vm_running",
                                       "1 when the VM's node reports it running",
                                       labels=["vm", "node", "state"])
        running = {n.record.name: set(n.stats.get("vm_stats") or {}) for n in nodes}
        for v in vms:
            node = v.placement.node or ""
            mem.add_metric([v.name, node], float(v.memory_mib))
            cpus.add_metric([v.name, node], float(v.vcpus))
            vm_running.add_metric([v.name, node, v.state.state.value],
                                  1.0 if v.uuid in running.get(node, ()) else 0.0)
        yield from (mem, cpus, vm_running)
        faults = GaugeMetricFamily("pvc_faults", "Faults by severity and acknowledgement",
                                   labels=["severity", "acknowledged"])
        fcounts = Counter((f.get("severity", ""), str(bool(f.get("acknowledged"))).lower())
                          for f in ctx.cache.faults())
        for (severity, acked), count in sorted(fcounts.items()):
            faults.add_metric([severity, acked], float(count))
        yield faults
        jobs = GaugeMetricFamily("pvc_jobs", "Jobs by kind and state", labels=["kind", "state"])
        jcounts = Counter((str(j.get("kind")), str(j.get("state"))) for j in ctx.cache.jobs())
        for (kind, jstate), count in sorted(jcounts.items()):
            jobs.add_metric([kind, jstate], float(count))
        yield jobs
        yield self._fences()

    def _fences(self) -> Metric:
        family = CounterMetricFamily("pvc_fences", "Fences in the decision log, by result",
                                     labels=["result"])
        counts: Counter[str] = Counter()
        try:
            for d in self.ctx.store.decisions.query():
                if d.kind in _FENCE_KINDS:
                    counts[_FENCE_KINDS[d.kind]] += 1
        except PVCError:
            pass  # the scrape still answers from the cache
        for result in _FENCE_KINDS.values():
            family.add_metric([result], float(counts.get(result, 0)))
        return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


def registry(ctx: ApiContext) -> CollectorRegistry:
    """A registry holding only PVC's collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PvcCollector(ctx))
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)


__all__: list[Any] = ["CONTENT_TYPE", "registry", "render"]
