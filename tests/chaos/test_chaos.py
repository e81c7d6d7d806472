"""Chaos: 4 node daemons, 40 VMs, a 3-member ZooKeeper ensemble, faults one after another.

The cluster is a real :class:`~pvc_local.cluster.LocalCluster`: four
``pvcnoded`` processes (the ``fake`` hypervisor, publishing its domains in
``DIR/nodeN/hypervisor.json``), a simulated BMC per node (fencing is real
IPMI: ipmitool over lanplus to pyghmi BMCs whose power-off SIGKILLs the
node's daemon, and with it the node's guests) and a 3-member ZooKeeper
ensemble. 40 VMs are defined and started, spread by placement.

Six kinds of fault, in :data:`ROUNDS` rounds (``PVC_CHAOS_ROUNDS``,
default 4): each round injects every kind once, in an order and on victims
chosen by ``random.Random(SEED)`` (``PVC_CHAOS_SEED``, printed in the
header and the report), so the same seed gives the same sequence:

``sigkill``
    SIGKILL a node's daemon (a crash: its guests die with it). The primary
    fences it through its BMC (which finds nothing more to kill), its VMs
    are recovered elsewhere.
``sigstop``
    SIGSTOP a node's daemon (a hang: its guests go on running). It is
    fenced through its BMC, which SIGKILLs it; only then are its VMs
    recovered elsewhere, which is what the sampler checks.
``expire``
    Expire the node's ZooKeeper session, for real: the session id is the
    ``ephemeralOwner`` of the node's ``alive`` znode, and its password is
    what the server derives from the id
    (:func:`pvc_local.zookeeper.session_password`), so the test joins the
    session and closes it while the daemon runs on. The daemon opens a new
    session and announces itself again; the primary either sees it back
    within its saving throws or fences it. Both are correct; the report
    says which happened.
``kill-primary``
    SIGKILL the node that ``cluster/primary`` names. Another coordinator
    takes over once the session expires, and fences it.
``zk-kill-one``
    SIGKILL one ZooKeeper member. The cluster keeps working: every node's
    keepalive advances and a VM restart requested meanwhile completes.
    Then the member is started again.
``zk-quorum-loss``
    Stop two of the three members, hold the outage for
    :data:`QUORUM_LOSS_HOLD` (longer than the session timeout, shorter
    than ``self_fence_after``), start them again. During the outage nobody
    is fenced (no fence decision, every BMC still reads on), every daemon
    process stays alive, every VM keeps running (the sampler's count never
    drops) and no test thread hangs (a ZooKeeper read fails within its
    deadline; the sampler keeps sampling). After it, every node's
    keepalive advances again.

After every fault, every VM must run again on exactly the node its
placement names within :data:`RECOVERY_BOUND`; a fenced node is then
started again and readied (its VMs come home) so the next fault finds
four nodes. Throughout, the invariant sampler (:mod:`tests.chaos.sampler`)
reads every node's hypervisor directly every 100 ms and the last test
fails if any VM was ever active on two nodes at once.
"""

from __future__ import annotations

import os
import random
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvc_core.errors import PVCError
from pvc_core.ops.vms import define_vm, set_vm_state
from pvc_core.states import VMState
from pvc_local import configgen, procs
from pvc_local.cluster import HYPERVISOR_STATE_FILE, LocalCluster
from pvc_local.procs import ProcState
from pvc_local.zookeeper import expire_session_id

from .conftest import missing_tools, report, seed
from .harness import FENCE_KINDS, Chaos, Mark, wait_until
from .sampler import PERIOD, InvariantSampler

# Per item (fixture set-up included): a step is bounded by its waits; this is the last resort.
pytestmark = [pytest.mark.zookeeper, pytest.mark.ensemble, pytest.mark.timeout(300)]

SEED = seed()
NODES = 4
VM_COUNT = 40
VM_MEMORY_MIB = 256
NODE_MEMORY_MIB = 8192  # three nodes hold all 40 VMs (10 GiB) with room to spare
ZK_MEMBERS = 3

