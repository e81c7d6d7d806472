"""A snapshot of the cluster as placement sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pvc_core.errors import NotFound
from pvc_core.placement import NodeView, VmView
from pvc_core.states import VM_RUNNING_STATES, VMState
from pvc_core.store import Store
from pvc_core.store.codec import decode
from pvc_core.store.records import NodeRecord, VmRecord


@dataclass(frozen=True)
class ClusterView:
    """Nodes (with their keepalive stats) and VMs, read at one moment."""

    nodes: dict[str, NodeRecord]
    stats: dict[str, dict[str, Any]]
    vms: list[VmRecord]

    def node_views(self) -> list[NodeView]:
        """NodeViews whose allocations come from the VMs assigned in the store.

        Allocated memory counts VMs meant to run on the node, provisioned
        memory every VM assigned to it; so two placements made one after the
        other see each other even before any keepalive reports them.
        """
        alloc: dict[str, list[int]] = {n: [0, 0, 0, 0] for n in self.nodes}
        groups: dict[str, set[str]] = {n: set() for n in self.nodes}
        for vm in self.vms:
            node = vm.placement.node
            if node not in alloc:
                continue
            alloc[node][1] += vm.memory_mib
            if vm.state.state in VM_RUNNING_STATES:
                alloc[node][0] += vm.memory_mib
                alloc[node][2] += vm.vcpus
                alloc[node][3] += 1
                if vm.meta.anti_affinity:
                    groups[node].add(vm.meta.anti_affinity)
        out = []
        for name, rec in sorted(self.nodes.items()):
            st = self.stats.get(name, {})
            total = int(st.get("memory_total_mib") or rec.info.get("memory_total_mib", 0))
            a = alloc[name]
            out.append(NodeView(
                name=name, daemon_state=rec.daemon_state.value,
                domain_state=rec.domain_state.value, memory_total_mib=total,
                memory_allocated_mib=a[0], memory_provisioned_mib=a[1],
                load=float(st.get("load", 0.0)), vcpus_allocated=a[2], vms_running=a[3],
                anti_affinity_groups=frozenset(groups[name])))
        return out

    def live_migration(self, node: str) -> bool:
        """Whether a node's hypervisor can live-migrate (from its registration)."""
        rec = self.nodes.get(node)
        return bool(rec and rec.info.get("live_migration"))


def vm_view(vm: VmRecord) -> VmView:
    return VmView(name=vm.name, memory_mib=vm.memory_mib, vcpus=vm.vcpus,
                  node=vm.placement.node, node_limit=vm.meta.node_limit,
                  selector=vm.meta.selector, anti_affinity=vm.meta.anti_affinity)


def read_view(store: Store) -> ClusterView:
    """Read nodes, their keepalive stats and all VMs (pipelined reads)."""
    nodes, stats = _nodes_and_stats(store)
    return ClusterView(nodes, stats, store.vms.all())


def reported_node_views(store: Store) -> list[NodeView]:
    """NodeViews from the node records and their last keepalives only.

    Allocated memory, vCPUs and running VMs are what each node reported
    running; no VM is read, so this costs two round trips however many VMs
    the cluster has (for checks run every interval, such as the N-1 reserve).
    """
    nodes, stats = _nodes_and_stats(store)
    out = []
    for name, rec in sorted(nodes.items()):
        st = stats[name]
        out.append(NodeView(
            name=name, daemon_state=rec.daemon_state.value,
            domain_state=rec.domain_state.value,
            memory_total_mib=int(st.get("memory_total_mib")
                                 or rec.info.get("memory_total_mib", 0)),
            memory_allocated_mib=int(st.get("memory_allocated_mib") or 0),
            memory_provisioned_mib=int(st.get("memory_provisioned_mib") or 0),
            load=float(st.get("load", 0.0)), vcpus_allocated=int(st.get("vcpus_allocated") or 0),
            vms_running=int(st.get("vms_running") or 0)))
    return out


def _nodes_and_stats(store: Store) -> tuple[dict[str, NodeRecord], dict[str, dict[str, Any]]]:
    nodes = {n.name: n for n in store.nodes.all()}
    names = sorted(nodes)
    results = store.zk.get_many([store.ks.node_keepalive(n) for n in names])
    stats: dict[str, dict[str, Any]] = {}
    for name, result in zip(names, results, strict=True):
        doc = decode(result[0], name) if result else None
        stats[name] = dict((doc or {}).get("stats") or {})
    return nodes, stats


def reported_running(store: Store, node: str) -> set[str]:
    """UUIDs of the VMs ``node``'s daemon reported running in its last keepalive."""
    try:
        raw, _ = store.zk.get(store.ks.node_keepalive(node))
    except NotFound:
        return set()
    doc = decode(raw, node) or {}
    return set((doc.get("stats") or {}).get("vm_stats") or {})


def running_as_placed(store: Store, uuids: set[str], nodes: set[str]) -> set[str]:
    """Those of ``uuids`` that should run (state start), are placed on one of
    ``nodes``, and whose node reports them running."""
    running = {n: reported_running(store, n) for n in nodes}
    return {vm.uuid for vm in store.vms.all()
            if vm.uuid in uuids and vm.state.state is VMState.START
            and vm.placement.node in nodes and vm.uuid in running[vm.placement.node]}
