"""``DIR/cluster.json``: what a local cluster started, so later commands find it.

Written atomically (temporary file and rename) after every process the
launcher starts or stops, so even an ``up`` interrupted half-way leaves a
record that ``down`` can clean up from.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pvc_local.configgen import atomic_write
from pvc_local.procs import ProcRef

#: File name of the record inside the cluster directory.
STATE_FILE = "cluster.json"
#: Format version of the record.
FORMAT = 1


class StateError(RuntimeError):
    """``cluster.json`` is missing, unreadable or not a record this code understands."""


def _ref(data: Any) -> ProcRef | None:
    return ProcRef.from_dict(data) if data else None


def _ref_dict(ref: ProcRef | None) -> dict[str, int] | None:
    return ref.to_dict() if ref else None


@dataclass(frozen=True)
class NodeEntry:
    """One node of the local cluster and its files.

    ``process`` is the node's own daemon process, or the shared process in
    in-process mode (the same :class:`ProcRef` for every node); None once
    it was stopped by ``down``.
    """

    name: str
    index: int
    config: str
    log: str
    state_dir: str
    process: ProcRef | None = None
    libvirtd: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "index": self.index, "config": self.config,
                "log": self.log, "state_dir": self.state_dir,
                "process": _ref_dict(self.process), "libvirtd": self.libvirtd}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeEntry:
        return cls(str(data["name"]), int(data["index"]), str(data["config"]),
                   str(data["log"]), str(data["state_dir"]), _ref(data.get("process")),
                   bool(data.get("libvirtd", False)))


@dataclass(frozen=True)
class BmcEntry:
    """The simulated BMC of one node (:mod:`pvc_local.bmc`).

    ``port`` is its UDP port on 127.0.0.1; ``password_file`` (mode 0600)
    holds the password of user ``admin``; ``state_file`` its power state.
    ``process`` is None once ``down`` stopped it.
    """

    node: str
    port: int
    password_file: str
    state_file: str
    log: str
    process: ProcRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "port": self.port, "password_file": self.password_file,
                "state_file": self.state_file, "log": self.log,
                "process": _ref_dict(self.process)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BmcEntry:
        return cls(str(data["node"]), int(data["port"]), str(data["password_file"]),
                   str(data["state_file"]), str(data["log"]), _ref(data.get("process")))


@dataclass(frozen=True)
class ZkMemberEntry:
    """One member of a local ZooKeeper *ensemble* (``up(zk_members=3)``).

    ``member`` is its server id (1..n, ``myid``); ``port`` its client port,
    ``quorum_port`` and ``election_port`` its peer ports (every member's
    ``zoo.cfg`` lists all of them), ``dir`` its directory
    (``DIR/zookeeper/zkN``). ``process`` is None while it is not running.
    """

    member: int
    port: int
    quorum_port: int
    election_port: int
    dir: str
    process: ProcRef | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {"member": self.member, "port": self.port, "quorum_port": self.quorum_port,
                "election_port": self.election_port, "dir": self.dir,
                "process": _ref_dict(self.process)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ZkMemberEntry:
        return cls(int(data["member"]), int(data["port"]), int(data["quorum_port"]),
                   int(data["election_port"]), str(data["dir"]), _ref(data.get("process")))


@dataclass(frozen=True)
class ApiEntry:
    """The API server (``python -m pvc_api.cli``) of one coordinator node.

    It listens on ``127.0.0.1:port`` with the node's own configuration and
    logs to ``log`` (``DIR/<node>/pvcapid.log``). ``process`` is None once
    ``down`` stopped it.
    """

    node: str
    port: int
    log: str
    process: ProcRef | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "port": self.port, "log": self.log,
                "process": _ref_dict(self.process)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApiEntry:
        return cls(str(data["node"]), int(data["port"]), str(data["log"]),
                   _ref(data.get("process")))


@dataclass(frozen=True)
class ClusterState:
    """Everything ``pvc-local`` needs to manage a running local cluster.

    ZooKeeper is either one standalone server (``zk_port``, ``zk_dir``,
    ``zk_process``; ``zk_members`` empty) or an ensemble: then every member
    is in ``zk_members``, ``zk_dir`` is the directory holding theirs,
    ``zk_port`` is member 1's client port and ``zk_process`` stays None.
    """

    directory: str
    hypervisor: str
    in_process: bool = False
    zk_port: int = 0
    zk_dir: str = ""
    zk_process: ProcRef | None = None
    shared_log: str = ""
    nodes: tuple[NodeEntry, ...] = ()
    node_memory_mib: int = 16384
    node_cpus: int = 8
    guest_images: dict[str, str] = field(default_factory=dict)
    bmcs: tuple[BmcEntry, ...] = ()
    #: the module run as each node daemon ("" in older records: the default)
    daemon_module: str = ""
    #: the members of a ZooKeeper ensemble (empty: one standalone server)
    zk_members: tuple[ZkMemberEntry, ...] = ()
    #: the API servers, one per coordinator in coordinator order (empty: none started)
    apis: tuple[ApiEntry, ...] = ()
    #: the file holding the local admin API key ("": none, e.g. up without the API)
    api_key_file: str = ""

    @property
    def zk_hosts(self) -> str:
        """The ZooKeeper connect string: ``host:port``, comma-separated for an ensemble."""
        if self.zk_members:
            return ",".join(m.hosts for m in self.zk_members)
        return f"127.0.0.1:{self.zk_port}"

    def zk_processes(self) -> list[ProcRef]:
        """Every recorded ZooKeeper process (the server, or each ensemble member)."""
        refs = [self.zk_process, *(m.process for m in self.zk_members)]
        return [r for r in refs if r is not None]

    def zk_member(self, member: int) -> ZkMemberEntry:
        """Ensemble member ``member``; KeyError naming the members otherwise."""
        for entry in self.zk_members:
            if entry.member == member:
                return entry
        known = ", ".join(str(m.member) for m in self.zk_members)
        raise KeyError(f"no ZooKeeper member {member} (members: {known})" if known else
                       "ZooKeeper is one standalone server here, not an ensemble "
                       "(up with zk_members=3)")

    def with_zk_member(self, entry: ZkMemberEntry) -> ClusterState:
        """A copy with ``entry`` replacing the member of the same id (or appended)."""
        members = [entry if m.member == entry.member else m for m in self.zk_members]
        if entry.member not in {m.member for m in self.zk_members}:
            members.append(entry)
        return replace(self, zk_members=tuple(sorted(members, key=lambda m: m.member)))

    def node(self, name: str) -> NodeEntry:
        """The entry of node ``name``; KeyError naming the known nodes otherwise."""
        for entry in self.nodes:
            if entry.name == name:
                return entry
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise KeyError(f"no node {name!r} in this cluster (nodes: {known})")

    def with_node(self, entry: NodeEntry) -> ClusterState:
        """A copy with ``entry`` replacing the node of the same name (or appended)."""
        nodes = [entry if n.name == entry.name else n for n in self.nodes]
        if entry.name not in {n.name for n in self.nodes}:
            nodes.append(entry)
        return replace(self, nodes=tuple(nodes))

    def with_node_process(self, name: str, process: ProcRef | None) -> ClusterState:
        """A copy with the process of node ``name`` set."""
        return self.with_node(replace(self.node(name), process=process))

    def bmc(self, name: str) -> BmcEntry:
        """The simulated BMC of node ``name``; KeyError when it has none."""
        for entry in self.bmcs:
            if entry.node == name:
                return entry
        self.node(name)  # KeyError naming the known nodes
        raise KeyError(f"node {name!r} has no simulated BMC (in-process mode, or up "
                       "without BMCs)")

    def with_bmc(self, entry: BmcEntry) -> ClusterState:
        """A copy with ``entry`` replacing the BMC of the same node (or appended)."""
        others = tuple(b for b in self.bmcs if b.node != entry.node)
        if len(others) == len(self.bmcs):
            return replace(self, bmcs=(*self.bmcs, entry))
        return replace(self, bmcs=tuple(entry if b.node == entry.node else b
                                        for b in self.bmcs))

    def api(self, name: str) -> ApiEntry:
        """The API server of node ``name``; KeyError when it has none."""
        for entry in self.apis:
            if entry.node == name:
                return entry
        self.node(name)  # KeyError naming the known nodes
        raise KeyError(f"node {name!r} runs no API server (not a coordinator, or up "
                       "without the API)")

    def with_api(self, entry: ApiEntry) -> ClusterState:
        """A copy with ``entry`` replacing the API server of the same node (or appended)."""
        if entry.node not in {a.node for a in self.apis}:
            return replace(self, apis=(*self.apis, entry))
        return replace(self, apis=tuple(entry if a.node == entry.node else a
                                        for a in self.apis))

    def api_processes(self) -> list[ProcRef]:
        """Every recorded API server process."""
        return [a.process for a in self.apis if a.process is not None]

    def processes(self) -> list[ProcRef]:
        """Every recorded daemon process, each once (ZooKeeper not included)."""
        return list(dict.fromkeys(n.process for n in self.nodes if n.process))

    def bmc_processes(self) -> list[ProcRef]:
        """Every recorded simulated-BMC process."""
        return [b.process for b in self.bmcs if b.process is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "directory": self.directory, "hypervisor": self.hypervisor,
            "in_process": self.in_process,
            "zookeeper": {"port": self.zk_port, "dir": self.zk_dir,
                          "process": _ref_dict(self.zk_process),
                          "members": [m.to_dict() for m in self.zk_members]},
            "shared_log": self.shared_log,
            "nodes": [n.to_dict() for n in self.nodes],
            "node_memory_mib": self.node_memory_mib, "node_cpus": self.node_cpus,
            "guest_images": dict(self.guest_images),
            "bmcs": [b.to_dict() for b in self.bmcs],
            "daemon_module": self.daemon_module,
            "apis": [a.to_dict() for a in self.apis],
            "api_key_file": self.api_key_file,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterState:
        if data.get("format") != FORMAT:
            raise StateError(f"unknown cluster.json format {data.get('format')!r} "
                             f"(this pvc-local writes format {FORMAT})")
        zk = data["zookeeper"]
        return cls(
            directory=str(data["directory"]), hypervisor=str(data["hypervisor"]),
            in_process=bool(data.get("in_process", False)), zk_port=int(zk["port"]),
            zk_dir=str(zk["dir"]), zk_process=_ref(zk.get("process")),
            shared_log=str(data.get("shared_log", "")),
            nodes=tuple(NodeEntry.from_dict(n) for n in data["nodes"]),
            node_memory_mib=int(data.get("node_memory_mib", 16384)),
            node_cpus=int(data.get("node_cpus", 8)),
            guest_images={str(k): str(v) for k, v in (data.get("guest_images") or {}).items()},
            bmcs=tuple(BmcEntry.from_dict(b) for b in data.get("bmcs") or ()),
            daemon_module=str(data.get("daemon_module") or ""),
            zk_members=tuple(ZkMemberEntry.from_dict(m) for m in zk.get("members") or ()),
            apis=tuple(ApiEntry.from_dict(a) for a in data.get("apis") or ()),
            api_key_file=str(data.get("api_key_file") or ""),
        )


def state_path(directory: Path) -> Path:
    """Where the record of the cluster in ``directory`` lives."""
    return directory / STATE_FILE


def save_state(directory: Path, state: ClusterState) -> None:
    """Write the record atomically."""
    atomic_write(state_path(directory), json.dumps(state.to_dict(), indent=2) + "\n")


def load_state(directory: Path) -> ClusterState | None:
    """Read the record; None when there is none. StateError when it is damaged."""
    path = state_path(directory)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise StateError(f"{path}: not a pvc-local cluster record")
        return ClusterState.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{path}: damaged cluster record ({type(exc).__name__}: {exc}); "
                         "stop leftover processes by hand and remove it") from None


def purge_files(directory: Path, state: ClusterState) -> None:
    """Remove what the record names (never anything outside ``directory``).

    The ZooKeeper directory, every node directory, the shared log, the API
    key file and the record itself; then ``directory`` if that left it empty.
    """
    directory = directory.absolute()
    paths = [Path(state.zk_dir), *(directory / n.name for n in state.nodes)]
    for extra in (state.shared_log, state.api_key_file):
        if extra:
            paths.append(Path(extra))
    for path in paths:
        if path == directory or not path.is_relative_to(directory):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    state_path(directory).unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass  # not empty: something else lives here, keep it
