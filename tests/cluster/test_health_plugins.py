"""Hook plugins in real daemons: ``plugins: [...]`` enables them by name.

A pvcnoded process loads the built-in ``health_basic`` plugin and a
throwaway one (a distribution written at test time, on the process's
PYTHONPATH); their health checks reach the node's keepalive record, and an
API server (in this process, loading the same plugins) shows them on the
node and lets a failing one degrade the node and the cluster. An enabled
plugin that is not installed stops pvcnoded and pvcapid at start.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvc_api.auth import hash_key, new_key
from pvc_api.server import ApiServer
from pvc_core.config import parse_config
from pvc_core.errors import DriverLoadError
from pvc_core.hooks.specs import PLUGIN_GROUP
from pvc_core.store import Store
from pvc_local.zookeeper import ZooKeeperServer
from tests.api.client import Http
from tests.cluster.conftest import wait_for
from tests.cluster.test_pvcnoded import Daemon, daemon_state, write_config
from tests.unit.fake_dist import (
    FakeDistInstaller,
    fake_dist,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.zookeeper
T = 30
KEY = new_key()
API = "/api/v1"

SITE = '''
import os

from pvc_core.hooks.specs import hookimpl

FLAG = {flag!r}


@hookimpl
def pvc_collect_health_checks(node):
    if os.path.exists(FLAG):
        return [{{"name": "raid", "ok": False, "message": "disk 2 of " + node + " failed"}}]
    return [{{"name": "raid", "ok": True, "message": "clean"}}]
'''


@pytest.fixture
def root(zk_for_daemons: ZooKeeperServer) -> Iterator[tuple[Store, str]]:
    path = f"/pvc-health-{uuid.uuid4().hex[:8]}"
    store = Store.connect(zk_for_daemons.hosts, root=path)
    yield store, path
    store.close()


@pytest.fixture
def site(fake_dist: FakeDistInstaller, tmp_path: Path) -> Path:  # noqa: F811
    """Install the ``site`` plugin; return the file whose existence fails its check."""
    flag = tmp_path / "raid-failed"
    fake_dist.install("pvc-site-health", {PLUGIN_GROUP: {"site": "pvc_site_health"}},
                      {"pvc_site_health": SITE.format(flag=str(flag))})
    return flag


def python_path(fake_dist: FakeDistInstaller) -> dict[str, str]:  # noqa: F811
    """The daemon's PYTHONPATH: the throwaway distribution first, then the inherited one."""
    paths = [str(fake_dist.root), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def api_server(zk: ZooKeeperServer, root: str, plugins: list[str]) -> ApiServer:
    config = parse_config({
        "node": {"name": "node1"}, "cluster": {"nodes": ["node1"]},
        "zookeeper": {"hosts": [zk.hosts], "root": root, "session_timeout": 4},
        "hypervisor": {"driver": "fake"}, "plugins": plugins,
        "api": {"keys": [{"name": "ops", "hash": hash_key(KEY), "role": "read-only"}]}})
    return ApiServer(config, port=0, threads=2)


def health(store: Store) -> list[dict[str, Any]]:
    try:
        raw = store.zk.get(store.ks.node_keepalive("node1"))[0]
    except Exception:  # noqa: BLE001 - no keepalive yet
        return []
    checks: list[dict[str, Any]] = json.loads(raw).get("stats", {}).get("health", [])
    return checks


def check(checks: list[dict[str, Any]], plugin: str, name: str) -> dict[str, Any] | None:
    return next((c for c in checks if c["plugin"] == plugin and c["name"] == name), None)


def test_health_checks_of_plugins_reach_the_keepalive_and_the_api(
        zk_for_daemons: ZooKeeperServer, tmp_path: Path, root: tuple[Store, str], site: Path,
        fake_dist: FakeDistInstaller) -> None:  # noqa: F811
    store, path = root
    config = write_config(tmp_path, zk_for_daemons, path, plugins=["health_basic", "site"],
                          timers={"keepalive_interval": 1.0})
    d = Daemon(config, tmp_path / "log", env=python_path(fake_dist))
    api = api_server(zk_for_daemons, path, ["site", "health_basic"])
    try:
        wait_for(lambda: daemon_state(store) == "run", T, "daemon running")
        checks = wait_for(lambda: (lambda c: c if check(c, "site", "raid") else None)(
            health(store)), T, "health checks in the keepalive")
        assert check(checks, "site", "raid") == {"plugin": "site", "name": "raid", "ok": True,
                                                 "message": "clean"}
        for name in ("root_filesystem", "memory"):
            basic = check(checks, "health_basic", name)
            assert basic is not None and isinstance(basic["ok"], bool), checks
            assert basic["message"] and "cannot read" not in basic["message"]
        assert "hook plugins enabled: health_basic, site" in d.text()

        api.start()
        http = Http(api.url, KEY)
        assert api.ctx is not None and api.ctx.hooks.plugin_names() == ["health_basic", "site"]
        node = http.get(f"{API}/node/node1").body
        assert check(node["health_checks"], "site", "raid") is not None, node
        expected = "ok" if all(c["ok"] for c in node["health_checks"]) else "degraded"
        assert node["health"] == expected

        site.touch()  # the plugin's RAID fails: the next keepalives say so
        failing = {"plugin": "site", "name": "raid", "ok": False,
                   "message": "disk 2 of node1 failed"}
        wait_for(lambda: check(http.get(f"{API}/node/node1").body["health_checks"], "site",
                               "raid") == failing, T, "the failing check shown by the API")
        assert http.get(f"{API}/node/node1").body["health"] == "degraded"
        cluster = http.get(f"{API}/cluster").body
        assert cluster["health"] == "degraded"
        assert any(p.startswith("node node1 is degraded: ") and
                   "site/raid: disk 2 of node1 failed" in p for p in cluster["problems"]), cluster
        assert "health check site/raid failing: disk 2 of node1 failed" in d.text()

        site.unlink()
        wait_for(lambda: check(health(store), "site", "raid") == {
            "plugin": "site", "name": "raid", "ok": True, "message": "clean"},
            T, "the check passing again")
        assert "health check site/raid no longer failing" in d.text()
    finally:
        api.stop()
        d.kill()


def test_pvcnoded_refuses_to_start_with_a_missing_plugin(
        zk_for_daemons: ZooKeeperServer, tmp_path: Path, root: tuple[Store, str]) -> None:
    store, path = root
    config = write_config(tmp_path, zk_for_daemons, path, plugins=["health_basic", "nope"])
    d = Daemon(config, tmp_path / "log")
    try:
        assert d.wait() == 1
        assert "cannot start: hook plugin 'nope' is not installed (entry points in " \
               "pvc.plugins: " in d.text()
        assert daemon_state(store) is None  # never registered
        assert store.zk.exists(store.ks.node_alive("node1")) is None
    finally:
        d.kill()


def test_pvcapid_refuses_to_start_with_a_missing_plugin(
        zk_for_daemons: ZooKeeperServer, root: tuple[Store, str]) -> None:
    _store, path = root
    api = api_server(zk_for_daemons, path, ["nope"])
    with pytest.raises(DriverLoadError, match="hook plugin 'nope' is not installed"):
        api.start()
    assert api.store is None and api.cache is None  # cleaned up
