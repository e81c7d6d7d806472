"""The primary coordinator: which node runs the cluster's floating services.

A node listed in ``cluster.coordinators`` is ``secondary`` and contends for
primary through :mod:`pvc_core.coordination.election`; any other node is
``client``. Contention, planned moves (relinquish → takeover → primary in
lockstep through the lock queue, each step under the write side of the
primary-transition read/write lock, whose read side flushes take to wait for
a takeover to complete), session loss (services dropped at once,
from a worker thread) and crashes (replaced when the session expires) are
described in docs/coordinator.md, with what each state answers:
``is_primary()`` (takeover completed, services up), ``acts_as_primary()``
(``takeover`` or ``primary``: may start cluster-wide decisions such as
fencing) and ``holds_primary()`` (also ``relinquish``: no other node can be
primary right now). Nothing here sleeps to synchronise; every wait is
bounded."""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pvc_core.clock import Deadline
from pvc_core.coordination.election import (
    ACTS_AS_PRIMARY,
    HOLDS_PRIMARY,
    IS_PRIMARY,
    LockLost,
    PrimaryElection,
    PrimaryRequest,
    Verdict,
    judge,
    stale_claims,
)
from pvc_core.daemon.context import NodeContext
from pvc_core.errors import PVCError, VersionConflict
from pvc_core.hooks.results import HookResults
from pvc_core.states import CoordinatorState, can_transition
from pvc_core.store.codec import decode
from pvc_core.store.records import NodeRecord
from pvc_core.store.watch import ZnodeWatch

C = CoordinatorState

#: Compare-and-set attempts for a record write before giving up this step.
_CAS_TRIES = 10


class _Interrupted(Exception):
    """The services were dropped (session trouble) while a step was under way."""


@dataclass(frozen=True)
class Transition:
    """One change of this node's coordinator state (``at``: local monotonic clock)."""

    at: float
    old: CoordinatorState
    new: CoordinatorState
    reason: str


