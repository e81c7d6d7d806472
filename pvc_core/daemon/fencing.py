"""Failure detection and the fencing policy (DESIGN.md section 5).

Runs on every coordinator and acts only while that node acts as primary,
under the cluster fence lock:

1. A node is *suspect* when its session is gone (its ``alive`` znode
   vanished) or its keepalive sequence has not advanced for
   ``fence_intervals`` keepalive intervals, measured on this observer's
   monotonic clock (never by comparing another host's wall clock).
2. Saving throws: it is fenced only when it stays silent ``saving_throws``
   more intervals (counted from its last beat when its session is gone,
   since the session timeout already gave it that long).
3. Storm guard: when more than ``storm_guard_share`` of the nodes look dead
   at once, nobody is fenced: a fault is raised and the monitor waits (a
   partition of the observer is likelier than mass death).
4. Maintenance mode (cluster config) and ``fencing.enabled: false``
   disable fencing.
5. After a failed fence, ``failed_fence: migrate-after-self-fence``
   recovers the node's VMs only once the node must have stopped them
   itself: ``self_fence_after`` after this observer first saw its *session*
   gone (a node only self-fences when it loses its session), and never
   while its session is alive. A node suspected only for a stale keepalive
   keeps its VMs where they are; if its session comes back, the count
   starts over, and so does it after this observer's own disconnection.

Every step goes to the decision log. The fence itself and the recovery of
the node's VMs are in :mod:`pvc_core.daemon.recovery`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pvc_core.coordination.liveness import LivenessObserver, NodeLiveness
from pvc_core.coordination.lock import Lock
from pvc_core.daemon.context import NodeContext
from pvc_core.daemon.recovery import Fencer
from pvc_core.errors import LockTimeout, PVCError
from pvc_core.states import DaemonState
from pvc_core.store.watch import ZnodeWatch

#: Daemon states of nodes that are not judged (a cleanly stopped daemon
#: leaves its VMs running on purpose; a fenced node waits for its operator).
NOT_JUDGED = frozenset({DaemonState.STOP, DaemonState.FENCED})


@dataclass
class Suspect:
    """A node that looks dead, since when (observer's clock), and why.

    ``session_gone_since``: when (observer's clock) this observer first saw
    the node's session gone in the current outage, None while it is alive:
    the self-fence deadline counts from it. ``recovered``: its VMs were
    recovered after that deadline (once per outage).
    """

    since: float
    why: str
    failed_fence_at: float | None = None
    session_gone_since: float | None = None
    recovered: bool = False


class FenceMonitor:
    """Judges the other nodes every keepalive interval while this node is primary."""

    def __init__(self, ctx: NodeContext, acts_as_primary: Callable[[], bool],
                 fencer: Fencer | None = None) -> None:
        self.ctx = ctx
        self.acts_as_primary = acts_as_primary
        self.cfg = ctx.config.fencing
        self.interval = ctx.config.timers.keepalive_interval
        self.log = ctx.log("fence")
        self.observer = LivenessObserver(ctx.store.zk, ctx.store.ks, clock=ctx.clock)
        self.fencer = fencer or Fencer(ctx)
        self.suspects: dict[str, Suspect] = {}
        self._episode: set[str] = set()  # conditions already reported (storm, maintenance)
        self._wake = threading.Event()
        #: node -> when (observer's clock) it falls due for fencing, if suspect
        self._due_at: dict[str, float] = {}
        self._watches: list[ZnodeWatch] = []
        self._rearm = False
        #: set when this observer's own connection dropped: session-gone times restart
        self._blinded = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"fence-{ctx.me}", daemon=True)

    def start(self) -> None:
        # A node's session ending is judged at once, not at the next round.
        for node in self.ctx.config.cluster.nodes:
            if node != self.ctx.me:
                watch = ZnodeWatch(self.ctx.store.zk, self.ctx.store.ks.node_alive(node),
                                   lambda _path: self._wake.set())
                watch.arm()
                self._watches.append(watch)
        self.ctx.store.zk.add_listener(self._on_connection)
        self._thread.start()

    def _on_connection(self, state: str) -> None:
        """Re-arm the alive watches after any disconnection (kazoo may drop them)."""
        if state in ("SUSPENDED", "LOST"):
            self._rearm = True
            self._blinded.set()
        elif state == "CONNECTED" and self._rearm:
            self._rearm = False
            for watch in self._watches:
                watch.arm()

    def stop(self, timeout: float = 10.0) -> None:
        self.ctx.store.zk.remove_listener(self._on_connection)
        for watch in self._watches:
            watch.cancel()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.observer.close()

    def _loop(self) -> None:
        while not self.ctx.stopping.is_set():
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self.ctx.stopping.is_set():
                return
            try:
                self.tick()
            except PVCError as exc:
                self.log.warning("fence check failed: %s", exc)

    def _next_wait(self) -> float:
        """Until the next round: one interval, or less when a suspect falls due sooner
        (its fence, or its self-fence deadline)."""
        due = list(self._due_at.values())
        if not due:
            return self.interval
        return max(0.05, min(self.interval, min(due) - self.ctx.clock.monotonic()))

    # -- one round -----------------------------------------------------------

    def tick(self) -> None:
        """One judgement round (public for tests and the simulator)."""
        if not self.acts_as_primary():
            self.observer.reset()  # time not watched is never counted against a node
            self.suspects.clear()
            self._due_at.clear()
            return
        if not self.cfg.enabled:
            return
        if self.ctx.store.cluster.maintenance():
            self._once("maintenance", "maintenance mode: fencing is disabled")
            self.suspects.clear()
            self.observer.reset()
            return
        self._episode.discard("maintenance")
        lock = Lock(self.ctx.store.zk, self.ctx.store.ks.fence_lock(), self.ctx.me)
        try:
            lock.acquire(timeout=min(1.0, self.interval))
        except LockTimeout:
            return
        try:
            self._judge()
        finally:
            lock.release()

    def _judge(self) -> None:
        if self._blinded.is_set():
            # Time this observer could not see is never counted: a session-gone
            # time restarts at the next sighting (later, so never less safe).
            self._blinded.clear()
            for suspect in self.suspects.values():
                suspect.session_gone_since = None
        records = {n.name: n for n in self.ctx.store.nodes.all()}
        judged = sorted(n for n, r in records.items()
                        if n != self.ctx.me and r.daemon_state not in NOT_JUDGED)
        seen = self.observer.observe(judged)
        now = self.ctx.clock.monotonic()
        for name in list(self.suspects):
            if name not in seen:
                del self.suspects[name]
        for name, live in seen.items():
            self._update(name, live, now)
        due = [n for n, live in seen.items() if n in self.suspects and self._due(live)]
        self._due_at = self._wake_times(seen, due, now)
        if not self.suspects:
            self._episode.discard("storm")
            return
        share = len(self.suspects) / max(1, len(records))
        if share > self.cfg.storm_guard_share:
            msg = (f"{len(self.suspects)} of {len(records)} nodes look dead "
                   f"({', '.join(sorted(self.suspects))}): storm guard, fencing nobody")
            if self._once("storm", msg):
                self.ctx.store.faults.raise_fault("storm-guard", "cluster", msg, "critical")
            return
        self._episode.discard("storm")
        for name in due:
            self._fence_due(name, now)
        for name, live in seen.items():
            failed = self.suspects.get(name)
            if failed is not None and failed.failed_fence_at is not None:
                self._after_failed_fence(name, failed, live, now)

    def _wake_times(self, seen: dict[str, NodeLiveness], due: list[str],
                    now: float) -> dict[str, float]:
        """When (observer's clock) each suspect next needs a round: its fence, or
        the self-fence deadline it is waiting for."""
        out = {n: now + self._left(live) for n, live in seen.items()
               if n in self.suspects and n not in due}
        if self.cfg.failed_fence == "migrate-after-self-fence":
            for name, suspect in self.suspects.items():
                deadline = self._self_fence_deadline(suspect)
                if (deadline is not None and deadline > now and not suspect.recovered
                        and suspect.failed_fence_at is not None):
                    out[name] = min(out.get(name, deadline), deadline)
        return out

    def _update(self, name: str, live: NodeLiveness, now: float) -> None:
        dead = not live.session_alive or live.stale_for >= self.cfg.fence_intervals * self.interval
        suspect = self.suspects.get(name)
        if dead and suspect is None:
            why = ("its session is gone" if not live.session_alive else
                   f"no keepalive for {live.stale_for:.1f}s")
            self.suspects[name] = Suspect(now, why, session_gone_since=(
                None if live.session_alive else now))
            self.log.warning("%s is suspect: %s", name, why)
            self.ctx.decide("suspect", why, node=name, seq=live.seq,
                            session_alive=live.session_alive, stale_for=live.stale_for)
        elif not dead and suspect is not None and suspect.failed_fence_at is None:
            del self.suspects[name]
            self.log.info("%s came back within its saving throws", name)
            self.ctx.decide("saving-throw", "came back: not fenced", node=name,
                            seq=live.seq, suspect_for=now - suspect.since)
        elif suspect is not None:
            self._track_session(name, suspect, live, now)

    def _track_session(self, name: str, suspect: Suspect, live: NodeLiveness,
                       now: float) -> None:
        """Note when a suspect's session went (or came back): the self-fence clock."""
        if not live.session_alive and suspect.session_gone_since is None:
            suspect.session_gone_since = now
            self.log.warning("%s: its session is gone", name)
            self.ctx.decide("session-gone", "its session is gone: the self-fence deadline "
                            f"({self.cfg.self_fence_after:g}s) counts from now", node=name,
                            seq=live.seq, stale_for=live.stale_for)
        elif live.session_alive and suspect.session_gone_since is not None:
            suspect.session_gone_since = None
            suspect.recovered = False  # a new outage may need a new recovery
            self.log.warning("%s: it has a session again", name)
            self.ctx.decide("session-back", "it has a session again: the self-fence "
                            "deadline starts over", node=name, seq=live.seq,
                            session_id=live.session_id)

    def _due(self, live: NodeLiveness) -> bool:
        return self._left(live) <= 0

    def _left(self, live: NodeLiveness) -> float:
        """Seconds until a suspect node has used up its saving throws."""
        throws = self.cfg.saving_throws * self.interval
        if not live.session_alive:
            return throws - live.stale_for
        return self.cfg.fence_intervals * self.interval + throws - live.stale_for

    def _self_fence_deadline(self, suspect: Suspect) -> float | None:
        """When (observer's clock) the node must have self-fenced; None while its
        session is alive (a node with a session never self-fences)."""
        if suspect.session_gone_since is None:
            return None
        return suspect.session_gone_since + self.cfg.self_fence_after

    def _fence_due(self, name: str, now: float) -> None:
        suspect = self.suspects[name]
        if (suspect.failed_fence_at is not None
                and now - suspect.failed_fence_at < self.cfg.fence_intervals * self.interval):
            return  # a failed fence is retried after fence_intervals
        proved = self.fencer.fence(name, suspect.why)
        if proved:
            del self.suspects[name]
            self.observer.forget(name)
        else:
            suspect.failed_fence_at = now

    def _after_failed_fence(self, name: str, suspect: Suspect, live: NodeLiveness,
                            now: float) -> None:
        """``failed_fence: migrate-after-self-fence``: recover once the node's session
        has been gone for ``self_fence_after`` on this observer's clock, never while
        it is alive."""
        if self.cfg.failed_fence != "migrate-after-self-fence" or suspect.recovered:
            return
        deadline = self._self_fence_deadline(suspect)
        if live.session_alive or deadline is None or now < deadline:
            return
        suspect.recovered = self.fencer.after_self_fence_deadline(name)

    def _once(self, key: str, message: str) -> bool:
        """Log and record a condition once per episode; True the first time."""
        if key in self._episode:
            return False
        self._episode.add(key)
        self.log.warning("%s", message)
        self.ctx.decide(key, message)
        return True
