"""The node daemon: an object, so several can live in one process.

Start-up: connect to ZooKeeper, check (and if this code is newer, migrate)
the keyspace schema, load and validate the enabled drivers, register the
node, announce liveness, start the keepalive, the watches, the reconciler,
the console publisher and the job runner, reconcile every VM once, and
reach daemon state ``run``. Nothing waits on a fixed sleep.

Shut-down (:meth:`NodeDaemon.stop`, SIGTERM in ``pvcnoded``): state
``shutdown``, stop taking new work, let the steps in flight finish (bounded),
state ``stop``, and stop the keepalive last. VMs keep running: stopping the
daemon is not stopping the node (flush it first for that).
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

from pvc_core import __version__
from pvc_core.clock import Clock, SystemClock
from pvc_core.config import Config
from pvc_core.console import ConsoleLogWatcher
from pvc_core.coordination.liveness import Liveness
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.coordinator import Coordinator
from pvc_core.daemon.fencing import FenceMonitor
from pvc_core.daemon.jobs import NodeJobRunner
from pvc_core.daemon.keepalive import Keepalive
from pvc_core.daemon.migration import LockstepVmController, Migrator
from pvc_core.daemon.plugins import load_hook_plugins
from pvc_core.daemon.reconciler import Reconciler
from pvc_core.daemon.reserve import ReserveMonitor
from pvc_core.daemon.selffence import SelfFence
from pvc_core.drivers.base import DriverContext, ValidationResult
from pvc_core.drivers.factory import load_fence_chain, load_hypervisor
from pvc_core.drivers.hypervisor import DomainState, HypervisorDriver
from pvc_core.errors import PVCError, SchemaTooNew
from pvc_core.hooks.manager import HookManager
from pvc_core.keyspace import SCHEMA_VERSION
from pvc_core.states import DaemonState
from pvc_core.store import Store
from pvc_core.store.records import VmRecord
from pvc_core.store.watch import VmWatcher, ZnodeWatch
from pvc_core.store.zk import ZkClient

# How long a starting daemon waits for another daemon's schema migration; a
# migrator that dies releases its lock when its session expires.
MIGRATION_WAIT = 600.0


class NodeDaemon:
    """One node's daemon. ``start()`` returns once the node is in state ``run``."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 driver_extras: dict[str, Any] | None = None) -> None:
        self.config = config
        self.me = config.node.name
        self.clock: Clock = clock or SystemClock()
        self.driver_extras = dict(driver_extras or {})
        self.ctx: NodeContext | None = None
        self.state = DaemonState.INIT
        #: Set (with :attr:`exit_code`) when the daemon asks its process to stop it.
        self.exit_code: int | None = None
        self.exit_requested = threading.Event()
        self._vm_records: list[VmRecord] = []
        self._consoles: dict[str, ConsoleLogWatcher] = {}
        self._threads: list[threading.Thread] = []
        self._lost = threading.Event()

    # -- start ---------------------------------------------------------------

    def start(self) -> None:
        """Start every part; raise (after cleaning up) if the node cannot run."""
        from pvc_core.daemon.logs import logger

        log = logger("daemon", self.me)
        z = self.config.zookeeper
        log.info("PVC node daemon %s starting: node %s of cluster %s, ZooKeeper %s%s",
                 __version__, self.me, self.config.cluster.name, z.hosts, z.root)
        zk = ZkClient(z.hosts, session_timeout=z.session_timeout, op_timeout=z.op_timeout,
                      clock=self.clock)
        zk.start()
        try:
            self._start(zk)
        except BaseException:
            self._teardown(zk)
            raise

    def _start(self, zk: ZkClient) -> None:
        from pvc_core.daemon.logs import logger
        from pvc_core.keyspace import Keyspace

        store = Store(zk, Keyspace(self.config.zookeeper.root), self.clock)
        store.decisions.max_records = self.config.logging.decision_log_max
        self._prepare_schema(store)
        hooks = HookManager(logger("hooks", self.me))
        hv = self._load_hypervisor(hooks)
        self._load_plugin_drivers(hooks)
        ctx = NodeContext(self.me, self.config, store, hv, hooks, self.clock,
                          driver_extras=self.driver_extras)
        self.ctx = ctx
        load_hook_plugins(hooks, self.config)
        caps = hv.capabilities()
        host = hv.host_stats()
        store.nodes.register(self.me, {
            "pvc_version": __version__, "schema": SCHEMA_VERSION, "pid": os.getpid(),
            "host": platform.node(), "hypervisor": self.config.hypervisor.driver,
            "live_migration": caps.live_migration, "migration_uri": hv.migration_uri(),
            "memory_total_mib": host.memory_total_mib, "cpus": host.cpu_count,
            "started": self.clock.wall()})  # and daemon state init, in the same write
        self.liveness = Liveness(zk, store.ks, self.me)
        self.liveness.announce(wait=self.config.zookeeper.session_timeout * 2)
        self.keepalive = Keepalive(ctx, self.liveness, self._assigned)
        self.keepalive.start()
        self.coordinator = Coordinator(ctx)
        self.coordinator.start()
        self.fence_monitor = FenceMonitor(ctx, self.coordinator.acts_as_primary)
        self.vms = LockstepVmController(ctx)
        self.vms.migrator = Migrator(ctx, self.vms)
        self.vms.on_started = lambda _uuid: self.keepalive.nudge()
        self.reconciler = Reconciler(self.vms.reconcile, self.config.timers.reconcile_workers,
                                     self.clock, ctx.log("vm"))
        self.jobs = NodeJobRunner(ctx)
        self.self_fence = SelfFence(ctx, on_fenced=self._self_fenced)
        self._check_own_fencing()
        self._watch(zk, store)
        self._resync()
        self.reconciler.start()
        self.reconciler.wait_idle(self.config.migration.vm_timeout)
        self.jobs.start()
        if self.config.fencing.enabled:
            self.self_fence.start()
            if self.coordinator.is_coordinator:
                self.fence_monitor.start()
        # The N-1 reserve check: on every coordinator, acting only while it is primary.
        self.reserve = ReserveMonitor(ctx, self.coordinator.acts_as_primary)
        if self.coordinator.is_coordinator:
            self._spawn(self.reserve.run, "reserve")
        self._spawn(self._resync_loop, "resync")
        self._spawn(self._console_loop, "console")
        self._set_state(DaemonState.RUN)
        hooks.call_with_deadline("pvc_node_started", 10.0, node=self.me)
        ctx.log("daemon").info("node %s is running (%d VMs assigned here)", self.me,
                               len(self._assigned()))

    def _prepare_schema(self, store: Store) -> None:
        current = store.schema.check()  # raises SchemaTooNew
        if current is None:
            store.schema.initialise()
        elif current < SCHEMA_VERSION:
            from pvc_core.daemon.logs import logger

            logger("daemon", self.me).warning(
                "cluster keyspace schema is version %d: migrating to %d", current,
                SCHEMA_VERSION)
            # Several daemons may start together: one migrates, the others
            # wait for it and then find nothing left to do.
            store.schema.migrate(wait=MIGRATION_WAIT)

    def _load_hypervisor(self, hooks: HookManager) -> HypervisorDriver:
        from pvc_core.daemon.logs import logger

        cfg = self.config.hypervisor
        if not cfg.enabled or not cfg.driver:
            raise PVCError("the node daemon needs a hypervisor driver (hypervisor.enabled)")
        context = DriverContext(node=self.me, cluster=self.config.cluster.name,
                                state_dir=self.config.node.state_dir, clock=self.clock,
                                logger=logger("hypervisor", self.me),
                                extras=self.driver_extras)
        hv = load_hypervisor(cfg.driver, self.config.driver_options("hypervisor", cfg.driver),
                             context)
        result = hv.validate()
        if not result.ok:
            hv.close()
            raise PVCError(f"hypervisor driver {cfg.driver}: {result.message}")
        hooks.register(hv, f"hypervisor.{cfg.driver}")
        return hv

    def _load_plugin_drivers(self, hooks: HookManager) -> None:
        """Load the enabled storage driver and register it for its hooks
        (clearing stale locks before a VM starts, fencing a dead node's clients)."""
        from pvc_core.daemon.logs import logger
        from pvc_core.drivers.factory import load_storage

        cfg = self.config.storage
        if not cfg.enabled or not cfg.driver:
            return
        context = DriverContext(node=self.me, cluster=self.config.cluster.name,
                                state_dir=self.config.node.state_dir, clock=self.clock,
                                logger=logger("storage", self.me), extras=self.driver_extras)
        storage = load_storage(cfg.driver, self.config.driver_options("storage", cfg.driver),
                               context)
        result = storage.validate()
        if not result.ok:
            logger("storage", self.me).error("storage driver %s: %s", cfg.driver,
                                             result.message)
        hooks.register(storage, f"storage.{cfg.driver}")
        self.storage = storage

    def _check_own_fencing(self) -> None:
        """Validate this node's own fence chain; warn loudly when fencing would fail."""
        assert self.ctx is not None
        log = self.ctx.log("fence")
        fencing = self.config.fencing
        if not fencing.enabled:
            log.warning("fencing is disabled in this node's configuration")
            return
        entries = fencing.chain.get(self.me, ())
        if not entries:
            log.warning("NO FENCE CHAIN for %s: if it dies its VMs are recovered only as "
                        "failed_fence allows (%s)", self.me, fencing.failed_fence)
            return
        context = DriverContext(node=self.me, cluster=self.config.cluster.name,
                                clock=self.clock, logger=log, extras=self.driver_extras)
        try:
            drivers = load_fence_chain([(e.driver, e.options) for e in entries], context)
        except PVCError as exc:
            log.error("FENCING WOULD FAIL for %s: %s", self.me, exc)
            return
        for entry, driver in zip(entries, drivers, strict=True):
            try:
                result = driver.validate()
            except PVCError as exc:
                result = ValidationResult(False, str(exc))
            if result.ok:
                log.info("fence device %s of %s answers: %s", entry.driver, self.me,
                         result.message)
            else:
                log.error("FENCING WOULD FAIL for %s: fence device %s: %s", self.me,
                          entry.driver, result.message)
            driver.close()

    def _self_fenced(self, uuids: list[str]) -> None:
        for uuid in uuids:
            self.vms.restarts.stopped(uuid)  # stopped on purpose, not crashed

    # -- watches --------------------------------------------------------------

    def _watch(self, zk: ZkClient, store: Store) -> None:
        """Watches feed the reconciler, the job runner and the schema check."""

        def on_vm(uuid: str) -> None:
            assert self.ctx is not None
            self.ctx.changes.notify(f"vm:{uuid}")
            self.reconciler.enqueue(uuid)

        self.vm_watch = VmWatcher(zk, store.ks, on_vm)
        self.vm_watch.start()
        self.node_watch = ZnodeWatch(zk, store.ks.node(self.me),
                                     lambda _p: self.jobs.wake.set())
        self.node_watch.arm()
        self.schema_watch = ZnodeWatch(
            zk, store.ks.schema(), lambda _p: self._spawn(self._schema_changed, "schema"))
        self.schema_watch.arm()

        def on_state(state: str) -> None:
            # kazoo may drop watches with the connection, not only with the session
            if state in ("SUSPENDED", "LOST"):
                self._lost.set()
            elif state == "CONNECTED" and self._lost.is_set():
                self._lost.clear()
                self.vm_watch.rearm()
                self.node_watch.arm()
                self.schema_watch.arm()

        zk.add_listener(on_state)

    def _schema_changed(self) -> None:
        from pvc_core.daemon.upgrade import handle_schema_change

        handle_schema_change(self)

    # -- loops ------------------------------------------------------------------

    def _spawn(self, fn: Any, name: str) -> None:
        t = threading.Thread(target=fn, name=f"{name}-{self.me}", daemon=True)
        self._threads.append(t)
        t.start()

    def _assigned(self) -> list[VmRecord]:
        return [v for v in self._vm_records if v.placement.node == self.me]

    def _resync(self) -> None:
        """Level-triggered: look at every VM in the store and every local domain."""
        assert self.ctx is not None
        changes = self.ctx.changes
        uuids_now = self.ctx.store.vms.uuids()
        versions = {u: changes.version(f"vm:{u}") for u in uuids_now}
        self._vm_records = self.ctx.store.vms.all(uuids_now)
        self.vms.remember(self._vm_records, versions)
        uuids = {v.uuid for v in self._vm_records}
        uuids |= {d.uuid for d in self.ctx.hv.list_domains()}
        for uuid in sorted(uuids):
            self.reconciler.enqueue(uuid)

    def _resync_loop(self) -> None:
        assert self.ctx is not None
        while not self.ctx.stopping.wait(self.config.timers.keepalive_interval):
            try:
                self._resync()
            except PVCError as exc:
                self.ctx.log("vm").warning("resync failed: %s", exc)

    def _console_loop(self) -> None:
        assert self.ctx is not None
        lines = self.config.timers.console_log_lines
        period = min(1.0, self.config.timers.keepalive_interval)
        while lines > 0 and not self.ctx.stopping.wait(period):
            try:
                self._poll_consoles(lines)
            except PVCError as exc:
                self.ctx.log("console").warning("console publishing failed: %s", exc)

    def _poll_consoles(self, lines: int) -> None:
        assert self.ctx is not None
        running = {d.uuid for d in self.ctx.hv.list_domains() if d.state is DomainState.RUNNING}
        for uuid in list(self._consoles):
            if uuid not in running:
                del self._consoles[uuid]
        for uuid in running:
            watcher = self._consoles.get(uuid)
            if watcher is None:
                path = self.ctx.hv.console_log_path(uuid)
                if not path:
                    continue
                watcher = ConsoleLogWatcher(path, lines, self._publisher(uuid))
                self._consoles[uuid] = watcher
            watcher.poll()

    def _publisher(self, uuid: str) -> Any:
        assert self.ctx is not None
        store = self.ctx.store

        def publish(text: str) -> None:
            store.vms.set_console(uuid, text)

        return publish

    # -- stop -----------------------------------------------------------------

    def _set_state(self, state: DaemonState) -> None:
        assert self.ctx is not None
        self.state = state
        self.ctx.store.nodes.set_states(self.me, daemon_state=state)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop cleanly; the keepalive stops last. Idempotent."""
        ctx = self.ctx
        if ctx is None or ctx.stopping.is_set():
            return
        log = ctx.log("daemon")
        log.info("shutting down")
        try:
            self._set_state(DaemonState.SHUTDOWN)
        except PVCError as exc:
            log.warning("could not record shutdown: %s", exc)
        ctx.stopping.set()
        self.coordinator.stop(timeout / 4)
        self.fence_monitor.stop()
        self.self_fence.stop()
        self.vm_watch.stop()
        self.node_watch.cancel()
        self.schema_watch.cancel()
        self.jobs.stop(timeout / 2)
        self.reconciler.stop(timeout / 2)
        for t in self._threads:
            t.join(5)
        try:
            self._set_state(DaemonState.STOP)
        except PVCError as exc:
            log.warning("could not record stop: %s", exc)
        self.keepalive.stop()
        self._teardown(ctx.store.zk)
        log.info("stopped")

    def power_loss(self) -> None:
        """Simulate this node losing power (in-process clusters and tests).

        Every VM on its hypervisor stops at once and its ZooKeeper session
        closes without any state being written: what the rest of the
        cluster sees of a node whose BMC cut its power.
        """
        ctx = self.ctx
        if ctx is None or ctx.stopping.is_set():
            return
        ctx.stopping.set()
        self.keepalive.stop()
        for dom in ctx.hv.list_domains():
            if dom.state.active:
                ctx.hv.destroy(dom.uuid)
        self.reconciler.stop(5)
        self.coordinator.stop(1, relinquish=False)
        ctx.store.zk.stop()

    def _teardown(self, zk: ZkClient) -> None:
        if self.ctx is not None:
            try:
                self.liveness.withdraw()
            except (PVCError, AttributeError):
                pass
            self.ctx.hv.close()
        zk.stop()

    def request_exit(self, code: int, why: str) -> None:
        """Ask the process hosting this daemon to stop it and exit with ``code``."""
        if self.ctx is not None:
            log = self.ctx.log("daemon")
            (log.info if code == 0 else log.error)("%s", why)
        self.exit_code = code
        self.exit_requested.set()


__all__ = ["NodeDaemon", "SchemaTooNew"]