# Timers of the chaos cluster (docs/chaos.md lists the defaults they replace).
KEEPALIVE = 1.0  # timers.keepalive_interval
SESSION_TIMEOUT = 4.0  # zookeeper.session_timeout (tickTime 500 ms: clamped to 1-10 s)
FENCE_INTERVALS = 3  # fencing.fence_intervals (default 6)
SAVING_THROWS = 1  # fencing.saving_throws (default 2)
SELF_FENCE_AFTER = 20.0  # fencing.self_fence_after: longer than any quorum-loss window here
POWER_OFF_TIMEOUT = 10.0  # fencing.power_off_timeout

# The recovery bound: detection + fence + restart.
#
# detection: a dead primary is replaced when its session expires
#   (SESSION_TIMEOUT); a dead other node is suspect after FENCE_INTERVALS
#   silent intervals or once its session expired, whichever is first. The
#   judging primary (a fresh one starts its observation at takeover) then
#   gives it SAVING_THROWS intervals, and judges once per interval (one more
#   interval of granularity, one for the takeover itself):
#       SESSION_TIMEOUT + (FENCE_INTERVALS + SAVING_THROWS + 2) * KEEPALIVE
#   covers every path (a non-primary is usually fenced after
#   (FENCE_INTERVALS + SAVING_THROWS + 1) * KEEPALIVE).
# fence: ipmitool power off, then power status until it reads off (~30 ms
#   per call; the BMC waits for its victim to be gone): FENCE_MARGIN.
# restart: breaking the leases and placing ~10 VMs (a few ZooKeeper writes
#   each), then their new nodes' reconcilers take the leases and start them:
#   RESTART_MARGIN. Both margins allow for a busy 2-core machine.
DETECTION = SESSION_TIMEOUT + (FENCE_INTERVALS + SAVING_THROWS + 2) * KEEPALIVE
FENCE_MARGIN = 5.0
RESTART_MARGIN = 10.0
RECOVERY_BOUND = DETECTION + FENCE_MARGIN + RESTART_MARGIN  # 25 s

#: How long two ZooKeeper members stay down (the outage also includes their restart).
QUORUM_LOSS_HOLD = SESSION_TIMEOUT + 2 * KEEPALIVE
#: Deadline of one ZooKeeper call from this test (cluster.store(): op_timeout 5 s) + slack.
CALL_DEADLINE = 5.0 + 2.0
#: A znode outside the cluster's keyspace that the test writes to probe for a quorum.
PROBE = "/chaos-probe"

OVERRIDES = {
    "zookeeper": {"session_timeout": SESSION_TIMEOUT},
    "timers": {"keepalive_interval": KEEPALIVE},
    "fencing": {"fence_intervals": FENCE_INTERVALS, "saving_throws": SAVING_THROWS,
                "self_fence_after": SELF_FENCE_AFTER, "power_off_timeout": POWER_OFF_TIMEOUT},
}

FAULTS = ("sigkill", "sigstop", "expire", "kill-primary", "zk-kill-one", "zk-quorum-loss")
#: Rounds of the six faults (each round in its own seeded order, with its own victims).
ROUNDS = int(os.environ.get("PVC_CHAOS_ROUNDS", "4"))


@dataclass(frozen=True)
class Step:
    """One fault of the run: what, on whom (a node, ``primary``, ZooKeeper members)."""

    index: int
    fault: str
    target: str
    vm: int = -1  # zk-kill-one: the VM (index) restarted while a member is down

    @property
    def id(self) -> str:
        return f"{self.index:02d}-{self.fault}-{self.target}"

    def members(self) -> list[int]:
        return [int(m.removeprefix("zk")) for m in self.target.split("+")]


