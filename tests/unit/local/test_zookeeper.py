"""Session passwords: ZooKeeper derives them from the session id, so can we."""

from __future__ import annotations

import pytest

from pvc_local.zookeeper import session_password


# Session ids and the passwords a real ZooKeeper 3.8 server handed to kazoo for them.
@pytest.mark.parametrize(("session_id", "password"), [
    (0x100004D2BEB0000, "17dae8d058b7def24decad7e6113f964"),
    (0x100004D2BEB0001, "2afbe2d0f802be37422f15aa359c0d32"),
    (0x100004D2BEB0002, "f197f4d0182020696366df27ba01d0ca"),
])
def test_session_password_matches_the_server(session_id: int, password: str) -> None:
    assert session_password(session_id).hex() == password


def test_session_password_is_sixteen_bytes_for_any_id() -> None:
    for sid in (0, 1, 2**63 - 1, 0x3000063_8F6E0002):
        assert len(session_password(sid)) == 16
    assert session_password(1) != session_password(2)
