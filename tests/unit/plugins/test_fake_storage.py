"""The fake storage driver: pools, volumes, locks, fencing and its hooks."""

from __future__ import annotations

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.storage import PoolInfo, SnapshotInfo, VolumeInfo
from pvc_core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from pvc_core.hooks.manager import HookManager, HookRefused
from pvc_plugins.fake.storage import FakeStorageDriver

GIB = 1024**3


@pytest.fixture
def st() -> FakeStorageDriver:
    return FakeStorageDriver({"pools": {"vms": 10 * GIB, "backup": GIB}},
                             DriverContext(node="hv1"))


def test_default_pool() -> None:
    drv = FakeStorageDriver({}, DriverContext(node="hv1"))
    assert [p.name for p in drv.list_pools()] == ["vms"]


def test_volumes(st: FakeStorageDriver) -> None:
    assert st.create_volume("vms", "vm1_disk0", GIB) == VolumeInfo("vms", "vm1_disk0", GIB)
    st.create_volume("vms", "a_disk", 2 * GIB)
    assert [v.name for v in st.list_volumes("vms")] == ["a_disk", "vm1_disk0"]
    assert st.list_volumes("backup") == []
    assert st.list_pools()[1] == PoolInfo("vms", 10 * GIB, 3 * GIB, 7 * GIB)
    st.remove_volume("vms", "a_disk")
    assert [v.name for v in st.list_volumes("vms")] == ["vm1_disk0"]


def test_volume_errors(st: FakeStorageDriver) -> None:
    st.create_volume("vms", "d", GIB)
    with pytest.raises(AlreadyExists):
        st.create_volume("vms", "d", GIB)
    with pytest.raises(NotFound, match="pool"):
        st.create_volume("nope", "d", GIB)
    with pytest.raises(NotFound):
        st.list_volumes("nope")
    with pytest.raises(NotFound):
        st.remove_volume("vms", "missing")
    for size in (0, -1, 2 * GIB):
        with pytest.raises(InvalidInput):
            st.create_volume("backup", "big", size)
    with pytest.raises(InvalidInput):
        st.create_volume("vms", "a/b", GIB)


def test_clear_locks_only_for_the_given_node(st: FakeStorageDriver) -> None:
    st.create_volume("vms", "d", GIB)
    st.add_lock("vms", "d", "hv1")
    st.add_lock("vms", "d", "hv2")
    with pytest.raises(Conflict, match="hv1, hv2"):
        st.remove_volume("vms", "d")
    assert st.clear_locks("vms", "d", "hv1") == 1
    assert st.clear_locks("vms", "d", "hv1") == 0
    assert st.lock_holders("vms", "d") == {"hv2"}
    with pytest.raises(NotFound):
        st.clear_locks("vms", "nope", "hv1")


def test_snapshots_and_stats(st: FakeStorageDriver) -> None:
    st.create_volume("vms", "d", GIB)
    assert st.create_snapshot("vms", "d", "s1") == SnapshotInfo("vms", "d", "s1")
    with pytest.raises(AlreadyExists):
        st.create_snapshot("vms", "d", "s1")
    assert st.list_snapshots("vms", "d") == [SnapshotInfo("vms", "d", "s1")]
    st.remove_snapshot("vms", "d", "s1")
    with pytest.raises(NotFound):
        st.remove_snapshot("vms", "d", "s1")
    assert st.stats() == {"pools": 2.0, "volumes": 1.0, "used_bytes": float(GIB)}


def test_fence_node_and_hooks(st: FakeStorageDriver) -> None:
    hooks = HookManager()
    hooks.register(st, "storage")
    assert hooks.call_with_deadline("pvc_node_fenced", 5.0, node="hv3").ok
    assert st.fenced_nodes == {"hv3"}
    assert st.calls_to("fence_node") == [("hv3",)]
    hooks.call_with_deadline("pvc_vm_about_to_start", 5.0, vm_uuid="u1",
                             node="hv1").raise_if_refused()
    st.refuse_start.add("u1")
    with pytest.raises(HookRefused, match="refuses to start u1"):
        hooks.call_with_deadline("pvc_vm_about_to_start", 5.0, vm_uuid="u1",
                                 node="hv1").raise_if_refused()
    with pytest.raises(HookRefused, match="hv3 is fenced"):
        hooks.call_with_deadline("pvc_vm_about_to_start", 5.0, vm_uuid="u2",
                                 node="hv3").raise_if_refused()