def plan(seed: int, rounds: int = ROUNDS) -> list[Step]:
    """The faults in the order, and on the victims, that ``seed`` chooses."""
    rng = random.Random(seed)
    order = []
    for _ in range(rounds):
        kinds = list(FAULTS)
        rng.shuffle(kinds)
        order += kinds
    names = configgen.node_names(NODES)
    steps = []
    for index, fault in enumerate(order, start=1):
        vm = -1
        if fault in ("sigkill", "sigstop", "expire"):
            target = rng.choice(names)
        elif fault == "kill-primary":
            target = "primary"
        elif fault == "zk-kill-one":
            target = f"zk{rng.randint(1, ZK_MEMBERS)}"
            vm = rng.randrange(VM_COUNT)
        else:
            target = "+".join(f"zk{m}" for m in sorted(rng.sample(range(1, ZK_MEMBERS + 1), 2)))
        steps.append(Step(index, fault, target, vm))
    return steps


def parse_plan(text: str) -> list[Step]:
    """``PVC_CHAOS_PLAN``: ``fault:target[:vm],...`` replays a given sequence (debugging)."""
    steps = []
    for index, item in enumerate(filter(None, (i.strip() for i in text.split(","))), start=1):
        fault, _, rest = item.partition(":")
        target, _, vm = rest.partition(":")
        if fault not in FAULTS or not target:
            raise pytest.UsageError(f"PVC_CHAOS_PLAN: bad step {item!r} (fault:target[:vm], "
                                    f"faults: {', '.join(FAULTS)})")
        steps.append(Step(index, fault, target, int(vm) if vm else 0))
    return steps


PLAN = parse_plan(os.environ["PVC_CHAOS_PLAN"]) if os.environ.get("PVC_CHAOS_PLAN") \
    else plan(SEED)


def vm_xml(rng: random.Random, index: int) -> str:
    uuid = uuidlib.UUID(int=rng.getrandbits(128), version=4)
    return (f"<domain type='kvm'><name>chaos-vm-{index:02d}</name><uuid>{uuid}</uuid>"
            f"<memory unit='MiB'>{VM_MEMORY_MIB}</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os></domain>")


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    why = missing_tools()
    if why:
        pytest.skip(why)
    report(f"seed {SEED} (PVC_CHAOS_SEED); plan: {', '.join(s.id for s in PLAN)}")
    report(f"recovery bound {RECOVERY_BOUND:g}s = session {SESSION_TIMEOUT:g} + "
           f"({FENCE_INTERVALS} fence intervals + {SAVING_THROWS} saving throws + 2) x "
           f"{KEEPALIVE:g}s keepalive + fence {FENCE_MARGIN:g} + restart {RESTART_MARGIN:g}")
    cluster = LocalCluster(tmp_path_factory.mktemp("chaos"))
    sampler = None
    store = None
    chaos = None
    # Daemons inherit it: SIGABRT then dumps every thread's stack into the node's log.
    faulthandler = os.environ.get("PYTHONFAULTHANDLER")
    os.environ["PYTHONFAULTHANDLER"] = "1"
    try:
        start = time.monotonic()
        state = cluster.up(nodes=NODES, hypervisor="fake", node_memory_mib=NODE_MEMORY_MIB,
                           zk_members=ZK_MEMBERS, config_overrides=OVERRIDES, wait=120)
        store = cluster.store()
        store.zk.ensure_path(PROBE)
        files = {n.name: Path(n.state_dir).parent / HYPERVISOR_STATE_FILE for n in state.nodes}
        sampler = InvariantSampler(files)
        sampler.start()
        rng = random.Random(f"{SEED}-vms")
        vms = {}
        for i in range(VM_COUNT):
            rec = define_vm(store, vm_xml(rng, i), start=True, by="chaos")
            vms[rec.uuid] = rec.name
        chaos = Chaos(cluster, store, sampler, vms, RECOVERY_BOUND)
        chaos.converge(60, f"{VM_COUNT} VMs running")
        spread = {n: 0 for n in chaos.names}
        for rec in store.vms.all():
            spread[rec.placement.node or "-"] = spread.get(rec.placement.node or "-", 0) + 1
        report(f"cluster up with {VM_COUNT} VMs running in {time.monotonic() - start:.1f}s "
               f"(ZooKeeper {state.zk_hosts}; VMs per node {spread}; dir {cluster.directory})")
        yield chaos
    finally:
        if faulthandler is None:
            os.environ.pop("PYTHONFAULTHANDLER", None)
        else:
            os.environ["PYTHONFAULTHANDLER"] = faulthandler
        if sampler is not None:
            sampler.stop()
        if chaos is not None and chaos.failed:
            dumped = chaos.dump_stacks()
            if dumped:
                report(f"a step failed: thread stacks of the live daemons (SIGABRT) in "
                       f"{', '.join(dumped)}")
        if store is not None:
            store.close()
        cluster.down(timeout=20)


