"""The local cluster: one private ZooKeeper and N node daemons on loopback.

:class:`LocalCluster` starts, inspects, breaks and stops a whole cluster
whose state lives under one directory (``cluster.json`` records what was
started; see :mod:`pvc_local.state`). Separate ``pvc-local`` invocations on
the same directory manage the same cluster. Layout of ``DIR``::

    cluster.json            what is running (PIDs with start times, paths)
    zookeeper/              zoo.cfg, data/, zk.log (an ensemble: zk1/ zk2/ zk3/, each so)
    node1/pvc.yaml          node1's configuration (pvc_local.configgen)
    node1/host.xml          its libvirt test-driver host (--hypervisor test)
    node1/hypervisor.json   its fake hypervisor's domains (--hypervisor fake)
    node1/pvcnoded.log      its daemon's stdout and stderr
    node1/state/            its node.state_dir
    node1/libvirtd/         its libvirtd (--hypervisor qemu)
    node1/bmc/              its simulated BMC (pvc_local.bmc): password (0600), power, bmc.log
    node1/pvcapid.log       its API server's log (coordinators only)
    api.key                 the local admin API key (0600)
    multinode.log           the shared process's log (in-process mode)
"""

from __future__ import annotations

import logging
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pvc_core.clock import Deadline
from pvc_core.errors import PVCError
from pvc_core.keyspace import Keyspace
from pvc_core.store import Store, ZkClient
from pvc_local import configgen, launch, procs
from pvc_local import power as powerctl
from pvc_local.procs import ProcState
from pvc_local.state import (
    ApiEntry,
    ClusterState,
    NodeEntry,
    ZkMemberEntry,
    load_state,
    purge_files,
    save_state,
)
from pvc_local.status import ApiStatus, NodeStatus, node_status, read_store, running_as
from pvc_local.zookeeper import ZooKeeperEnsemble, ZooKeeperServer, free_ports

#: Interval of the polls in waits (each wait also has a deadline).
POLL = 0.1
#: ZooKeeper's tickTime: client session timeouts clamp to 2-20 ticks (1-10 s).
ZK_TICK_MS = 500
#: File name of a fake hypervisor's published domains in its node directory.
HYPERVISOR_STATE_FILE = "hypervisor.json"
#: File name of the local admin API key in the cluster directory (mode 0600).
API_KEY_FILE = "api.key"
#: Name of that key in every node's ``api.keys``.
API_KEY_NAME = "local-admin"
#: File name of an API server's log in its node directory.
API_LOG = "pvcapid.log"
#: What the readiness check asks of each API server (served without a key).
OPENAPI_PATH = "/api/v1/openapi.json"

log = logging.getLogger(__name__)


class LocalClusterError(RuntimeError):
    """A local-cluster operation failed; the message is one line for the user."""


