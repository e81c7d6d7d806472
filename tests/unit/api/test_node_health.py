"""Node health in the API: the checks of a node's last keepalive, its health, and
the cluster status it degrades. The cache is a stub holding real records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonschema

from pvc_api import present
from pvc_api.controllers.cluster import status
from pvc_api.schemas.cluster import STATUS
from pvc_api.schemas.node import NODE
from pvc_core.states import DaemonState
from pvc_core.store.cache import CachedNode
from pvc_core.store.records import NodeRecord

RAID_OK = {"plugin": "site", "name": "raid", "ok": True, "message": "clean"}
RAID_BAD = {"plugin": "site", "name": "raid", "ok": False, "message": "disk 2 failed"}
ROOT_BAD = {"plugin": "health_basic", "name": "root_filesystem", "ok": False,
            "message": "/: 1.0 GiB free of 50.0 GiB (2.0%)"}


def node(name: str, stats: dict[str, Any], alive: bool = True) -> CachedNode:
    return CachedNode(NodeRecord(name, daemon_state=DaemonState.RUN), stats, alive)


def test_a_node_without_checks_yet() -> None:
    shown = present.node(node("node1", {}))
    assert shown["health"] is None and shown["health_checks"] == []
    jsonschema.validate(shown, NODE)


def test_healthy_and_degraded_nodes() -> None:
    healthy = present.node(node("node1", {"health": [RAID_OK]}))
    assert healthy["health"] == "ok" and healthy["health_checks"] == [RAID_OK]
    degraded = present.node(node("node2", {"health": [RAID_OK, ROOT_BAD]}))
    assert degraded["health"] == "degraded"
    assert degraded["health_checks"] == [RAID_OK, ROOT_BAD]
    jsonschema.validate(degraded, NODE)
    assert present.node(node("node3", {"health": []}))["health"] == "ok"


def test_malformed_entries_written_by_another_process_are_left_out() -> None:
    stats = {"health": [RAID_BAD, "junk", {"name": "x", "ok": "no", "message": "m",
                                           "plugin": "p"}, {**RAID_OK, "extra": 1}]}
    shown = present.node(node("node1", stats))
    assert shown["health_checks"] == [RAID_BAD, RAID_OK]
    jsonschema.validate(shown, NODE)
    assert present.node(node("node1", {"health": "bad"}))["health"] is None


def test_health_problems_name_the_live_nodes_and_their_checks() -> None:
    nodes = [node("node1", {"health": [RAID_OK]}),
             node("node2", {"health": [RAID_BAD, ROOT_BAD]}),
             node("node3", {"health": [RAID_BAD]}, alive=False)]  # stale: already a problem
    assert present.health_problems(nodes) == [
        "node node2 is degraded: site/raid: disk 2 failed; health_basic/root_filesystem: "
        "/: 1.0 GiB free of 50.0 GiB (2.0%)"]
    many = [{**RAID_BAD, "name": f"c{i}"} for i in range(5)]
    (line,) = present.health_problems([node("node4", {"health": many})])
    assert line.endswith("site/c2: disk 2 failed (and 2 more)")


@dataclass
class StubCache:
    nodes_: list[CachedNode]
    config: dict[str, Any] = field(default_factory=dict)

    def check_fresh(self) -> None:
        pass

    def nodes(self) -> list[CachedNode]:
        return self.nodes_

    def vms(self) -> list[Any]:
        return []

    def cluster_config(self) -> dict[str, Any]:
        return self.config

    def faults(self) -> list[dict[str, Any]]:
        return []

    def primary(self) -> str:
        return "node1"

    def jobs(self) -> list[dict[str, Any]]:
        return []


@dataclass
class StubContext:
    cache: StubCache
    cluster_name: str = "test"


def test_a_failing_check_degrades_the_cluster() -> None:
    ok = StubContext(StubCache([node("node1", {"health": [RAID_OK]})]))
    assert status(ok)["health"] == "ok"  # type: ignore[arg-type]
    bad = StubContext(StubCache([node("node1", {"health": [RAID_OK]}),
                                 node("node2", {"health": [RAID_BAD]})]))
    shown = status(bad)  # type: ignore[arg-type]
    assert shown["health"] == "degraded"
    assert shown["problems"] == ["node node2 is degraded: site/raid: disk 2 failed"]
    jsonschema.validate(shown, STATUS)