# -- the faults ---------------------------------------------------------------------


def fenced_and_recovered(ch: Chaos, victim: str, mark: Mark, offs_before: int,
                         killed: list[int]) -> str:
    """After a node death or hang: fenced through its BMC, every VM running again.

    ``offs_before`` is how many power-offs the victim's BMC had logged before
    the fault, ``killed`` the PIDs the fence's power-off must have killed (a
    hung daemon; none for a dead one). Returns the timeline (seconds after
    the fault): detection (the primary's ``suspect``), ``fence-attempt``,
    ``fenced``, and recovered (every VM running on its placement node, as
    the sampler reads the hypervisors).
    """
    ch.await_fenced(victim, mark, RECOVERY_BOUND)
    assert ch.power_states()[victim] == "off", "fenced, but the BMC does not read off"
    assert procs.proc_state(ch.cluster.record().node(victim).process) is ProcState.DEAD, \
        f"{victim} was fenced but its daemon still exists"
    offs = ch.bmc_power_offs(victim)[offs_before:]
    assert offs == [killed], f"{victim}'s BMC powered off {offs}, expected once, killing {killed}"
    ch.converge(max(0.0, RECOVERY_BOUND - mark.since()), f"VMs of {victim} recovered")
    recovered = mark.since()
    times = ch.timeline(ch.decisions(mark, victim), mark)
    return (f"detected +{times.get('suspect', float('nan')):.1f}s, fence-attempt "
            f"+{times.get('fence-attempt', float('nan')):.1f}s, fenced "
            f"+{times.get('fenced', float('nan')):.1f}s, recovered +{recovered:.1f}s "
            f"(bound {RECOVERY_BOUND:g}s)")


def revived(ch: Chaos, node: str) -> str:
    took, home = ch.revive(node)
    return f"{node} restarted and readied, {home} VMs back home, in {took:.1f}s"


def fault_sigkill(ch: Chaos, step: Step) -> str:
    offs = len(ch.bmc_power_offs(step.target))
    mark = Mark()
    ch.cluster.kill(step.target)
    timeline = fenced_and_recovered(ch, step.target, mark, offs, [])  # nothing left to kill
    return f"{timeline}; {revived(ch, step.target)}"


def fault_sigstop(ch: Chaos, step: Step) -> str:
    offs = len(ch.bmc_power_offs(step.target))
    process = ch.cluster.record().node(step.target).process
    assert process is not None
    mark = Mark()
    ch.cluster.hang(step.target)
    # The fence's power-off is what kills the hung daemon.
    timeline = fenced_and_recovered(ch, step.target, mark, offs, [process.pid])
    return f"{timeline}; {revived(ch, step.target)}"