def api_answers(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET url/api/v1/openapi.json`` answers 200 (no proxy, whatever the env)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + OPENAPI_PATH, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error (details such as log tails stay in the logs)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class LocalCluster:
    """A local cluster kept under ``directory`` (see the module docstring).

    ``daemon_module`` is the module run as each node daemon (``python -m
    MODULE --config FILE``); only tests replace it. None: the one the
    cluster was started with (recorded), else ``pvc_core.daemon``.
    """

    def __init__(self, directory: Path | str, *, daemon_module: str | None = None) -> None:
        self.directory = Path(directory).absolute()
        self.daemon_module = daemon_module
        self._children: dict[int, Any] = {}  # pid -> Popen of what this object started
        self._pause = threading.Event()  # never set: waits with timeouts, not sleeps

    # -- the record ---------------------------------------------------------

    def record(self) -> ClusterState:
        """The cluster's ``cluster.json``; LocalClusterError when there is none."""
        state = load_state(self.directory)
        if state is None:
            raise LocalClusterError(f"no local cluster in {self.directory} "
                                    "(start one with: pvc-local up)")
        return state

    def _save(self, state: ClusterState) -> ClusterState:
        save_state(self.directory, state)
        return state

    @property
    def zk_hosts(self) -> str:
        """``127.0.0.1:PORT`` of the cluster's ZooKeeper server."""
        return self.record().zk_hosts

    def is_up(self) -> bool:
        """True when anything recorded (ZooKeeper or a daemon) still runs."""
        state = load_state(self.directory)
        return state is not None and any(procs.is_running(r) for r in [
            *state.zk_processes(), *state.processes(), *state.bmc_processes(),
            *state.api_processes()])

    def store(self, connect_timeout: float = 10.0) -> Store:
        """A connected :class:`~pvc_core.store.Store` on the cluster; the caller closes it."""
        zk = ZkClient(self.zk_hosts, session_timeout=6.0, op_timeout=5.0,
                      connect_timeout=connect_timeout)
        zk.start()
        return Store(zk, Keyspace(configgen.ZK_ROOT))

    # -- up -------------------------------------------------------------------

    def up(self, nodes: int = 3, hypervisor: str = "test", node_memory_mib: int = 16384,
           node_cpus: int = 8, in_process: bool = False, wait: float = 60.0,
           coordinators: int = configgen.MAX_COORDINATORS,
           cache_dir: Path | None = None, bmc: bool = True, zk_members: int = 1,
           config_overrides: Mapping[str, Any] | None = None,
           api: bool = False) -> ClusterState:
        """Start ZooKeeper, the node daemons and the API servers; return once all serve.

        Returns once every node is ``run`` and, with ``api``, once the API server of every
        coordinator (one process each, on a free loopback port) answers
        ``GET /api/v1/openapi.json``; each wait has the deadline ``wait``. With ``api`` a
        fresh admin key is written to ``DIR/api.key`` (mode 0600) and its hash added to
        every node's ``api.keys`` as ``local-admin``, after any keys of ``config_overrides``.

        With ``bmc`` (ignored in-process) every node gets a simulated BMC and an ipmi fence chain.
        ``zk_members`` > 1 (odd) starts a ZooKeeper ensemble of that many members instead of
        one server. ``config_overrides`` is merged over every node's generated configuration
        (:func:`pvc_local.configgen.merge`), e.g. ``{"fencing": {"saving_throws": 1}}``.

        Raises LocalClusterError (after stopping whatever it started) when a
        cluster is already up here, an argument is bad, or anything fails.
        """
        if hypervisor not in configgen.HYPERVISORS:
            raise LocalClusterError(f"unknown hypervisor {hypervisor!r} "
                                    f"(one of {', '.join(configgen.HYPERVISORS)})")
        try:
            names = configgen.node_names(nodes)
            size = configgen.NodeSize(node_memory_mib, node_cpus)
        except ValueError as exc:
            raise LocalClusterError(str(exc)) from None
        if zk_members < 1 or zk_members % 2 == 0:
            raise LocalClusterError(f"zk_members must be 1 or an odd number of ensemble "
                                    f"members (3, 5, ...), got {zk_members}")
        if self.is_up():
            raise LocalClusterError(f"a local cluster is already up in {self.directory} "
                                    "(pvc-local down first)")
        self.down()  # a stale record (e.g. a crashed up): stop what it still names
        (self.directory / API_KEY_FILE).unlink(missing_ok=True)  # the old cluster's key
        if hypervisor in ("test", "qemu") and not launch.libvirt_available():
            raise LocalClusterError(f"--hypervisor {hypervisor} needs libvirt-python "
                                    "(scripts/install-deps), or use --hypervisor fake")
        if hypervisor == "qemu":
            reason = launch.qemu_unavailable_reason()
            if reason:
                raise LocalClusterError(f"--hypervisor qemu is not available here: {reason}")
        try:
            state = self._start_zookeeper(hypervisor, in_process, size, zk_members)
            if bmc and not in_process:
                state = self._start_bmcs(state, names)
            keys: list[dict[str, str]] = []
            if api:
                state, key_entry = self._write_api_key(state)
                keys.append(key_entry)
            state = self._prepare_nodes(state, names, size, coordinators, cache_dir,
                                        config_overrides, api=api, api_keys=keys)
            state = self._spawn(state, names)
            self._wait_run(state, names, wait)
            if state.apis:
                state = self._start_apis(state)
                self._wait_apis(state, wait)
            return state
        except BaseException as exc:
            self._teardown_after_failure()
            if isinstance(exc, LocalClusterError | KeyboardInterrupt):
                raise
            raise LocalClusterError(f"up failed: {first_line(exc)} "
                                    f"(logs under {self.directory})") from exc

    def _teardown_after_failure(self) -> None:
        try:
            self.down()
        except Exception as exc:  # report the original failure, not this one
            log.warning("cleanup after a failed up: %s", exc)

    def _start_zookeeper(self, hypervisor: str, in_process: bool,
                         size: configgen.NodeSize, members: int = 1) -> ClusterState:
        self.directory.mkdir(parents=True, exist_ok=True)
        if members > 1:
            return self._start_ensemble(hypervisor, in_process, size, members)
        server = ZooKeeperServer(self.directory / "zookeeper", tick_ms=ZK_TICK_MS)
        state = ClusterState(str(self.directory), hypervisor, in_process, server.port,
                             str(server.dir), node_memory_mib=size.memory_mib,
                             node_cpus=size.cpus,
                             daemon_module=self.daemon_module or launch.DAEMON_MODULE)
        self._save(state)  # before the start: a crash still leaves a record
        server.start(wait=False)
        assert server.proc is not None
        self._children[server.proc.pid] = server.proc
        state = self._save(replace(state, zk_process=procs.ref_of(server.proc.pid)))
        server.wait_serving(30.0)
        return state

    def _start_ensemble(self, hypervisor: str, in_process: bool, size: configgen.NodeSize,
                        members: int) -> ClusterState:
        """Start ``members`` ZooKeeper JVMs forming one ensemble; return once all serve."""
        ensemble = ZooKeeperEnsemble(self.directory / "zookeeper", size=members,
                                     tick_ms=ZK_TICK_MS)
        first = ensemble.members[0]
        state = ClusterState(str(self.directory), hypervisor, in_process, first.port,
                             str(self.directory / "zookeeper"), node_memory_mib=size.memory_mib,
                             node_cpus=size.cpus,
                             daemon_module=self.daemon_module or launch.DAEMON_MODULE)
        for server in ensemble.members:
            assert server.server_id is not None
            quorum, election = server.peers[server.server_id]
            state = state.with_zk_member(ZkMemberEntry(server.server_id, server.port, quorum,
                                                       election, str(server.dir)))
        self._save(state)  # before the start: a crash still leaves a record
        for server in ensemble.members:
            server.start(wait=False)
            assert server.proc is not None and server.server_id is not None
            self._children[server.proc.pid] = server.proc
            state = self._save(state.with_zk_member(replace(
                state.zk_member(server.server_id), process=procs.ref_of(server.proc.pid))))
        for server in ensemble.members:
            server.wait_serving(60.0)
        return state

    def _write_api_key(self, state: ClusterState) -> tuple[ClusterState, dict[str, str]]:
        """A new admin key in ``DIR/api.key`` (created 0600); its ``api.keys`` entry."""
        from pvc_api.auth import hash_key, new_key

        key = new_key()
        path = self.directory / API_KEY_FILE
        configgen.atomic_write(path, key + "\n", mode=0o600)  # mkstemp: 0600 from the start
        state = self._save(replace(state, api_key_file=str(path)))
        return state, {"name": API_KEY_NAME, "hash": hash_key(key), "role": "admin"}

    def _prepare_nodes(self, state: ClusterState, names: list[str], size: configgen.NodeSize,
                       coordinator_limit: int, cache_dir: Path | None,
                       overrides: Mapping[str, Any] | None = None, *, api: bool = False,
                       api_keys: list[dict[str, str]] | None = None) -> ClusterState:
        qemu = state.hypervisor == "qemu"
        api_ports: dict[str, int] = {}
        if api:
            # the coordinators as the generated configuration will name them (overrides too)
            coordinators = configgen.merge(
                {"cluster": {"coordinators": configgen.coordinators(names, coordinator_limit)}},
                overrides or {})["cluster"]["coordinators"]
            coordinators = [n for n in coordinators if n in names]
            api_ports = dict(zip(coordinators, free_ports(len(coordinators)), strict=True))
        if qemu:
            images = launch.guest_images(cache_dir or launch.default_cache_dir())
            state = self._save(replace(state, guest_images=images))
        for index, name in enumerate(names, start=1):
            node_dir = self.directory / name
            (node_dir / "state").mkdir(parents=True, exist_ok=True)
            log_path = self.directory / "multinode.log" if state.in_process \
                else node_dir / "pvcnoded.log"
            entry = NodeEntry(name, index, str(node_dir / "pvc.yaml"), str(log_path),
                              str(node_dir / "state"))
            libvirtd = None
            if qemu:
                state = self._save(state.with_node(replace(entry, libvirtd=True)))
                libvirtd = launch.node_libvirtd(node_dir, name, index)
                libvirtd.start()
            host_xml = None
            if state.hypervisor == "test":
                host_xml = configgen.write_host_xml(node_dir / "host.xml", size)
            state_file = node_dir / HYPERVISOR_STATE_FILE if state.hypervisor == "fake" \
                else None
            section = configgen.hypervisor_section(state.hypervisor, host_xml=host_xml,
                                                   size=size, libvirtd=libvirtd,
                                                   state_file=state_file)
            config = configgen.node_config(
                name, nodes=names, zk_hosts=state.zk_hosts, state_dir=node_dir / "state",
                hypervisor=section, coordinator_limit=coordinator_limit,
                fence_chain=powerctl.fence_chain(state, names), overrides=overrides,
                api_port=api_ports.get(name), api_keys=api_keys or ())
            configgen.write_config(Path(entry.config), config)
            state = self._save(state.with_node(replace(entry, libvirtd=qemu)))
        for name, port in api_ports.items():  # coordinator order: node1's first
            state = state.with_api(ApiEntry(name, port, str(self.directory / name / API_LOG)))
        state = self._save(state)
        if state.in_process:
            state = self._save(replace(state, shared_log=str(self.directory / "multinode.log")))
        return state

    def _start_bmcs(self, state: ClusterState, names: list[str]) -> ClusterState:
        """One simulated BMC per node: power-off kills the node, power-on restarts it."""
        for name in names:
            proc, entry = powerctl.start_node_bmc(self.directory, name, state.hypervisor)
            self._children[proc.pid] = proc
            state = self._save(state.with_bmc(entry))
        return state

    def power(self, node: str, action: str, timeout: float = 30.0) -> str:
        """``on``/``off``/``status`` through the node's BMC (IPMI); the state read after."""
        try:
            entry = self.record().bmc(node)
        except KeyError as exc:
            raise LocalClusterError(str(exc.args[0])) from None
        return powerctl.power(entry, action, timeout)

    def _spawn(self, state: ClusterState, names: list[str]) -> ClusterState:
        groups = [names] if state.in_process else [[n] for n in names]
        for group in groups:
            entries = [state.node(n) for n in group]
            module = self.daemon_module or state.daemon_module or launch.DAEMON_MODULE
            argv = launch.daemon_argv([e.config for e in entries], state.in_process,
                                      module=module)
            proc = procs.spawn(argv, Path(entries[0].log), cwd=self.directory)
            self._children[proc.pid] = proc
            ref = procs.ref_of(proc.pid)
            for entry in entries:
                state = state.with_node_process(entry.name, ref)
            state = self._save(state)
        return state

    def _exited(self, entry: NodeEntry) -> str | None:
        """Why the node's process is gone (None while it runs)."""
        return self._gone(entry.process, f"{entry.name}: daemon", entry.log)

    def _gone(self, ref: procs.ProcRef | None, who: str, log_path: str) -> str | None:
        """Why the process ``ref`` is gone, with its log's tail (None while it runs)."""
        proc = self._children.get(ref.pid) if ref else None
        code = proc.poll() if proc is not None else None
        if code is None and procs.is_running(ref):
            return None
        what = f"exited with {code} ({launch.exit_meaning(code)})" \
            if code is not None else "is gone"
        tail = procs.log_tail(Path(log_path))
        return f"{who} {what}" + (f": {tail}" if tail else "") + f" (log: {log_path})"

    # -- the API servers -------------------------------------------------------

    def _start_apis(self, state: ClusterState) -> ClusterState:
        """Start the API server of every recorded coordinator, on its recorded port."""
        for entry in state.apis:
            argv = launch.api_argv(state.node(entry.node).config, entry.port)
            proc = procs.spawn(argv, Path(entry.log), cwd=self.directory)
            self._children[proc.pid] = proc
            state = self._save(state.with_api(replace(entry, process=procs.ref_of(proc.pid))))
        return state

    def _wait_apis(self, state: ClusterState, timeout: float) -> None:
        """Wait until every API server answers ``GET /api/v1/openapi.json`` with 200.

        Fails at once when one exits, and at the deadline.
        """
        deadline = Deadline(timeout)
        pending = list(state.apis)
        while pending:
            for entry in list(pending):
                reason = self._gone(entry.process, f"{entry.node}: API server", entry.log)
                if reason:
                    raise LocalClusterError(reason)
                if api_answers(entry.url, timeout=min(1.0, max(0.1, deadline.remaining()))):
                    pending.remove(entry)
            if not pending:
                return
            if deadline.expired():
                raise LocalClusterError(
                    f"API server(s) of {', '.join(e.node for e in pending)} not answering "
                    f"{OPENAPI_PATH} after {timeout:g}s "
                    f"(logs: {', '.join(e.log for e in pending)})")
            self._pause.wait(min(POLL, deadline.remaining()))

    def api_urls(self) -> list[str]:
        """``http://127.0.0.1:PORT`` of every API server, node1's (the first coordinator's)
        first; empty when the cluster was started without the API."""
        return [entry.url for entry in self.record().apis]

    def api_key(self) -> str:
        """The local admin API key (``DIR/api.key``); LocalClusterError when there is none."""
        state = self.record()
        if not state.api_key_file:
            raise LocalClusterError(f"the local cluster in {self.directory} was started "
                                    "without the API (pvc-local up --no-api)")
        try:
            return Path(state.api_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LocalClusterError(f"cannot read the API key {state.api_key_file}: "
                                    f"{exc.strerror or exc}") from None

    def api_status(self) -> list[ApiStatus]:
        """Every API server: its URL and process state (``down`` once stopped)."""
        for proc in self._children.values():
            proc.poll()  # reap our own exited children
        return [ApiStatus(e.node, e.url, e.process.pid if e.process else None,
                          procs.proc_state(e.process).value if e.process else "down", e.log)
                for e in self.record().apis]

    def _wait_run(self, state: ClusterState, names: list[str], timeout: float) -> None:
        """Wait until every named node is ``run`` as written by its current process.

        Fails at once when a node's process exits, and at the deadline.
        """
        deadline = Deadline(timeout)
        pending = list(names)
        store: Store | None = None
        try:
            while pending:
                for name in list(pending):
                    reason = self._exited(state.node(name))
                    if reason:
                        raise LocalClusterError(reason)
                try:
                    if store is None:
                        store = self.store(connect_timeout=max(1.0, deadline.remaining()))
                    pending = [n for n in pending if not _fresh_run(store, state.node(n))]
                except PVCError:
                    pass  # not registered yet, or ZooKeeper busy: ask again
                if not pending:
                    return
                if deadline.expired():
                    logs = ", ".join(state.node(n).log for n in pending)
                    raise LocalClusterError(f"{', '.join(pending)} not in state run after "
                                            f"{timeout:g}s (logs: {logs})")
                self._pause.wait(min(POLL, deadline.remaining()))
        finally:
            if store is not None:
                store.close()

    # -- down -------------------------------------------------------------------

    def down(self, purge: bool = False, timeout: float = 30.0) -> list[str]:
        """Stop API servers, daemons (SIGTERM, SIGKILL after ``timeout``), BMCs, libvirtds
        and ZooKeeper.

        Idempotent. Removes files only with ``purge`` (and then only what the
        record names, plus the directory if that leaves it empty). Returns
        what was done, one line each.
        """
        state = load_state(self.directory)
        if state is None:
            return []
        done: list[str] = []
        problems: list[str] = []
        apis = [r for r in state.api_processes() if procs.is_running(r)]
        left = procs.terminate(apis, timeout)
        problems += [f"API server pid {r.pid} survived SIGKILL" for r in left]
        if apis:
            done.append(f"stopped {len(apis)} API server(s)")
        state = self._save(replace(state, apis=tuple(replace(a, process=None)
                                                     for a in state.apis)))
        daemons = [r for r in state.processes() if procs.is_running(r)]
        left = procs.terminate(daemons, timeout)
        problems += [f"daemon pid {r.pid} survived SIGKILL" for r in left]
        if daemons:
            done.append(f"stopped {len(daemons)} daemon process(es)")
        for entry in state.nodes:
            state = self._save(state.with_node(replace(entry, process=None)))
        bmcs = [r for r in state.bmc_processes() if procs.is_running(r)]
        problems += [f"BMC pid {r.pid} survived SIGKILL" for r in procs.terminate(bmcs, 5.0)]
        state = self._save(replace(state, bmcs=tuple(replace(b, process=None)
                                                     for b in state.bmcs)))  # not in `done`
        for entry in state.nodes:
            if entry.libvirtd:
                try:
                    node_dir = Path(entry.state_dir).parent
                    launch.node_libvirtd(node_dir, entry.name, entry.index).stop()
                    done.append(f"stopped {entry.name}'s libvirtd")
                    state = self._save(state.with_node(replace(state.node(entry.name),
                                                               libvirtd=False)))
                except Exception as exc:
                    problems.append(f"{entry.name}'s libvirtd: {first_line(exc)}")
        zookeepers = [r for r in state.zk_processes() if procs.is_running(r)]
        if zookeepers:
            left = procs.terminate(zookeepers, timeout)
            problems += [f"ZooKeeper pid {r.pid} survived SIGKILL" for r in left]
            done.append("stopped ZooKeeper")
        for zk_dir in [state.zk_dir, *(m.dir for m in state.zk_members)]:
            (Path(zk_dir) / "zk.pid").unlink(missing_ok=True)
        state = self._save(replace(state, zk_process=None, zk_members=tuple(
            replace(m, process=None) for m in state.zk_members)))
        if problems:
            raise LocalClusterError("; ".join(problems))
        if purge:
            purge_files(self.directory, state)
            done.append(f"removed {self.directory}")
        return done

    # -- status and faults ---------------------------------------------------

    def zookeeper_state(self) -> ProcState:
        """Whether the cluster's ZooKeeper runs.

        One server: its process state. An ensemble: ``alive`` while a majority
        of its members' processes are alive (it can have quorum), else ``dead``.
        """
        state = self.record()
        if not state.zk_members:
            return procs.proc_state(state.zk_process)
        alive = sum(procs.proc_state(m.process) is ProcState.ALIVE for m in state.zk_members)
        return ProcState.ALIVE if alive > len(state.zk_members) // 2 else ProcState.DEAD

    # -- ZooKeeper ensemble members (chaos) -------------------------------------

    def _member(self, member: int) -> ZkMemberEntry:
        try:
            return self.record().zk_member(member)
        except KeyError as exc:
            raise LocalClusterError(str(exc.args[0])) from None

    def zookeeper_kill(self, member: int) -> None:
        """SIGKILL ensemble member ``member`` (a crash) and wait until it is gone."""
        entry = self._member(member)
        if not procs.send_signal(entry.process, signal.SIGKILL):
            raise LocalClusterError(f"ZooKeeper member {member} is not running")
        self._reap_member(entry, 10.0)

    def zookeeper_stop(self, member: int, timeout: float = 15.0) -> None:
        """Stop ensemble member ``member`` (SIGTERM, SIGKILL after ``timeout``)."""
        entry = self._member(member)
        if not procs.is_running(entry.process):
            raise LocalClusterError(f"ZooKeeper member {member} is not running")
        if procs.terminate([entry.process], timeout):
            raise LocalClusterError(f"ZooKeeper member {member} survived SIGKILL")
        self._reap_member(entry, 10.0)

    def _reap_member(self, entry: ZkMemberEntry, timeout: float) -> None:
        assert entry.process is not None
        proc = self._children.get(entry.process.pid)
        deadline = Deadline(timeout)
        # Our own child: wait until it is reaped, i.e. every thread of the JVM is gone and
        # its ports are closed (its main thread shows as a zombie a little earlier).
        while (proc.poll() is None) if proc is not None else procs.is_running(entry.process):
            if deadline.expired():
                raise LocalClusterError(f"ZooKeeper member {entry.member} did not die "
                                        f"within {timeout:g}s")
            self._pause.wait(min(0.02, deadline.remaining()))
        self._children.pop(entry.process.pid, None)
        (Path(entry.dir) / "zk.pid").unlink(missing_ok=True)
        self._save(self.record().with_zk_member(replace(entry, process=None)))

    def zookeeper_start(self, member: int, wait: float = 0.0) -> None:
        """Start a stopped ensemble member again with its old configuration and data.

        With ``wait`` > 0, return once it serves (it needs a quorum of members for that).
        """
        state = self.record()
        entry = self._member(member)
        if procs.is_running(entry.process):
            raise LocalClusterError(f"ZooKeeper member {member} is still running")
        peers = {m.member: (m.quorum_port, m.election_port) for m in state.zk_members}
        server = ZooKeeperServer(entry.dir, entry.port, ZK_TICK_MS, entry.member, peers)
        server.start(wait=False)
        assert server.proc is not None
        self._children[server.proc.pid] = server.proc
        self._save(self.record().with_zk_member(
            replace(entry, process=procs.ref_of(server.proc.pid))))
        if wait > 0:
            server.wait_serving(wait)

    def zookeeper_serving(self, member: int) -> bool:
        """True when ensemble member ``member`` answers with a mode (it has quorum)."""
        entry = self._member(member)
        return ZooKeeperServer(entry.dir, entry.port, ZK_TICK_MS).serving()

    def status(self) -> list[NodeStatus]:
        """Every node: its process and, when ZooKeeper answers, its states and VM count."""
        state = self.record()
        for proc in self._children.values():
            proc.poll()  # reap our own exited children
        view = None
        if any(procs.is_running(r) for r in state.zk_processes()):
            view = read_store(self.store, [n.name for n in state.nodes])
        return [node_status(e.name, e.process.pid if e.process else None,
                            procs.proc_state(e.process).value if e.process else "down",
                            e.log, view)
                for e in state.nodes]

    def _signal_node(self, node: str, sig: int, want: ProcState, verb: str) -> NodeEntry:
        state = self.record()
        try:
            entry = state.node(node)
        except KeyError as exc:
            raise LocalClusterError(str(exc.args[0])) from None
        if not procs.send_signal(entry.process, sig):
            raise LocalClusterError(f"{node}: daemon is not running (nothing to {verb})")
        deadline = Deadline(10.0)
        while self._current(entry) is not want:
            if deadline.expired():
                raise LocalClusterError(f"{node}: daemon did not become {want.value} "
                                        f"within {deadline.seconds:g}s")
            self._pause.wait(min(0.02, deadline.remaining()))
        return entry

    def _current(self, entry: NodeEntry) -> ProcState:
        proc = self._children.get(entry.process.pid) if entry.process else None
        if proc is not None:
            proc.poll()
        return procs.proc_state(entry.process)

    def kill(self, node: str) -> None:
        """SIGKILL the node's daemon (in-process mode: the shared process, every node)."""
        self._signal_node(node, signal.SIGKILL, ProcState.DEAD, "kill")

    def hang(self, node: str) -> None:
        """SIGSTOP the node's daemon: it stops beating and its ZooKeeper session expires."""
        self._signal_node(node, signal.SIGSTOP, ProcState.STOPPED, "hang")

    def resume(self, node: str) -> None:
        """SIGCONT a hung node's daemon."""
        self._signal_node(node, signal.SIGCONT, ProcState.ALIVE, "resume")

    def restart(self, node: str, wait: float = 60.0) -> None:
        """Start a dead node's daemon again (in-process mode: the shared process)."""
        state = self.record()
        try:
            entry = state.node(node)
        except KeyError as exc:
            raise LocalClusterError(str(exc.args[0])) from None
        if self._current(entry) is not ProcState.DEAD:
            raise LocalClusterError(f"{node}: daemon is still running (pid "
                                    f"{entry.process.pid if entry.process else '?'}); "
                                    "kill it first")
        if not any(procs.is_running(r) for r in state.zk_processes()):
            raise LocalClusterError("ZooKeeper is not running: pvc-local down, then up")
        names = [n.name for n in state.nodes] if state.in_process else [node]
        powerctl.mark_powered(state, names)  # started again: its BMC reads power on
        state = self._spawn(state, names)
        self._wait_run(state, names, wait)


def _fresh_run(store: Store, entry: NodeEntry) -> bool:
    """The node runs, as written by the process recorded for it (not a stale record)."""
    return entry.process is not None and running_as(store, entry.name, entry.process.pid)
