"""``pvc job ...``, ``pvc decision list`` and ``pvc fault ...`` through the real executable."""

from __future__ import annotations

import re
import time
import uuid

from pvc_core.store import Store
from tests.cli.conftest import Pvc, wait_for

LOCAL_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # times in a table: local time
JOB_COLUMNS = {"id", "kind", "state", "params", "progress", "by", "created", "updated"}


def test_jobs(pvc: Pvc) -> None:
    flush = pvc("node", "flush", "node3", "--wait", "--timeout", "90", "-f", "json").ok().json
    ready = pvc("node", "ready", "node3", "--wait", "--timeout", "90", "-f", "json").ok().json
    listed = {j["id"]: j for j in pvc("job", "list", "-f", "json").ok().json}
    assert {flush["id"], ready["id"]} <= set(listed)
    assert set(listed[flush["id"]]) == JOB_COLUMNS
    assert listed[flush["id"]]["kind"] == "flush" and listed[ready["id"]]["kind"] == "ready"
    assert listed[flush["id"]]["params"] == {"node": "node3"}
    flushes = pvc("job", "list", "--kind", "flush", "-f", "json").ok().json
    assert flush["id"] in {j["id"] for j in flushes} and {j["kind"] for j in flushes} == {"flush"}
    done = pvc("job", "list", "--state", "succeeded", "-f", "json").ok().json
    assert {flush["id"], ready["id"]} <= {j["id"] for j in done}
    assert "(field: state)" in pvc("job", "list", "--state", "paused").one_error()
    shown = pvc("job", "show", flush["id"], "-f", "json").ok().json
    assert shown["id"] == flush["id"] and shown["state"] == "succeeded"
    assert isinstance(shown["plan"], list) and isinstance(shown["created"], float | int)
    assert shown["progress"]["done"] == shown["progress"]["total"]
    table = pvc("job", "show", flush["id"], "-c", "created", "-c", "started",
                "-c", "finished").ok().out  # a table: every time in local time
    times = dict(re.findall(r"^\| (\w+) +\| (.*?) +\|$", table, re.MULTILINE))
    assert set(times) == {"Field", "created", "started", "finished"}, table
    assert all(re.fullmatch(LOCAL_TIME, times[k]) for k in ("created", "started", "finished")), \
        table
    assert pvc("job", "show", "nosuchjob").one_error()
    # Cancelling: refused without --yes (no terminal), and a finished job cannot be.
    assert "refusing" in pvc("job", "cancel", flush["id"]).one_error()
    ended = pvc("job", "cancel", flush["id"], "--yes").one_error()
    assert "ended" in ended
    assert pvc("job", "show", flush["id"], "-f", "json").ok().json["state"] == "succeeded"
    assert pvc("job", "cancel", "nosuchjob", "--yes").one_error()


def test_decisions(pvc: Pvc, store: Store) -> None:
    kind = f"cli-test-{uuid.uuid4().hex[:8]}"
    before = time.time() - 1
    store.decisions.append(kind, "recorded", node="node2", inputs={"n": 1}, by="cli-test")
    got = pvc("decision", "list", "--kind", kind, "-f", "json").ok().json
    assert len(got) == 1, got
    assert set(got[0]) == {"seq", "time", "kind", "outcome", "node", "vm", "by", "inputs"}
    assert got[0]["outcome"] == "recorded" and got[0]["node"] == "node2"
    assert got[0]["inputs"] == {"n": 1} and got[0]["by"] == "cli-test"
    assert got[0]["time"] >= before
    by_node = pvc("decision", "list", "--node", "node2", "--kind", kind, "-f", "json").ok().json
    assert [d["seq"] for d in by_node] == [got[0]["seq"]]
    assert pvc("decision", "list", "--node", "node1", "--kind", kind, "-f", "json").ok().json \
        == []
    assert len(pvc("decision", "list", "--kind", kind, "--since", "1h", "-f", "json")
               .ok().json) == 1
    assert pvc("decision", "list", "--kind", kind, "--until", str(int(before) - 60),
               "-f", "json").ok().json == []
    assert len(pvc("decision", "list", "--limit", "1", "-f", "json").ok().json) == 1
    assert pvc("decision", "list", "--since", "yesterday").one_error(code=2)
    assert pvc("decision", "list", "--vm", "no-such-vm").one_error()  # 404


def test_faults(pvc: Pvc, store: Store) -> None:
    subject = f"cli-{uuid.uuid4().hex[:8]}"
    fault = store.faults.raise_fault("cli-test", subject, "something to see")
    fid = fault["id"]

    def listed() -> dict:  # type: ignore[type-arg]
        return {f["id"]: f for f in pvc("fault", "list", "-f", "json").ok().json}

    shown = wait_for(lambda: listed().get(fid), 10, "fault listed")
    assert shown["message"] == "something to see" and shown["subject"] == subject
    assert shown["acknowledged"] is False and shown["severity"] == "warning"
    acked = pvc("fault", "ack", fid, "-f", "json").ok().json
    assert acked["id"] == fid and acked["acknowledged"] is True
    wait_for(lambda: listed()[fid]["acknowledged"] is True, 10, "fault acknowledged")
    assert "refusing" in pvc("fault", "delete", fid).one_error()
    assert fid in listed()
    deleted = pvc("fault", "delete", fid, "--yes").ok()
    assert deleted.out == "" and deleted.err == ""
    wait_for(lambda: fid not in listed(), 10, "fault gone")
    assert pvc("fault", "delete", fid, "--yes").one_error()  # 404
    assert pvc("fault", "ack", "nosuch").one_error()