def fault_expire(ch: Chaos, step: Step) -> str:
    victim = step.target
    old = ch.alive_owner(victim)
    assert old, f"{victim} has no alive znode to expire"
    process = ch.cluster.record().node(victim).process
    assert process is not None
    offs = len(ch.bmc_power_offs(victim))
    mark = Mark()
    expire_session_id(ch.cluster.zk_hosts, old)

    def settled() -> list[str]:
        if any(d.kind == "fenced" for d in ch.decisions(mark, victim)):
            return []
        owner = ch.alive_owner(victim)
        return [] if owner not in (None, old) else [f"{victim}'s alive znode owner {owner}"]

    wait_until(settled, RECOVERY_BOUND, f"{victim} back with a new session, or fenced")
    back_after = mark.since()
    # Let the primary finish judging: every suspicion ends in a saving throw or a fence,
    # and it has had the rounds a fence would take.
    wait_until(lambda: judged(ch, victim, mark), RECOVERY_BOUND, f"{victim} judged")
    keepalives_advance(ch, FENCE_INTERVALS + SAVING_THROWS + 2, RECOVERY_BOUND,
                       f"keepalives after {victim}'s session expired")
    wait_until(lambda: judged(ch, victim, mark), RECOVERY_BOUND, f"{victim} judged")
    decisions = ch.decisions(mark, victim)
    expired = f"session 0x{old:x} expired, a new one announced after {back_after:.1f}s"
    if any(d.kind in FENCE_KINDS for d in decisions):
        timeline = fenced_and_recovered(ch, victim, mark, offs, [process.pid])
        return (f"{expired}; fenced (its session was gone past its saving throws): "
                f"{timeline}; {revived(ch, victim)}")
    ch.converge(max(0.0, RECOVERY_BOUND - mark.since()), "every VM still running")
    assert ch.cluster.record().node(victim).process == process
    assert procs.proc_state(process) is ProcState.ALIVE, f"{victim}'s daemon died"
    times = ch.timeline(decisions, mark)
    return f"{expired}; not fenced (decisions: {format_times(times) or 'none'})"


def judged(ch: Chaos, victim: str, mark: Mark) -> list[str]:
    """Every ``suspect`` of the victim since the mark was followed by a verdict."""
    open_since = None
    for d in ch.decisions(mark, victim):
        if d.kind == "suspect":
            open_since = open_since or d.time
        elif d.kind in ("saving-throw", "fenced", "fence-failed"):
            open_since = None
    return [] if open_since is None else [f"{victim} suspect since {open_since - mark.wall:.1f}s"]


def fault_kill_primary(ch: Chaos, step: Step) -> str:
    primary: list[str] = []

    def has_primary() -> list[str]:
        primary[:] = [ch.primary()]
        return [] if primary[0] else ["no primary"]

    wait_until(has_primary, RECOVERY_BOUND, "a primary")
    victim = primary[0]
    offs = len(ch.bmc_power_offs(victim))
    mark = Mark()
    ch.cluster.kill(victim)
    successor: list[str] = []

    def replaced() -> list[str]:
        successor[:] = [ch.primary()]
        return [] if successor[0] not in ("", victim) else [f"primary is {successor[0]!r}"]

    failover = wait_until(replaced, RECOVERY_BOUND, f"a new primary after {victim}")
    timeline = fenced_and_recovered(ch, victim, mark, offs, [])
    return (f"primary {victim} killed, {successor[0]} primary after {failover:.1f}s; "
            f"{timeline}; {revived(ch, victim)}")


def no_fence_since(ch: Chaos, mark: Mark) -> None:
    fences = [d for d in ch.decisions(mark) if d.kind in FENCE_KINDS]
    assert not fences, f"fenced without cause: {ch.excerpt(fences)}"


def keepalives_advance(ch: Chaos, by: int, timeout: float, what: str) -> float:
    """Wait until every node's keepalive sequence advanced ``by`` beats: its threads run."""
    before = ch.keepalive_seqs()
    assert min(before.values()) >= 0, f"keepalives unreadable: {before}"

    def check() -> list[str]:
        now = ch.keepalive_seqs()
        return [f"{n}: {before[n]} -> {now[n]}" for n in ch.names if now[n] < before[n] + by]

    return wait_until(check, timeout, what)


