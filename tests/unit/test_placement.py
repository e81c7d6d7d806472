"""Placement is a pure function: every constraint and selector, and its reasons."""

from __future__ import annotations

import pytest

from pvc_core.errors import InvalidInput
from pvc_core.placement import NodeView, VmView, n_minus_one, place
from pvc_core.store.records import SELECTORS


def node(name: str, **kw: object) -> NodeView:
    base: dict[str, object] = {"memory_total_mib": 16384, "memory_allocated_mib": 0}
    base.update(kw)
    return NodeView(name, **base)  # type: ignore[arg-type]


NODES = [
    node("n1", memory_allocated_mib=8000, memory_provisioned_mib=8000, load=0.5,
         vcpus_allocated=8, vms_running=4),
    node("n2", memory_allocated_mib=2000, memory_provisioned_mib=12000, load=3.0,
         vcpus_allocated=2, vms_running=1),
    node("n3", memory_allocated_mib=4000, memory_provisioned_mib=4000, load=0.1,
         vcpus_allocated=4, vms_running=2),
]


@pytest.mark.parametrize("selector, expected", [
    ("mem", "n2"), ("memprov", "n3"), ("load", "n3"), ("vcpus", "n2"), ("vms", "n2"),
])
def test_selectors(selector: str, expected: str) -> None:
    result = place(VmView("vm", 1024, selector=selector), NODES)
    assert result.node == expected and result.selector == selector
    assert expected in result.reason


def test_every_documented_selector_is_implemented() -> None:
    for selector in SELECTORS:
        assert place(VmView("vm", 1, selector=selector), NODES).node is not None


def test_cluster_default_selector_applies_when_vm_has_none() -> None:
    assert place(VmView("vm", 1024), NODES, default_selector="load").node == "n3"


def test_never_the_current_node() -> None:
    result = place(VmView("vm", 1024, node="n2"), NODES)
    assert result.node == "n1" or result.node == "n3"
    assert result.rejected["n2"] == "the VM is on this node"


def test_node_limit_state_and_exclusion() -> None:
    nodes = NODES + [node("n4", daemon_state="dead"), node("n5", domain_state="flushed")]
    result = place(VmView("vm", 1024, node_limit=("n1", "n4", "n5")), nodes, exclude=["n3"])
    assert result.node == "n1"
    assert result.rejected == {"n2": "not in the VM's node limit", "n3": "excluded",
                               "n4": "daemon is dead", "n5": "node is flushed"}


def test_memory_fit() -> None:
    result = place(VmView("big", 13000), NODES)
    assert result.node == "n2"  # 14384 unallocated; n3 has 12384, n1 8384
    assert "VM needs 13000 MiB" in result.rejected["n1"]
    none = place(VmView("huge", 20000), NODES)
    assert none.node is None and none.reason == "no valid target"
    assert set(none.rejected) == {"n1", "n2", "n3"}


def test_anti_affinity_is_kept_apart_when_possible() -> None:
    nodes = [node("a", anti_affinity_groups=frozenset({"db"})), node("b", memory_allocated_mib=9000)]
    result = place(VmView("db2", 1024, anti_affinity="db"), nodes)
    assert result.node == "b"
    assert "anti-affinity" in result.rejected["a"]
    only = place(VmView("db3", 1024, anti_affinity="db"), nodes[:1])
    assert only.node == "a" and "could not be kept apart" in only.reason


def test_ties_are_deterministic() -> None:
    twins = [node("z"), node("a"), node("m")]
    assert place(VmView("vm", 1), twins).node == "a"


def test_unknown_selector_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="selector: must be one of"):
        place(VmView("vm", 1, selector="fastest"), NODES)


def test_n_minus_one_reserve() -> None:
    ok = n_minus_one([node("a", memory_allocated_mib=4000), node("b", memory_allocated_mib=4000),
                      node("c", memory_allocated_mib=4000)])
    assert ok.ok and ok.needed_mib == 12000 and ok.available_mib == 32768
    bad = n_minus_one([node("a", memory_allocated_mib=12000),
                       node("b", memory_allocated_mib=12000)])
    assert not bad.ok and "cannot lose its largest node" in bad.message()
    # nodes that are not ready do not count as capacity
    assert n_minus_one([node("a", domain_state="flushed")]).ok


def test_n_minus_one_loses_the_largest_ready_node_and_says_how_much() -> None:
    nodes = [node("small", memory_total_mib=4096, memory_allocated_mib=2000),
             node("big", memory_total_mib=32768, memory_allocated_mib=3000),
             node("mid", memory_total_mib=8192, memory_allocated_mib=7288)]
    check = n_minus_one(nodes)
    # 12288 MiB running; without "big" there are 4096 + 8192 = 12288: just enough
    assert (check.ok, check.needed_mib, check.available_mib, check.largest_node) == (
        True, 12288, 12288, "big")
    worse = n_minus_one([*nodes[:2], node("mid", memory_total_mib=8192,
                                          memory_allocated_mib=7289)])
    assert not worse.ok
    assert worse.message() == ("cluster cannot lose its largest node (big): running VMs "
                               "need 12289 MiB, the other nodes have 12288 MiB")
    # a dead daemon's node is neither capacity nor a node to lose
    gone = n_minus_one([*nodes, node("huge", daemon_state="dead", memory_total_mib=65536)])
    assert gone == check
