"""Cluster-wide configuration and the primary coordinator record."""

from __future__ import annotations

from typing import Any

from pvc_core.errors import NotFound, VersionConflict
from pvc_core.keyspace import check_node_name
from pvc_core.store.base import Repository
from pvc_core.store.codec import Versioned, read_json, update_json

#: Values of the cluster config znode when it was never written.
DEFAULT_CLUSTER_CONFIG: dict[str, Any] = {"maintenance": False}


class ClusterRepository(Repository):
    """``{root}/cluster/config`` (JSON settings) and ``{root}/cluster/primary``."""

    def get_config(self) -> Versioned[dict[str, Any]]:
        try:
            current = read_json(self.zk, self.ks.cluster_config())
        except NotFound:
            return Versioned(dict(DEFAULT_CLUSTER_CONFIG), -1)
        return Versioned({**DEFAULT_CLUSTER_CONFIG, **(current.value or {})}, current.version)

    def update_config(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the cluster config with compare-and-set."""
        result = update_json(self.zk, self.ks.cluster_config(),
                             lambda cur: {**DEFAULT_CLUSTER_CONFIG, **(cur or {}), **changes})
        return dict(result.value)

    def maintenance(self) -> bool:
        return bool(self.get_config().value.get("maintenance", False))

    def set_maintenance(self, on: bool) -> None:
        self.update_config(maintenance=bool(on))

    def get_primary(self) -> Versioned[str | None]:
        """The primary coordinator's name (None when there is none) and the znode version."""
        data, stat = self.zk.get(self.ks.primary())
        return Versioned(data.decode() or None, stat.version)

    def set_primary(self, node: str | None, expected_version: int) -> int:
        """Write the primary with compare-and-set; return the new version.

        Raises VersionConflict when another coordinator wrote it since
        ``expected_version`` was read: that is how two contenders never both win.
        """
        name = check_node_name(node) if node is not None else ""
        try:
            stat = self.zk.set(self.ks.primary(), name.encode(), expected_version)
        except VersionConflict:
            raise VersionConflict(
                f"primary changed since version {expected_version} was read") from None
        return int(stat.version)
