"""Run-lease encoding and lost-reply idempotency, on an in-memory store."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from pvc_core.coordination.lease import LeaseInfo, RunLease, decode_lease, encode_lease
from pvc_core.errors import Conflict, LeaseHeld

from .fakes import MemoryZk

PATH = "/pvc/vms/x/lease"


def lease(zk: MemoryZk, holder: str) -> RunLease:
    return RunLease(cast(Any, zk), PATH, holder)


def test_codec() -> None:
    raw = encode_lease("hv1", 3, "hv1")
    assert json.loads(raw) == {"holder": "hv1", "epoch": 3, "changed_by": "hv1",
                               "broken_from": None}
    assert decode_lease(raw, 5) == LeaseInfo("hv1", 3, 5, "hv1", None)
    assert decode_lease(b"", 0) == LeaseInfo(None, 0, 0)
    assert decode_lease(b'{"holder": "", "epoch": 2}', 1).free
    for bad in (b"[1]", b"{", b'{"holder": 5}', b'{"epoch": "x"}', b"\xff"):
        with pytest.raises(Conflict, match="invalid data"):
            decode_lease(bad, 0, PATH)


def test_acquire_with_lost_create_reply_is_won() -> None:
    zk = MemoryZk()
    zk.lose_replies = 1
    assert lease(zk, "hv1").acquire() == 1
    assert zk.writes == 1


def test_acquire_with_lost_set_reply_is_won_once() -> None:
    zk = MemoryZk()
    a = lease(zk, "hv1")
    a.acquire()
    a.release()
    zk.lose_replies = 1
    assert a.acquire() == 2
    assert a.read().epoch == 2


def test_release_and_break_with_lost_replies() -> None:
    zk = MemoryZk()
    a, b = lease(zk, "hv1"), lease(zk, "hv2")
    assert a.acquire() == 1
    zk.lose_replies = 1
    assert b.break_("hv1") == 2  # applied, reply lost: recognised as our own break
    assert b.acquire() == 3
    zk.lose_replies = 1
    b.release()  # applied, reply lost: the re-read finds it free
    info = b.read()
    assert info.holder is None and info.epoch == 3
    assert a.acquire() == 4
    with pytest.raises(LeaseHeld, match="held by hv1"):
        b.acquire()


def test_lost_session_invalidates() -> None:
    zk = MemoryZk()
    a = lease(zk, "hv1")
    a.acquire()
    zk.emit("SUSPENDED")
    assert a.suspended and a.valid
    zk.emit("LOST")
    assert not a.valid
    zk.emit("CONNECTED")
    assert not a.suspended and not a.valid
    assert a.holds() and a.valid
    a.release()
    assert not a.valid and zk.listeners == []