def fault_zk_kill_one(ch: Chaos, step: Step) -> str:
    (member,) = step.members()
    vm = sorted(ch.vms, key=lambda u: ch.vms[u])[step.vm]
    mark = Mark()
    ch.cluster.zookeeper_kill(member)
    beats = keepalives_advance(ch, 3, 5 * KEEPALIVE + CALL_DEADLINE,
                               f"keepalives with zk{member} down")
    restart = Mark()
    set_vm_state(ch.store, vm, VMState.RESTART, reason="chaos: works without one member",
                 by="chaos")

    def restarted() -> list[str]:
        rec = ch.store.vms.get(vm)
        if rec.state.state is not VMState.START:
            return [f"{rec.name} is {rec.state.state.value}"]
        return [p for p in ch.convergence_problems() if p.startswith(rec.name + " ")]

    wait_until(restarted, RECOVERY_BOUND, f"{ch.vms[vm]} restarted with zk{member} down")
    restarted_in = restart.since()
    no_fence_since(ch, mark)
    ch.cluster.zookeeper_start(member, wait=60)
    back = mark.since()
    ch.converge(RECOVERY_BOUND, "every VM running")
    no_fence_since(ch, mark)
    return (f"zk{member} SIGKILLed: every keepalive advanced 3 beats in {beats:.1f}s, "
            f"{ch.vms[vm]} restarted in {restarted_in:.1f}s; member back and serving "
            f"after {back:.1f}s; nobody fenced")


def fault_zk_quorum_loss(ch: Chaos, step: Step) -> str:
    members = step.members()
    record = ch.cluster.record()
    daemons = {n: record.node(n).process for n in ch.names}
    power_offs = {n: len(ch.bmc_power_offs(n)) for n in ch.names}
    samples_before = ch.sampler.samples
    mark = Mark()
    for member in members:
        ch.cluster.zookeeper_stop(member)
    lost = Mark()
    # No test thread hangs: a ZooKeeper write (it needs a quorum) fails within its deadline.
    call = Mark()
    try:
        ch.store.zk.set(PROBE, str(SEED).encode())
        answered = "succeeded"
    except PVCError as exc:
        answered = f"failed ({type(exc).__name__})"
    call_took = call.since()
    assert call_took < CALL_DEADLINE, f"a ZooKeeper call took {call_took:.1f}s without quorum"
    assert answered != "succeeded", "a write succeeded without a quorum: was it lost?"

    def holding() -> list[str]:
        dead = [n for n, ref in daemons.items() if procs.proc_state(ref) is not ProcState.ALIVE]
        assert not dead, f"daemons gone during the quorum loss: {dead}"
        return ["holding"] if lost.since() < QUORUM_LOSS_HOLD else []

    wait_until(holding, QUORUM_LOSS_HOLD + 5, "the outage")
    assert ch.sampler.alive and ch.sampler.samples > samples_before + QUORUM_LOSS_HOLD / PERIOD / 2
    for member in members:
        ch.cluster.zookeeper_start(member)
    wait_until(ch.zookeeper_problems, 60, "every ZooKeeper member serving again")
    outage = lost.since()
    assert outage < SELF_FENCE_AFTER, \
        f"outage {outage:.1f}s not shorter than self_fence_after: the premise does not hold"
    converged = ch.converge(RECOVERY_BOUND, "every VM running after quorum returned")
    fewest, samples = ch.sampler.min_active(lost.mono, time.monotonic())
    assert fewest == VM_COUNT, f"only {fewest} of {VM_COUNT} VMs ran at one point"
    # Every daemon still works (no thread of it hung): each restarts one of its VMs.
    restarted = ch.restart_one_vm_per_node(RECOVERY_BOUND)
    # Give a wrongful fence time to happen before looking for one.
    beats = keepalives_advance(ch, FENCE_INTERVALS + SAVING_THROWS + 2,
                               (FENCE_INTERVALS + SAVING_THROWS + 2) * KEEPALIVE + RECOVERY_BOUND,
                               "keepalives after quorum returned")
    no_fence_since(ch, mark)
    assert ch.power_states() == {n: "on" for n in ch.names}, ch.power_states()
    assert {n: len(ch.bmc_power_offs(n)) for n in ch.names} == power_offs, "a BMC powered off"
    assert {n: ch.cluster.record().node(n).process for n in ch.names} == daemons
    gone = [n for n, ref in daemons.items() if procs.proc_state(ref) is not ProcState.ALIVE]
    assert not gone, f"daemons gone after the quorum loss: {gone}"
    suspects = [d for d in ch.decisions(mark) if d.kind == "suspect"]
    return (f"zk{members[0]}+zk{members[1]} stopped: quorum lost for {outage:.1f}s "
            f"(a ZooKeeper call {answered} after {call_took:.1f}s); every VM kept running "
            f"({samples} samples, never fewer than {fewest}); after quorum returned: "
            f"converged in {converged:.1f}s, a VM restarted on every node in "
            f"{restarted:.1f}s, every keepalive advanced {FENCE_INTERVALS + SAVING_THROWS + 2} "
            f"beats in {beats:.1f}s; nobody fenced, every daemon and BMC unchanged"
            f"{f'; suspects: {ch.excerpt(suspects)}' if suspects else ''}")


