"""The lock ordering rules, without ZooKeeper."""

from __future__ import annotations

from pvc_core.coordination.lock import (
    Contender,
    blocker,
    holders,
    node_prefix,
    parse_contender,
    sort_contenders,
)

T1, T2, T3, T4 = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)


def name(kind: str, ident: str, token: str, seq: int) -> str:
    return f"{node_prefix(kind, ident, token)}{seq:010d}"


def c(kind: str, ident: str, token: str, seq: int) -> Contender:
    parsed = parse_contender(name(kind, ident, token, seq))
    assert parsed is not None
    return parsed


def test_parse_round_trips_identifiers_with_dashes() -> None:
    parsed = parse_contender(name("write", "node-1.x", T1, 42))
    assert parsed == Contender(name("write", "node-1.x", T1, 42), "write", "node-1.x", T1, 42)
    assert parse_contender(name("read", "hv1", T2, 0)) is not None


def test_foreign_children_are_ignored() -> None:
    for foreign in ("lease", "write-hv1-0000000001", f"shared-hv1-{T1}-0000000001",
                    f"write-hv1-{T1}-12", f"{T1}__lock__0000000001"):
        assert parse_contender(foreign) is None
    assert sort_contenders(["junk", name("read", "a", T1, 3)]) == [c("read", "a", T1, 3)]


def test_sorted_by_sequence_number_not_name() -> None:
    names = [name("write", "z", T1, 10), name("read", "a", T2, 2), name("write", "m", T3, 7)]
    assert [x.seq for x in sort_contenders(names)] == [2, 7, 10]


def test_writer_waits_for_immediate_predecessor_of_any_kind() -> None:
    r1, r2, w = c("read", "a", T1, 1), c("read", "b", T2, 2), c("write", "c", T3, 3)
    assert blocker([w, r1, r2], w) == r2
    w0 = c("write", "x", T4, 0)
    assert blocker([w0], w0) is None


def test_reader_waits_only_for_closest_preceding_writer() -> None:
    w1, r1, w2, r2 = (c("write", "a", T1, 1), c("read", "b", T2, 2),
                      c("write", "c", T3, 3), c("read", "d", T4, 4))
    assert blocker([w1, r1, w2, r2], r2) == w2
    assert blocker([w1, r1, w2, r2], r1) == w1
    assert blocker([r1, r2], r2) is None
    later = c("write", "e", T1, 9)
    assert blocker([r1, later], r1) is None  # later writers never block


def test_holders() -> None:
    r1, r2, w, r3 = (c("read", "a", T1, 1), c("read", "b", T2, 2),
                     c("write", "c", T3, 3), c("read", "d", T4, 4))
    assert holders([]) == []
    assert holders([w, r3, r2, r1]) == [r1, r2]
    assert holders([w, r3]) == [w]
