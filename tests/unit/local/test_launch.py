"""Defaults and command lines of the launcher."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pvc_local import launch


def test_default_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert launch.default_directory({"PVC_LOCAL_DIR": str(tmp_path)}) == tmp_path
    monkeypatch.chdir(tmp_path)
    assert launch.default_directory({}) == tmp_path / ".pvc-local"
    assert launch.default_directory({"PVC_LOCAL_DIR": ""}) == tmp_path / ".pvc-local"


def test_default_cache_dir(tmp_path: Path) -> None:
    assert launch.default_cache_dir({"PVC_LOCAL_CACHE": str(tmp_path)}) == tmp_path
    assert launch.default_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/pvc-local")


def test_daemon_argv() -> None:
    assert launch.daemon_argv(["/d/n1.yaml"], False) == [
        sys.executable, "-m", "pvc_core.daemon", "--config", "/d/n1.yaml"]
    assert launch.daemon_argv(["/a", "/b"], True) == [
        sys.executable, "-m", "pvc_local.multinode", "--config", "/a", "--config", "/b"]
    assert launch.daemon_argv(["/a"], False, module="x.y")[2] == "x.y"
    with pytest.raises(ValueError):
        launch.daemon_argv([], True)
    with pytest.raises(ValueError):
        launch.daemon_argv(["/a", "/b"], False)


@pytest.mark.parametrize(("code", "meaning"), [
    (2, "configuration invalid"), (3, "cluster schema newer than this code"),
    (1, "fatal error"), (7, "error"), (-9, "killed by signal 9"), (None, "exit code unknown"),
])
def test_exit_meaning(code: int | None, meaning: str) -> None:
    assert launch.exit_meaning(code) == meaning
