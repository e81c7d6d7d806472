"""Placement: which node a VM should run on, and why (DESIGN.md section 6).

One constraint model serves define, migrate, drain, fence recovery and
unflush. :func:`place` is a pure function of its inputs: it filters the
candidate nodes, ranks them with a selector, and returns the choice together
with the reason every other node was rejected, so the decision can be logged
and shown to an operator.

Constraints (hard): the node's daemon is ``run`` and its domain state is
``ready``; the node is in the VM's node limit (when it has one); it is not
the node the VM is on; it is not excluded by the caller (e.g. the node being
drained); and it has enough unallocated memory for the VM.

Anti-affinity (soft): nodes already running a VM of the same anti-affinity
group are used only when no other candidate is left, and the result says so.

Selectors: ``mem`` (most unallocated memory), ``memprov`` (least provisioned
memory, counting stopped VMs too), ``load`` (lowest load), ``vcpus`` (fewest
allocated vCPUs), ``vms`` (fewest running VMs). Ties go to the node name
that sorts first, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pvc_core.errors import InvalidInput
from pvc_core.states import DaemonState, DomainState


@dataclass(frozen=True)
class NodeView:
    """What placement needs to know about one node (from its keepalive)."""

    name: str
    daemon_state: str = DaemonState.RUN.value
    domain_state: str = DomainState.READY.value
    memory_total_mib: int = 0
    memory_allocated_mib: int = 0
    memory_provisioned_mib: int = 0
    load: float = 0.0
    vcpus_allocated: int = 0
    vms_running: int = 0
    anti_affinity_groups: frozenset[str] = frozenset()

    @property
    def memory_unallocated_mib(self) -> int:
        return self.memory_total_mib - self.memory_allocated_mib


@dataclass(frozen=True)
class VmView:
    """What placement needs to know about one VM."""

    name: str
    memory_mib: int
    vcpus: int = 1
    node: str | None = None
    node_limit: tuple[str, ...] = ()
    selector: str | None = None
    anti_affinity: str | None = None


@dataclass(frozen=True)
class PlacementResult:
    """The chosen node (None when there is no valid target) and the reasons."""

    node: str | None
    selector: str
    reason: str
    ranking: tuple[tuple[str, float], ...] = ()
    rejected: dict[str, str] = field(default_factory=dict)

    def explain(self) -> str:
        """One line for logs and the decision log."""
        rej = "; ".join(f"{n}: {why}" for n, why in sorted(self.rejected.items()))
        return f"{self.reason}" + (f" (rejected {rej})" if rej else "")


def _selector(name: str) -> tuple[str, Callable[[NodeView], float]]:
    """(description, key) where a lower key is better."""
    table: dict[str, tuple[str, Callable[[NodeView], float]]] = {
        "mem": ("most unallocated memory", lambda n: -n.memory_unallocated_mib),
        "memprov": ("least provisioned memory", lambda n: n.memory_provisioned_mib),
        "load": ("lowest load", lambda n: n.load),
        "vcpus": ("fewest allocated vCPUs", lambda n: n.vcpus_allocated),
        "vms": ("fewest running VMs", lambda n: n.vms_running),
    }
    try:
        return table[name]
    except KeyError:
        raise InvalidInput(f"must be one of: {', '.join(table)}, got {name!r}",
                           "selector") from None


def _rejection(vm: VmView, node: NodeView, exclude: frozenset[str]) -> str | None:
    if node.name == vm.node:
        return "the VM is on this node"
    if node.name in exclude:
        return "excluded"
    if node.daemon_state != DaemonState.RUN.value:
        return f"daemon is {node.daemon_state}"
    if node.domain_state != DomainState.READY.value:
        return f"node is {node.domain_state}"
    if vm.node_limit and node.name not in vm.node_limit:
        return "not in the VM's node limit"
    if node.memory_unallocated_mib < vm.memory_mib:
        return (f"{node.memory_unallocated_mib} MiB unallocated, "
                f"VM needs {vm.memory_mib} MiB")
    return None


def place(vm: VmView, nodes: Iterable[NodeView], *, default_selector: str = "mem",
          exclude: Iterable[str] = ()) -> PlacementResult:
    """Choose the best node for ``vm`` among ``nodes``; never the node it is on."""
    selector = vm.selector or default_selector
    description, key = _selector(selector)
    excluded = frozenset(exclude)
    rejected: dict[str, str] = {}
    candidates: list[NodeView] = []
    for node in nodes:
        why = _rejection(vm, node, excluded)
        if why is None:
            candidates.append(node)
        else:
            rejected[node.name] = why
    if not candidates:
        return PlacementResult(None, selector, "no valid target", (), rejected)
    note = ""
    if vm.anti_affinity:
        apart = [n for n in candidates if vm.anti_affinity not in n.anti_affinity_groups]
        if apart:
            for n in candidates:
                if n not in apart:
                    rejected[n.name] = f"runs a VM of anti-affinity group {vm.anti_affinity}"
            candidates = apart
        else:
            note = f"; anti-affinity group {vm.anti_affinity} could not be kept apart"
    ranked = sorted(candidates, key=lambda n: (key(n), n.name))
    ranking = tuple((n.name, float(key(n))) for n in ranked)
    best = ranked[0]
    return PlacementResult(best.name, selector,
                           f"{best.name} has the {description} ({selector}){note}",
                           ranking, rejected)


@dataclass(frozen=True)
class ReserveCheck:
    """Whether the cluster could restart every running VM after losing its largest node."""

    ok: bool
    needed_mib: int
    available_mib: int
    largest_node: str | None

    def message(self) -> str:
        verdict = "can" if self.ok else "cannot"
        return (f"cluster {verdict} lose its largest node ({self.largest_node}): running VMs "
                f"need {self.needed_mib} MiB, the other nodes have {self.available_mib} MiB")


def n_minus_one(nodes: Sequence[NodeView]) -> ReserveCheck:
    """The N-1 reserve check over the ready, running nodes."""
    live = [n for n in nodes if n.daemon_state == DaemonState.RUN.value
            and n.domain_state == DomainState.READY.value]
    if not live:
        return ReserveCheck(True, 0, 0, None)
    largest = max(live, key=lambda n: (n.memory_total_mib, n.name))
    needed = sum(n.memory_allocated_mib for n in live)
    available = sum(n.memory_total_mib for n in live) - largest.memory_total_mib
    return ReserveCheck(needed <= available, needed, available, largest.name)
