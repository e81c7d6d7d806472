"""Crash restarts back off exponentially and stop after max_tries."""

from __future__ import annotations

from pvc_core.clock import FakeClock
from pvc_core.daemon.restarts import RestartTracker


def test_backoff_then_give_up() -> None:
    clock = FakeClock()
    t = RestartTracker(clock, max_tries=3, backoff=2.0, reset_after=300)
    t.started("vm")
    assert t.expected_running("vm")
    assert t.crashed("vm") == 2.0 and not t.expected_running("vm")
    assert t.wait_before_start("vm") == 2.0
    clock.advance(1.5)
    assert t.wait_before_start("vm") == 0.5
    clock.advance(0.5)
    t.started("vm")
    assert t.crashed("vm") == 4.0
    t.started("vm")
    assert t.crashed("vm") == 8.0
    t.started("vm")
    assert t.crashed("vm") is None  # fourth crash: the three restarts are used up
    assert t.attempts("vm") == 4


def test_a_vm_that_ran_long_enough_starts_counting_again() -> None:
    clock = FakeClock()
    t = RestartTracker(clock, max_tries=1, backoff=1.0, reset_after=60)
    t.started("vm")
    assert t.crashed("vm") == 1.0
    t.started("vm")
    clock.advance(61)
    assert t.crashed("vm") == 1.0  # not None: the count was reset
    t.stopped("vm")
    assert t.attempts("vm") == 0 and t.wait_before_start("vm") == 0.0
