"""``?wait=true``: block until a change has taken effect, or the timeout.

Waiting is done on the watch-fed cache (woken by every change it applies),
so a waiting request costs no ZooKeeper polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pvc_api.context import ApiContext
from pvc_core.errors import NotFound
from pvc_core.states import VM_MIGRATING_STATES, VMState
from pvc_core.store.jobs import FINISHED
from pvc_core.store.records import VmRecord

#: When a requested VM state has taken effect: (VM, running on its node) -> done.
_VM_DONE: dict[str, Callable[[VmRecord, bool], bool]] = {
    "start": lambda vm, running: vm.state.state is VMState.FAIL
    or (vm.state.state is VMState.START and running),
    "restart": lambda vm, running: vm.state.state is VMState.FAIL
    or (vm.state.state is VMState.START and running),
    "stop": lambda vm, running: not running and vm.state.state is not VMState.SHUTDOWN,
    "shutdown": lambda vm, running: not running and vm.state.state is not VMState.SHUTDOWN,
    "disable": lambda vm, running: not running and vm.state.state is VMState.DISABLE,
    "migrate": lambda vm, running: vm.state.state not in VM_MIGRATING_STATES
    and (running or vm.state.state is not VMState.START),
}


def _vm_running(ctx: ApiContext, vm: VmRecord) -> bool:
    node = vm.placement.node
    if node is None:
        return False
    try:
        stats = ctx.cache.node(node).stats
    except NotFound:
        return False
    return vm.uuid in (stats.get("vm_stats") or {})


def vm_done(ctx: ApiContext, written: VmRecord, action: str) -> bool:
    """Whether ``action`` (a state or ``migrate``) has taken effect on the VM.

    ``written`` is the record read back after the write: the cache must have
    caught up with at least that version of the state before it is believed.
    """
    try:
        vm = ctx.cache.vm(written.uuid)
    except NotFound:
        return False
    if vm.versions.get("state", -1) < written.versions.get("state", -1):
        return False
    return _VM_DONE[action](vm, _vm_running(ctx, vm))


def wait(ctx: ApiContext, done: Callable[[], bool], query: dict[str, Any]) -> bool:
    """Wait as ``query`` asks (``wait``, ``timeout``); return whether ``done()``."""
    if not query.get("wait"):
        return done()
    timeout = min(float(query.get("timeout", 60)), ctx.max_wait)
    return ctx.cache.wait_for(done, timeout)


def job_done(ctx: ApiContext, job_id: str) -> bool:
    """Whether the job has ended (a job the cache has not seen yet has not)."""
    try:
        return ctx.cache.job(job_id).get("state") in FINISHED
    except NotFound:
        return False