class Coordinator:
    """This node's part in primary election; start with :meth:`start`.

    :param ctx: the daemon's shared parts (store, hooks, config, clock).
    :param hook_deadline: seconds for ``pvc_became_primary`` and a planned
        ``pvc_relinquishing_primary``.
    :param drop_deadline: seconds for ``pvc_relinquishing_primary`` after
        session trouble (default: a quarter of the session timeout, 0.5-2 s).
    :param poll: how often the primary re-checks its claim and the request
        when no watch fires (default ``timers.keepalive_interval``).
    :param request_grace: how long the primary keeps a request it cannot
        satisfy (its target is not contending) before dropping it.
    """

    def __init__(self, ctx: NodeContext, *, hook_deadline: float = 10.0,
                 drop_deadline: float | None = None, poll: float | None = None,
                 request_grace: float | None = None) -> None:
        self.ctx = ctx
        self.me = ctx.me
        self.zk = ctx.store.zk
        self.log = ctx.log("coordinator")
        self.is_coordinator = ctx.me in ctx.config.cluster.coordinators
        session = ctx.config.zookeeper.session_timeout
        self.hook_deadline = hook_deadline
        self.drop_deadline = (drop_deadline if drop_deadline is not None
                              else max(0.5, min(2.0, session / 4)))
        self.poll = poll if poll is not None else ctx.config.timers.keepalive_interval
        self.request_grace = (request_grace if request_grace is not None
                              else max(10.0, 2 * session))
        #: How long one queueing for the lock lasts before it is renewed.
        self.lock_wait = max(30.0, 3 * session)
        self.election = PrimaryElection(self.zk, ctx.store.ks, ctx.me, clock=ctx.clock)
        #: The last state changes, oldest first (for tests and diagnostics).
        self.history: deque[Transition] = deque(maxlen=200)
        self._cond = threading.Condition()
        self._state = C.SECONDARY if self.is_coordinator else C.CLIENT
        self._gen = 0          # bumped by every drop: interrupts the step under way
        self._epoch = 0        # bumped by every SUSPENDED/LOST event
        self._claim_epoch = 0  # the epoch when the current takeover began
        self._record_dirty = False
        self._decisions: list[tuple[str, dict[str, Any]]] = []
        self._events: queue.SimpleQueue[tuple[int, str] | None] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._lost = threading.Event()
        self._halt = threading.Event()
        self._quiet = False  # stop without writing anything (simulated power loss)
        self._started = False
        self._watches: list[ZnodeWatch] = []
        self._main = threading.Thread(target=self._run, name=f"coordinator-{self.me}",
                                      daemon=True)
        self._guard = threading.Thread(target=self._guard_loop,
                                       name=f"coordinator-guard-{self.me}", daemon=True)

    # -- what other parts ask ---------------------------------------------------

    @property
    def state(self) -> CoordinatorState:
        with self._cond:
            return self._state

    def is_primary(self) -> bool:
        """True in ``primary`` only: takeover completed, floating services up."""
        return self.state in IS_PRIMARY

    def acts_as_primary(self) -> bool:
        """True in ``takeover`` and ``primary``: may start cluster-wide decisions."""
        return self.state in ACTS_AS_PRIMARY

    def holds_primary(self) -> bool:
        """True in ``takeover``, ``primary`` and ``relinquish``: no other node can be primary."""
        return self.state in HOLDS_PRIMARY

    def wait_state(self, *states: CoordinatorState, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until this node is in one of ``states``."""
        with self._cond:
            return self._cond.wait_for(lambda: self._state in states, timeout)

    def wait_primary(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until this node is ``primary``."""
        return self.wait_state(C.PRIMARY, timeout=timeout)

    # -- start and stop -----------------------------------------------------------

    def start(self) -> None:
        """Write this node's role to its record and, for a coordinator, start contending.

        The initial role is written as is (a restarted primary's record is
        reset to ``secondary``: its previous process is gone).
        :raises StoreUnavailable: the record could not be written.
        """
        if self._started:
            return
        nodes = self.ctx.store.nodes
        if not self.is_coordinator:
            nodes.set_states(self.me, coordinator_state=C.CLIENT)
            self._started = True
            self.log.info("%s is not a coordinator: state client, never contends for primary",
                          self.me)
            return
        nodes.set_states(self.me, coordinator_state=C.SECONDARY)
        self._started = True
        self.log.info("%s is a coordinator: state secondary, contending for primary", self.me)
        self.zk.add_listener(self._on_state)
        wake = self._on_watch
        self._watches = [self.election.watch_request(wake), self.election.watch_claim(wake)]
        self._arm_watches()
        self._guard.start()
        self._main.start()

    def stop(self, timeout: float = 10.0, *, relinquish: bool = True) -> None:
        """Stop contending. Idempotent.

        With ``relinquish`` (a clean stop) a primary hands over first: hook,
        claim cleared, record ``secondary``, lock released, so another
        coordinator takes over at once. Without it (a simulated power loss)
        nothing more is written to ZooKeeper: the floating services are
        dropped locally and the lock goes when the session does.
        """
        if not self._started or not self.is_coordinator:
            return
        self._quiet = not relinquish
        self._halt.set()
        self._wake.set()
        self._events.put(None)
        deadline = Deadline(timeout)
        while self._main.is_alive() and not deadline.expired():
            self.election.cancel()  # again each time: an acquire starting now clears it
            self._main.join(min(0.1, deadline.remaining()))
        if self._guard.is_alive():
            self._guard.join(max(0.1, deadline.remaining()))
        for w in self._watches:
            w.cancel()
        self.zk.remove_listener(self._on_state)
        if self._main.is_alive():
            self.log.warning("coordinator of %s did not stop within %gs", self.me, timeout)

    def _stopping(self) -> bool:
        return self._halt.is_set()

    # -- events (kazoo's thread: only flags, events, a queue) -----------------------

    def _on_state(self, state: str) -> None:
        if state in ("SUSPENDED", "LOST"):
            with self._cond:
                self._epoch += 1
                epoch = self._epoch
            if state == "LOST":
                self._lost.set()
            self._events.put((epoch, state))
        self._wake.set()

    def _on_watch(self, _what: Any) -> None:
        self._wake.set()

    def _arm_watches(self) -> None:
        for w in self._watches:
            w.arm()

    # -- the guard: drops the services at once on session trouble -------------------

    def _guard_loop(self) -> None:
        while not self._halt.is_set():
            try:
                item = self._events.get(timeout=self.poll)
            except queue.Empty:
                continue
            if item is None:
                return
            epoch, state = item
            try:
                self._drop("ZooKeeper session lost" if state == "LOST"
                           else "ZooKeeper connection suspended", epoch)
            except Exception:  # noqa: BLE001 - the guard must keep guarding
                self.log.exception("dropping the floating services failed")

    def _drop(self, reason: str, epoch: int | None = None) -> bool:
        """Go ``secondary`` now and bring the floating services down; True if it did.

        Called by the guard (``epoch``: of the session event; an event older
        than the current takeover is ignored) and by the worker (always).
        The record is written later, by the worker, once ZooKeeper answers.
        """
        with self._cond:
            if self._state not in HOLDS_PRIMARY:
                return False
            if epoch is not None and epoch <= self._claim_epoch:
                return False
            old = self._state
            self._state = C.SECONDARY
            self._gen += 1
            self._record_dirty = True
            self.history.append(Transition(self.ctx.clock.monotonic(), old, C.SECONDARY,
                                           reason))
            self._cond.notify_all()
        self.log.warning("%s while %s: dropping the floating services now", reason, old)
        results = self.ctx.hooks.call_with_deadline(
            "pvc_relinquishing_primary", self.drop_deadline, node=self.me)
        self._hook_report(results, "dropping the floating services")
        self._queue_decision("secondary", was=old.value, reason=reason,
                             services_dropped=results.ok)
        self._wake.set()
        return True

    # -- the worker -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping():
            try:
                if not self.zk.connected:
                    self._drop("ZooKeeper connection suspended")
                    self.zk.wait_connected(min(1.0, self.poll))
                    continue
                self._step()
            except _Interrupted:
                continue
            except LockLost as exc:
                self._drop(str(exc))
            except PVCError as exc:
                self.log.warning("coordinator step failed: %s", exc)
                self._mark_dirty()
                self._halt.wait(min(1.0, self.poll))
            except Exception:  # noqa: BLE001 - the worker must survive a defect
                self.log.exception("coordinator step failed")
                self._mark_dirty()
                self._halt.wait(min(1.0, self.poll))
        self._finish()

    def _step(self) -> None:
        if self._lost.is_set():
            self._lost.clear()
            self._drop("ZooKeeper session lost")
        self._sync()
        if self._stopping():
            return
        state = self.state
        if state is C.RELINQUISH:
            self._relinquish("finishing an interrupted relinquish")
            return
        if not self.election.held:
            if state in HOLDS_PRIMARY:
                self._drop("the primary lock is gone")
            if not self.election.acquire(self.lock_wait):
                return
            self.log.info("%s holds the primary lock", self.me)
            state = self.state
        request = self.election.read_request()
        verdict = self._judge(request)
        if verdict is Verdict.YIELD:
            assert request is not None
            if state in HOLDS_PRIMARY:
                self._relinquish(f"planned move: {request.describe()}")
            else:
                self._yield(request)
            return
        if state is not C.PRIMARY:
            self._takeover(request)
        self._serve()

    def _judge(self, request: PrimaryRequest | None) -> Verdict:
        if request is None:
            return Verdict.PROCEED
        return judge(self.me, request, self.election.contenders())

    def _yield(self, request: PrimaryRequest) -> None:
        self.election.release()
        self.log.info("planned move pending (%s): released the primary lock for %s",
                      request.describe(), request.target or "another coordinator")
        self._decide("yield", request=request.id, target=request.target,
                     source=request.source)

    @contextmanager
    def _transition(self, what: str) -> Iterator[None]:
        """Run ``what`` under the primary-transition write lock (PrimaryElection.transition)."""
        with self.election.transition(self.hook_deadline) as problem:
            if problem is not None:
                self.log.warning("%s without the primary-transition lock: %s", what, problem)
            yield

    def _takeover(self, request: PrimaryRequest | None) -> None:
        with self._transition("takeover"):
            self._takeover_steps(request)

    def _takeover_steps(self, request: PrimaryRequest | None) -> None:
        gen = self._gen_now()
        reason = (f"planned move: {request.describe()}" if request is not None
                  else "won the primary lock")
        self._set(C.TAKEOVER, gen, reason, guarded=True)
        self._demote_stale()  # first: a record saying primary always matches the claim
        self._check(gen)
        self.election.claim()
        self._check(gen)
        results = self.ctx.hooks.call_with_deadline("pvc_became_primary", self.hook_deadline,
                                                    node=self.me)
        if self._hook_report(results, "bringing the floating services up"):
            self._fault("primary-services", "floating services did not all come up on "
                        f"{self.me}: " + "; ".join(results.problems()))
        if self._gen_now() != gen:
            self.log.warning("the session faltered while the floating services came up:"
                             " bringing them down again")
            self.ctx.hooks.call_with_deadline("pvc_relinquishing_primary", self.drop_deadline,
                                              node=self.me)
            raise _Interrupted
        self._set(C.PRIMARY, gen, "takeover complete", guarded=True)

    def _serve(self) -> None:
        """Stay primary until a request, a stop or session trouble says otherwise."""
        unsatisfiable_since: dict[str, float] = {}
        self._arm_watches()  # idempotent; covers watches lost with a session
        while not self._stopping():
            self._wake.clear()
            if (self.state is not C.PRIMARY or not self.election.held
                    or not self.zk.connected or self._lost.is_set()):
                return
            request = self.election.read_request()
            verdict = self._judge(request)
            wait = self.poll
            if request is not None and verdict is Verdict.YIELD:
                self._relinquish(f"planned move: {request.describe()}")
                return
            if request is not None and verdict is Verdict.SATISFIED:
                if self.election.clear_request(request):
                    self.log.info("planned move done (%s): request cleared",
                                  request.describe())
                    self._decide("request-done", request=request.id,
                                 target=request.target, source=request.source)
            elif request is not None and verdict is Verdict.UNSATISFIABLE:
                now = self.ctx.clock.monotonic()
                first = unsatisfiable_since.setdefault(request.id, now)
                left = self.request_grace - (now - first)
                if first == now:
                    self.log.warning("planned move (%s) cannot happen now: %s is not"
                                     " contending; waiting %gs", request.describe(),
                                     request.target or "no other coordinator",
                                     self.request_grace)
                if left <= 0:
                    if self.election.clear_request(request):
                        self.log.warning("planned move (%s) dropped: nobody to hand over to",
                                         request.describe())
                        self._decide("request-dropped", request=request.id,
                                     target=request.target, source=request.source,
                                     why="target not contending")
                else:
                    self.election.watch_contenders(self._on_watch)
                    wait = min(wait, left)
            self._verify_claim()
            self._wake.wait(wait)

    def _verify_claim(self) -> None:
        name, _ = self.election.read_claim()
        if name != self.me:
            self.log.warning("cluster/primary names %s but %s holds the primary lock:"
                             " claiming it again", name or "nobody", self.me)
            self.election.claim()
            self._decide("reclaimed", found=name)

    def _relinquish(self, reason: str) -> None:
        """Planned step-down: services down while still holding the lock, then release."""
        with self._transition("relinquish"):
            self._relinquish_steps(reason)

    def _relinquish_steps(self, reason: str) -> None:
        gen = self._gen_now()
        if self.state is C.PRIMARY:
            self._set(C.RELINQUISH, gen, reason, guarded=True)
        results = self.ctx.hooks.call_with_deadline("pvc_relinquishing_primary",
                                                    self.hook_deadline, node=self.me)
        self._hook_report(results, "bringing the floating services down")
        self._check(gen)
        try:
            self.election.unclaim()
        except LockLost:
            pass  # the lock is gone: whatever cluster/primary says now is not ours
        self._set(C.SECONDARY, gen, reason, guarded=False)
        self.election.release()
        self.log.info("released the primary lock (%s)", reason)

    def _finish(self) -> None:
        """The worker is stopping: hand over cleanly if we can, drop otherwise."""
        if self._quiet:
            self._drop("stopped without handing over (power loss)")
            return
        try:
            if self.state in HOLDS_PRIMARY:
                if self.zk.connected and self.election.held:
                    self._relinquish("node daemon stopping")
                else:
                    self._drop("stopping without ZooKeeper or the primary lock")
        except (_Interrupted, PVCError) as exc:
            self.log.warning("clean relinquish failed while stopping: %s", exc)
            self._drop("stopping")
        for fn in (self.election.release, self._sync):
            try:
                fn()
            except PVCError as exc:
                self.log.warning("coordinator cleanup: %s", exc)

    # -- state, records, decisions ----------------------------------------------------

    def _gen_now(self) -> int:
        with self._cond:
            return self._gen

    def _check(self, gen: int) -> None:
        if self._gen_now() != gen:
            raise _Interrupted

    def _set(self, new: CoordinatorState, gen: int, reason: str, *, guarded: bool) -> None:
        """Write ``new`` to the record (guarded: only while our lock node exists),
        then make it the local state, log it and record the decision.

        The record comes first, so whoever sees :meth:`is_primary` true finds
        the record saying so too. A drop in between wins: the step is
        interrupted and the record rewritten from the local state.
        """
        with self._cond:
            if self._gen != gen:
                raise _Interrupted
            old = self._state
            if old is not new and not can_transition(old, new):
                raise PVCError(f"coordinator of {self.me}: {old.value} cannot change to"
                               f" {new.value} (a defect)")
            if new is C.TAKEOVER:
                self._claim_epoch = self._epoch
        self._write_record(new, guarded=guarded)
        with self._cond:
            if self._gen != gen:
                raise _Interrupted
            self._state = new
            if old is not new:
                self.history.append(Transition(self.ctx.clock.monotonic(), old, new, reason))
            self._cond.notify_all()
        if old is not new:
            self.log.info("coordinator state %s -> %s: %s", old.value, new.value, reason)
            self._decide(new.value, was=old.value, reason=reason)

    def _write_record(self, state: CoordinatorState, *, guarded: bool) -> None:
        nodes = self.ctx.store.nodes
        if not guarded:
            nodes.set_states(self.me, coordinator_state=state)
            return
        for _ in range(_CAS_TRIES):
            current = nodes.get(self.me)
            record = dataclasses.replace(current.value, coordinator_state=state)
            try:
                self.election.transact([nodes.write_op(record, current.version)])
            except VersionConflict:
                continue
            return
        raise VersionConflict(f"the record of {self.me} keeps changing")

    def _demote_stale(self) -> None:
        """Set other nodes' records that still claim the lock back to ``secondary``."""
        nodes, ks = self.ctx.store.nodes, self.ctx.store.ks
        names = [n for n in nodes.names() if n != self.me]
        found: dict[str, tuple[NodeRecord, int]] = {}
        for name, got in zip(names, self.zk.get_many([ks.node(n) for n in names]),
                             strict=True):
            if got is None or not got[0]:
                continue
            try:
                found[name] = (NodeRecord.from_dict(decode(got[0], ks.node(name))),
                               int(got[1].version))
            except (PVCError, KeyError, ValueError, TypeError):
                continue  # not a record we can judge
        states = {n: rec.coordinator_state for n, (rec, _) in found.items()}
        for name in stale_claims(self.me, states):
            record, version = found[name]
            fixed = dataclasses.replace(record, coordinator_state=C.SECONDARY)
            try:
                self.election.transact([nodes.write_op(fixed, version)])
            except VersionConflict:
                continue  # its own daemon is writing it right now
            self.log.warning("%s's record said %s while %s holds the primary lock:"
                             " set it to secondary", name, record.coordinator_state.value,
                             self.me)
            self._decide("demoted", demoted=name, was=record.coordinator_state.value)

    def _sync(self) -> None:
        """Write a state the guard changed, and the decisions it queued."""
        with self._cond:
            dirty, state = self._record_dirty, self._state
            self._record_dirty = False
        if dirty:
            try:
                self._write_record(state, guarded=state in HOLDS_PRIMARY)
            except LockLost:
                raise  # the worker drops; the drop marks the record dirty again
            except BaseException:
                with self._cond:
                    self._record_dirty = True
                raise
        self._flush_decisions()

    def _mark_dirty(self) -> None:
        """A step failed midway: rewrite the record from the local state next time
        (a write whose outcome is unknown may have landed)."""
        with self._cond:
            self._record_dirty = True

    def _queue_decision(self, outcome: str, **inputs: Any) -> None:
        with self._cond:
            self._decisions.append((outcome, inputs))

    def _flush_decisions(self) -> None:
        with self._cond:
            pending, self._decisions = self._decisions, []
        for outcome, inputs in pending:
            self.ctx.decide("primary", outcome, **inputs)

    def _decide(self, outcome: str, **inputs: Any) -> None:
        self._queue_decision(outcome, **inputs)
        self._flush_decisions()

    def _hook_report(self, results: HookResults, what: str) -> bool:
        """Log plugins that failed or overran; True if there were any."""
        problems = results.problems()
        if problems:
            self.log.warning("%s: %s", what, "; ".join(problems))
        return bool(problems)

    def _fault(self, kind: str, message: str) -> None:
        try:
            self.ctx.store.faults.raise_fault(kind, self.me, message, "warning")
        except PVCError as exc:
            self.log.warning("could not raise fault %s: %s", kind, exc)
