"""The many-daemons-in-one-process runner, with stand-in daemons."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pvc_core.errors import ConfigError, SchemaTooNew
from pvc_local import configgen, multinode


class Daemon:
    """A stand-in NodeDaemon recording its calls."""

    def __init__(self, fail: BaseException | None = None, block: bool = False) -> None:
        self.fail = fail
        self.block = threading.Event() if block else None
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        if self.block is not None:
            self.block.wait(5)
        if self.fail is not None:
            raise self.fail

    def stop(self) -> None:
        self.calls.append("stop")


def test_exit_codes() -> None:
    assert multinode.exit_code(ConfigError("x")) == 2
    assert multinode.exit_code(SchemaTooNew("x")) == 3
    assert multinode.exit_code(RuntimeError("x")) == 1


def test_run_all_reports_errors_and_timeouts() -> None:
    slow = threading.Event()
    results = multinode.run_all([("ok", lambda: None), ("bad", _raise),
                                 ("slow", lambda: slow.wait(5))], timeout=0.2)
    slow.set()
    assert results["ok"] is None
    assert isinstance(results["bad"], ValueError)
    assert isinstance(results["slow"], TimeoutError)


def _raise() -> None:
    raise ValueError("boom")


def test_serve_starts_waits_and_stops_all() -> None:
    daemons = [Daemon(), Daemon()]
    stop = threading.Event()
    stop.set()  # SIGTERM already arrived
    assert multinode.serve(daemons, ["node1", "node2"], stop) == 0
    assert [d.calls for d in daemons] == [["start", "stop"], ["start", "stop"]]


def test_a_failed_start_stops_the_others() -> None:
    daemons = [Daemon(), Daemon(fail=SchemaTooNew("newer"))]
    assert multinode.serve(daemons, ["node1", "node2"], threading.Event()) == 3
    assert daemons[0].calls == ["start", "stop"]


def test_load_configs(tmp_path: Path) -> None:
    paths = []
    for name in ("node1", "node2", "node1"):
        cfg = configgen.node_config(
            name, nodes=["node1", "node2"], zk_hosts="127.0.0.1:2181",
            state_dir=tmp_path / name, hypervisor=configgen.hypervisor_section("fake"))
        paths.append(str(configgen.write_config(tmp_path / f"{len(paths)}.yaml", cfg)))
    assert [c.node.name for c in multinode.load_configs(paths[:2])] == ["node1", "node2"]
    with pytest.raises(ConfigError, match="repeat"):
        multinode.load_configs(paths)


def test_main_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert multinode.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "configuration file not found" in err


def test_a_daemon_asking_to_exit_stops_every_node() -> None:
    asking, other = Daemon(), Daemon()
    asking.exit_requested = threading.Event()  # type: ignore[attr-defined]
    asking.exit_code = 3  # type: ignore[attr-defined]
    asking.exit_requested.set()  # type: ignore[attr-defined]
    assert multinode.serve([asking, other], ["node1", "node2"], threading.Event()) == 3
    assert asking.calls == other.calls == ["start", "stop"]
