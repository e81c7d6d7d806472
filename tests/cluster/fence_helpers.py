"""Helpers for the fencing tests: 3-node in-process clusters with fake BMCs.

Three real daemons (election, fence monitor, reconcilers) on a real
ZooKeeper; node1 is made primary by a planned move, so its FenceMonitor
judges the others. "Power off" through a fake BMC cuts a node's power
(NodeDaemon.power_loss: its VMs gone, its session closed without a word).
"""

from __future__ import annotations

from pvc_core.daemon import NodeDaemon
from pvc_core.drivers.hypervisor import DomainState
from pvc_core.ops.nodes import request_primary
from pvc_core.ops.vms import define_vm
from pvc_core.store import Store
from pvc_core.store.decisions import Decision
from pvc_plugins.fake.fence import BMC_REGISTRY_KEY
from tests.cluster.conftest import DaemonFactory, domain_xml, wait_for

#: Generous bound for any single wait (seconds); the tests take far less.
T = 30
#: Short keepalives keep the fence tests fast.
FAST = {"keepalive_interval": 0.3}


def fencing(**overrides: object) -> dict[str, object]:
    """A fencing section: fake fence driver for every node, quick to judge."""
    chain = {f"node{i}": [{"driver": "fake"}] for i in (1, 2, 3)}
    base: dict[str, object] = {"enabled": True, "fence_intervals": 2, "saving_throws": 2,
                               "storm_guard_share": 0.5, "self_fence_after": 60,
                               "power_off_timeout": 5, "chain": chain}
    base.update(overrides)
    return base


def failing_chain(node: str = "node2") -> dict[str, list[dict[str, object]]]:
    """Fake fence chains where only ``node``'s fence fails."""
    return {f"node{i}": [{"driver": "fake", "fail": f"node{i}" == node}] for i in (1, 2, 3)}


def cluster(daemons: DaemonFactory, **fence: object) -> tuple[list[NodeDaemon], Store]:
    """Three daemons with ``fencing(**fence)``; node1 primary."""
    nodes, store = daemons(3, fencing=fencing(**fence), **FAST)
    for d in nodes:  # pulling a node's power stops that daemon like a real power loss
        daemons.bmcs.get(d.me).register_power_off_callback(lambda _n, d=d: d.power_loss())
    n1 = nodes[0]
    wait_for(lambda: any(d.coordinator.is_primary() for d in nodes), T, "a primary")
    if not n1.coordinator.is_primary():
        request_primary(store, "node1")
    wait_for(n1.coordinator.is_primary, T, "node1 primary")
    return nodes, store


def restart(daemons: DaemonFactory, old: NodeDaemon) -> NodeDaemon:
    """Power a node back on: its BMC reads on, a new daemon with the same config runs."""
    daemons.bmcs.get(old.me).power_on()
    new = NodeDaemon(old.config, driver_extras={BMC_REGISTRY_KEY: daemons.bmcs})
    new.start()
    daemons.started.append(new)
    daemons.bmcs.get(new.me).register_power_off_callback(lambda _n: new.power_loss())
    return new


def decisions(store: Store, node: str, kind: str | None = None) -> list[Decision]:
    """The decisions about ``node`` (of one ``kind``), oldest first."""
    return [d for d in store.decisions.query(node=node) if kind is None or d.kind == kind]


def kinds(store: Store, node: str) -> list[str]:
    return [d.kind for d in store.decisions.query(node=node)]


def let_rounds_pass(primary: NodeDaemon, rounds: int) -> None:
    """Wait until the primary's keepalive beat ``rounds`` more times (its fence
    monitor runs on the same interval)."""
    start = primary.keepalive.beats
    wait_for(lambda: primary.keepalive.beats >= start + rounds, T, f"{rounds} rounds")


def vms_on(store: Store, daemons_: list[NodeDaemon], node: str, count: int,
           meta: dict[str, object] | None = None, prefix: str = "") -> list[str]:
    """Define and start ``count`` VMs on ``node``; wait until they run there."""
    uuids = [define_vm(store, domain_xml(f"{prefix}{node}-vm{i}"), node=node, start=True,
                       meta=meta).uuid
             for i in range(count)]
    for u in uuids:
        wait_for(lambda u=u: running_somewhere(daemons_, u) == [node], T, "running")
    return uuids


def running_somewhere(nodes: list[NodeDaemon], uuid: str) -> list[str]:
    """The nodes among ``nodes`` whose hypervisor runs ``uuid`` now."""
    out = []
    for d in nodes:
        if d.ctx is None or d.ctx.stopping.is_set():
            continue
        try:
            if d.ctx.hv.domain_info(uuid).state is DomainState.RUNNING:
                out.append(d.me)
        except Exception:  # noqa: BLE001, S112 - not defined there
            continue
    return out
