"""Host and domain statistics from libvirt, in PVC's units (MiB, bytes, ns).

Host memory: ``getMemoryStats`` (free = free + buffers + cached, i.e. what
the host could give to guests) where the hypervisor supports it; otherwise
(the test driver) the memory of the active domains counts as used.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import libvirt

from pvc_core.drivers.hypervisor import DomainInfo, DomainState, DomainStats, HostStats
from pvc_plugins.hypervisor_libvirt.connection import error_code

#: libvirt domain state -> PVC state (anything else is OTHER).
STATES: Mapping[int, DomainState] = MappingProxyType({
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
})
_DOMAIN_STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                 | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                 | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)


def kib_to_mib(kib: int) -> int:
    """KiB rounded up to whole MiB."""
    return -(-int(kib) // 1024)


def host_stats(conn: Any, load1: float) -> HostStats:
    """Memory and CPUs of the host behind ``conn``."""
    info = conn.getInfo()
    total, cpus = int(info[1]), int(info[2])
    try:
        mem = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
        total = int(mem["total"]) // 1024
        free = (int(mem.get("free", 0)) + int(mem.get("buffers", 0))
                + int(mem.get("cached", 0))) // 1024
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        active = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        free = total - sum(kib_to_mib(d.info()[1]) for d in active)
    free = max(0, min(free, total))
    return HostStats(memory_total_mib=total, memory_used_mib=total - free,
                     memory_free_mib=free, cpu_count=cpus, load1=load1)


def _sum(stats: Mapping[str, Any], prefix: str, field: str) -> int:
    return sum(int(stats.get(f"{prefix}.{i}.{field}", 0))
               for i in range(int(stats.get(f"{prefix}.count", 0))))


def domain_stats(dom: Any, info: DomainInfo) -> DomainStats:
    """Counters of a running domain; other states get memory and vCPUs only."""
    if info.state is not DomainState.RUNNING:
        return DomainStats(uuid=info.uuid, memory_mib=info.memory_mib, vcpus=info.vcpus)
    ((_dom, stats),) = dom.connect().domainListGetStats([dom], _DOMAIN_STATS, 0)
    balloon_kib = int(stats.get("balloon.current", 0))
    cpu_ns = stats["cpu.time"] if "cpu.time" in stats else dom.info()[4]
    return DomainStats(
        uuid=info.uuid, cpu_time_ns=int(cpu_ns),
        memory_mib=kib_to_mib(balloon_kib) if balloon_kib else info.memory_mib,
        vcpus=int(stats.get("vcpu.current", info.vcpus)),
        disk_read_bytes=_sum(stats, "block", "rd.bytes"),
        disk_write_bytes=_sum(stats, "block", "wr.bytes"),
        net_rx_bytes=_sum(stats, "net", "rx.bytes"),
        net_tx_bytes=_sum(stats, "net", "tx.bytes"))
