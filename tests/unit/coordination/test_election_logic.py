"""Primary election decisions, without ZooKeeper."""

from __future__ import annotations

import pytest

from pvc_core.coordination.election import (
    ACTS_AS_PRIMARY,
    HOLDS_PRIMARY,
    IS_PRIMARY,
    PrimaryRequest,
    Verdict,
    decode_request,
    judge,
    read_request,
    stale_claims,
    write_request,
)
from pvc_core.errors import Conflict
from pvc_core.keyspace import Keyspace
from pvc_core.states import COORDINATOR_TRANSITIONS, CoordinatorState
from tests.unit.coordination.fakes import MemoryZk

C = CoordinatorState


def req(target: str | None, source: str | None = "hv1") -> PrimaryRequest:
    return PrimaryRequest(target, source, "r1", "admin", 3)


# -- judge ----------------------------------------------------------------------


def test_no_request_proceeds() -> None:
    assert judge("hv1", None, ["hv1", "hv2"]) is Verdict.PROCEED


@pytest.mark.parametrize(("me", "request_", "contenders", "verdict"), [
    # a target: the target takes over; others yield only while it is contending
    ("hv2", req("hv2"), ["hv2", "hv3"], Verdict.SATISFIED),
    ("hv2", req("hv2"), ["hv2"], Verdict.SATISFIED),
    ("hv3", req("hv2"), ["hv3", "hv2"], Verdict.YIELD),
    ("hv1", req("hv2"), ["hv1", "hv3", "hv2"], Verdict.YIELD),
    ("hv3", req("hv2"), ["hv3", "hv1"], Verdict.UNSATISFIABLE),
    ("hv3", req("hv2"), ["hv3"], Verdict.UNSATISFIABLE),
    # step down (no target): the source yields to anybody; anybody else is the answer
    ("hv1", req(None, "hv1"), ["hv1", "hv2"], Verdict.YIELD),
    ("hv1", req(None, "hv1"), ["hv1"], Verdict.UNSATISFIABLE),
    ("hv1", req(None, "hv1"), ["hv1", "hv1"], Verdict.UNSATISFIABLE),
    ("hv2", req(None, "hv1"), ["hv2", "hv1"], Verdict.SATISFIED),
    ("hv2", req(None, "hv1"), ["hv2"], Verdict.SATISFIED),
    ("hv2", req(None, None), ["hv2", "hv3"], Verdict.SATISFIED),
])
def test_judge(me: str, request_: PrimaryRequest, contenders: list[str],
               verdict: Verdict) -> None:
    assert judge(me, request_, contenders) is verdict


def test_only_the_target_is_ever_satisfied_by_a_targeted_request() -> None:
    nodes = ["hv1", "hv2", "hv3"]
    for me in nodes:
        verdict = judge(me, req("hv2"), nodes)
        assert (verdict is Verdict.SATISFIED) == (me == "hv2")
        assert verdict in (Verdict.SATISFIED, Verdict.YIELD)


def test_a_lock_holder_never_yields_to_nobody() -> None:
    """With no other contender the holder never releases (no primary-less livelock)."""
    for request_ in (req("hv2"), req(None, "hv1"), req(None, "hv9"), req("hv1")):
        assert judge("hv1", request_, ["hv1"]) is not Verdict.YIELD


# -- what each state answers ----------------------------------------------------


def test_state_answers_are_nested_and_cover_the_table() -> None:
    assert IS_PRIMARY < ACTS_AS_PRIMARY < HOLDS_PRIMARY
    assert IS_PRIMARY == {C.PRIMARY}
    assert ACTS_AS_PRIMARY == {C.TAKEOVER, C.PRIMARY}
    assert HOLDS_PRIMARY == {C.TAKEOVER, C.PRIMARY, C.RELINQUISH}
    assert not ({C.CLIENT, C.SECONDARY} & HOLDS_PRIMARY)


def test_every_state_leaving_the_lock_goes_through_secondary() -> None:
    """The states table agrees with the election: the lock is let go only as secondary."""
    for state in HOLDS_PRIMARY:
        assert COORDINATOR_TRANSITIONS[state] <= HOLDS_PRIMARY | {C.SECONDARY}
    assert COORDINATOR_TRANSITIONS[C.SECONDARY] == {C.TAKEOVER}
    assert COORDINATOR_TRANSITIONS[C.CLIENT] == frozenset()


def test_stale_claims() -> None:
    states = {"hv1": C.PRIMARY, "hv2": C.TAKEOVER, "hv3": C.RELINQUISH, "hv4": C.SECONDARY,
              "hv5": C.CLIENT}
    assert stale_claims("hv2", states) == ["hv1", "hv3"]
    assert stale_claims("hv9", states) == ["hv1", "hv2", "hv3"]
    assert stale_claims("hv4", {"hv4": C.PRIMARY}) == []


# -- the request znode ------------------------------------------------------------


def test_request_round_trip() -> None:
    r = PrimaryRequest("hv2", "hv1", "abc", "admin")
    back = decode_request(r.to_bytes(), 7)
    assert back == PrimaryRequest("hv2", "hv1", "abc", "admin", 7)
    assert back is not None and back.describe() == "make hv2 primary"
    step_down = decode_request(PrimaryRequest(None, "hv1", "x").to_bytes(), 0)
    assert step_down is not None and step_down.describe() == "hv1 steps down"
    assert decode_request(b"", 0) is None


@pytest.mark.parametrize("raw", [b"[]", b"not json", b'{"target": "Bad Name"}',
                                 b'{"target": 5}', b"\xff"])
def test_invalid_request_is_a_clear_conflict(raw: bytes) -> None:
    with pytest.raises(Conflict, match="primary request /x holds invalid data"):
        decode_request(raw, 0, "/x")


def test_write_request_creates_then_overwrites() -> None:
    zk, ks = MemoryZk(), Keyspace("/pvc")
    assert read_request(zk, ks) is None  # type: ignore[arg-type]
    first = write_request(zk, ks, target="hv2", source="hv1", by="a")  # type: ignore[arg-type]
    assert first.version == 0
    second = write_request(zk, ks, target=None, source="hv1")  # type: ignore[arg-type]
    assert second.version == 1 and second.id != first.id
    got = read_request(zk, ks)  # type: ignore[arg-type]
    assert got == second