FAULT_RUNNERS: dict[str, Callable[[Chaos, Step], str]] = {
    "sigkill": fault_sigkill, "sigstop": fault_sigstop, "expire": fault_expire,
    "kill-primary": fault_kill_primary, "zk-kill-one": fault_zk_kill_one,
    "zk-quorum-loss": fault_zk_quorum_loss,
}


def format_times(times: dict[str, float]) -> str:
    return ", ".join(f"{k} +{v:.1f}s" for k, v in times.items())


@pytest.mark.parametrize("step", PLAN, ids=[s.id for s in PLAN])
def test_fault(chaos: Chaos, step: Step) -> None:
    fixed = chaos.ensure_healthy(RECOVERY_BOUND * 2)
    if fixed:
        report(f"before {step.id}: had to repair the cluster: {'; '.join(fixed)}")
    start = time.monotonic()
    try:
        outcome = FAULT_RUNNERS[step.fault](chaos, step)
        # The step left the cluster whole by itself (the next step's ensure_healthy
        # must find nothing to repair): every ZooKeeper member serving, every daemon
        # alive in run/ready, every VM running on the node its placement names.
        whole = wait_until(lambda: (chaos.zookeeper_problems() + chaos.node_problems()
                                    + chaos.convergence_problems()),
                           RECOVERY_BOUND, f"{step.id}: the cluster whole again")
    except BaseException as exc:
        chaos.failed = True
        report(f"{step.id}: FAILED after {time.monotonic() - start:.1f}s: {exc}")
        raise
    report(f"{step.id}: {outcome}; whole again +{whole:.1f}s "
           f"[{time.monotonic() - start:.1f}s]")


def test_no_vm_ever_ran_on_two_nodes(chaos: Chaos) -> None:
    """The invariant, over the whole run: never one VM active on two nodes at once."""
    sampler = chaos.sampler
    sampler.stop()
    duration = sampler.stopped_at - sampler.started_at
    report(f"invariant sampler: {sampler.samples} samples over {duration:.0f}s "
           f"(every {PERIOD * 1000:.0f} ms; largest gap {sampler.max_gap * 1000:.0f} ms), "
           f"{len(sampler.violations)} violations")
    assert not sampler.errors, f"the sampler failed: {sampler.errors[:5]}"
    assert sampler.samples >= 0.8 * duration / PERIOD, "the sampler fell behind"
    assert sampler.max_gap < 2.0, f"the sampler stalled for {sampler.max_gap:.1f}s"
    assert not sampler.violations, (
        f"{len(sampler.violations)} samples saw a VM on two nodes:\n"
        + "\n".join(str(v) for v in sampler.violations[:50]))
