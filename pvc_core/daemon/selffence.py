"""Self-fence: a node cut off from ZooKeeper stops its own VMs.

When this node's ZooKeeper connection has been down (suspended or lost)
for ``fencing.self_fence_after`` seconds without coming back, the cluster
may already be recovering its VMs elsewhere (its session expired, and if
its fence failed, ``failed_fence: migrate-after-self-fence`` waits exactly
this long). So the node acts on its own, once per outage:
``self_fence_action`` ``stop-vms`` destroys every VM running here,
``command`` runs ``self_fence_command`` (an argument list, with a timeout),
``none`` only logs. Nothing here needs ZooKeeper; it is logged loudly,
since the decision log cannot be reached.

Trade-off: when the whole ZooKeeper ensemble loses quorum for longer than
``self_fence_after``, every node stops its VMs; the reconcilers start them
again once quorum returns (their desired state is unchanged).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

from pvc_core.daemon.context import NodeContext
from pvc_core.errors import PVCError

COMMAND_TIMEOUT = 60.0


class SelfFence:
    """Watches this node's own connection; acts once per outage."""

    def __init__(self, ctx: NodeContext,
                 on_fenced: Callable[[list[str]], None] | None = None) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.fencing
        self.log = ctx.log("fence")
        self._cond = threading.Condition()
        self._down_since: float | None = None
        self.fenced = threading.Event()
        self._on_fenced = on_fenced
        self._thread = threading.Thread(target=self._loop, name=f"self-fence-{ctx.me}",
                                        daemon=True)

    def start(self) -> None:
        self.ctx.store.zk.add_listener(self._on_state)
        self._thread.start()

    def stop(self) -> None:
        self.ctx.store.zk.remove_listener(self._on_state)
        with self._cond:
            self._cond.notify_all()

    def _on_state(self, state: str) -> None:  # kazoo's thread: only flags
        with self._cond:
            if state == "CONNECTED":
                self._down_since = None
            elif self._down_since is None:
                self._down_since = self.ctx.clock.monotonic()
            self._cond.notify_all()

    def _loop(self) -> None:
        acted = False
        while not self.ctx.stopping.is_set():
            with self._cond:
                if self._down_since is None:
                    acted = False
                    self._cond.wait(1.0)
                    continue
                left = self._down_since + self.cfg.self_fence_after - self.ctx.clock.monotonic()
                if left > 0 or acted:
                    self._cond.wait(min(1.0, left) if left > 0 else 1.0)
                    continue
                acted = True
            self.act()

    def act(self) -> None:
        """Carry out ``self_fence_action`` now."""
        action = self.cfg.self_fence_action
        self.log.critical("cut off from ZooKeeper for %.0fs: self-fence (%s)",
                          self.cfg.self_fence_after, action)
        if action == "stop-vms":
            self._stop_vms()
        elif action == "command":
            self._run_command()
        self.fenced.set()

    def _stop_vms(self) -> None:
        try:
            domains = [d for d in self.ctx.hv.list_domains() if d.state.active]
        except PVCError as exc:
            self.log.critical("self-fence: cannot list VMs: %s", exc)
            return
        for dom in domains:
            try:
                self.ctx.hv.destroy(dom.uuid)
                self.log.critical("self-fence: destroyed %s", dom.name)
            except PVCError as exc:
                self.log.critical("self-fence: could not destroy %s: %s", dom.name, exc)
        if self._on_fenced is not None:
            self._on_fenced([d.uuid for d in domains])

    def _run_command(self) -> None:
        argv = list(self.cfg.self_fence_command)
        try:
            done = subprocess.run(argv, timeout=COMMAND_TIMEOUT, check=False,  # noqa: S603
                                  stdin=subprocess.DEVNULL, capture_output=True)
            self.log.critical("self-fence command %s exited %d", argv[0], done.returncode)
        except (OSError, subprocess.SubprocessError) as exc:
            self.log.critical("self-fence command %s failed: %s", argv[0], exc)
