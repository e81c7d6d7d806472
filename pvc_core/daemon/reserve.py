"""The N-1 reserve check, run by the primary coordinator (DESIGN.md section 6).

Every keepalive interval, while this node acts as primary, the check of
:func:`pvc_core.placement.n_minus_one` runs over the node records and what
each node's last keepalive reports running (no VM is read, so it costs the
same with 10 VMs or 10000): could every running VM restart on the other
nodes if the largest ready node were lost? When it could not, the fault
``n-minus-one`` (subject ``cluster``, severity ``warning``) is raised with
the memory needed and available; when it can again, that fault is deleted.
Both changes also go to the decision log.

The fault is written only when the outcome or its numbers change (and once
after this node becomes primary, to take over what the previous primary
left), so a steady cluster costs two reads per interval and no writes. An
operator who deletes the fault while the condition lasts sees it again when
the numbers next change.

The reserve is a warning, not a placement constraint: define, migrate and
flush never refuse a target because of it (a flush, by design, uses the
reserve).
"""

from __future__ import annotations

from collections.abc import Callable

from pvc_core.daemon.context import NodeContext
from pvc_core.errors import NotFound, PVCError
from pvc_core.ops.view import reported_node_views
from pvc_core.placement import ReserveCheck, n_minus_one
from pvc_core.store.faults import fault_id

#: The fault's kind and subject (its id is derived from them).
FAULT_KIND = "n-minus-one"
FAULT_SUBJECT = "cluster"


class ReserveMonitor:
    """Raises and clears the N-1 reserve fault while this node acts as primary.

    :param ctx: the node daemon's shared parts.
    :param acts_as_primary: whether this node may make cluster-wide decisions now.
    """

    def __init__(self, ctx: NodeContext, acts_as_primary: Callable[[], bool]) -> None:
        self.ctx = ctx
        self.acts_as_primary = acts_as_primary
        self.interval = ctx.config.timers.keepalive_interval
        self.log = ctx.log("reserve")
        #: The last outcome this node wrote (None: unknown, e.g. not primary until now).
        self.last: ReserveCheck | None = None

    def run(self) -> None:
        """Check once per interval until the daemon stops (a thread's target)."""
        while not self.ctx.stopping.wait(self.interval):
            try:
                self.tick()
            except PVCError as exc:
                self.log.warning("N-1 reserve check failed: %s", exc)

    def tick(self) -> ReserveCheck | None:
        """One check (public for tests); None when this node is not primary."""
        if not self.acts_as_primary():
            self.last = None  # a later term starts from what the store says
            return None
        check = n_minus_one(reported_node_views(self.ctx.store))
        self._apply(check)
        return check

    def _apply(self, check: ReserveCheck) -> None:
        last = self.last
        if not check.ok:
            if last is None or last.ok or (last.needed_mib, last.available_mib) != (
                    check.needed_mib, check.available_mib):
                self.ctx.store.faults.raise_fault(FAULT_KIND, FAULT_SUBJECT, check.message(),
                                                  "warning")
                if last is None or last.ok:
                    self.log.warning("N-1 reserve lost: %s", check.message())
                    self.ctx.decide("n-minus-one", "reserve lost", needed_mib=check.needed_mib,
                                    available_mib=check.available_mib,
                                    largest_node=check.largest_node)
        elif last is None or not last.ok:
            try:
                self.ctx.store.faults.delete(fault_id(FAULT_KIND, FAULT_SUBJECT))
            except NotFound:
                pass
            if last is not None:
                self.log.info("N-1 reserve restored: %s", check.message())
                self.ctx.decide("n-minus-one", "reserve restored", needed_mib=check.needed_mib,
                                available_mib=check.available_mib,
                                largest_node=check.largest_node)
        self.last = check
