"""The keyspace: the path of every resource, and validation of every name in a path."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pvc_core.errors import InvalidInput
from pvc_core.keyspace import (
    ID_PATTERN,
    NODE_NAME_PATTERN,
    VM_NAME_PATTERN,
    Keyspace,
    check_id,
    check_node_name,
    check_uuid,
    check_vm_name,
    child,
)

UUID = "0b1e3f3c-5d0a-4c38-9a51-2f4f6f0e7a11"
KS = Keyspace("/pvc")

#: Every public path method with its arguments and the path it must build.
PATHS: dict[str, tuple[tuple[str, ...], str]] = {
    "schema": ((), "/pvc/schema"),
    "cluster": ((), "/pvc/cluster"),
    "cluster_config": ((), "/pvc/cluster/config"),
    "primary": ((), "/pvc/cluster/primary"),
    "primary_request": ((), "/pvc/cluster/primary_request"),
    "nodes": ((), "/pvc/nodes"),
    "node": (("hv1",), "/pvc/nodes/hv1"),
    "node_alive": (("hv1",), "/pvc/nodes/hv1/alive"),
    "node_keepalive": (("hv1",), "/pvc/nodes/hv1/keepalive"),
    "vms": ((), "/pvc/vms"),
    "vm": ((UUID,), f"/pvc/vms/{UUID}"),
    "vm_state": ((UUID,), f"/pvc/vms/{UUID}/state"),
    "vm_placement": ((UUID,), f"/pvc/vms/{UUID}/placement"),
    "vm_xml": ((UUID,), f"/pvc/vms/{UUID}/xml"),
    "vm_lease": ((UUID,), f"/pvc/vms/{UUID}/lease"),
    "vm_console": ((UUID,), f"/pvc/vms/{UUID}/console"),
    "vm_names": ((), "/pvc/vm_names"),
    "vm_name": (("web-1.example",), "/pvc/vm_names/web-1.example"),
    "jobs": ((), "/pvc/jobs"),
    "job": (("job-42",), "/pvc/jobs/job-42"),
    "decisions": ((), "/pvc/decisions"),
    "decision_prefix": ((), "/pvc/decisions/d"),
    "decision": (("d0000000007",), "/pvc/decisions/d0000000007"),
    "faults": ((), "/pvc/faults"),
    "fault": (("node-down.hv1",), "/pvc/faults/node-down.hv1"),
    "locks": ((), "/pvc/locks"),
    "lock": (("custom_lock",), "/pvc/locks/custom_lock"),
    "flush_lock": ((), "/pvc/locks/flush"),
    "fence_lock": ((), "/pvc/locks/fence"),
    "primary_lock": ((), "/pvc/locks/primary"),
    "transition_lock": ((), "/pvc/locks/primary-transition"),
    "schema_lock": ((), "/pvc/locks/schema"),
    "migration_lock": ((UUID,), f"/pvc/locks/migrate-{UUID}"),
}


def public_methods() -> set[str]:
    return {n for n in dir(Keyspace) if not n.startswith("_") and callable(getattr(Keyspace, n))}


def test_every_path_method_is_listed_here() -> None:
    """A new path method must get a row in PATHS (base_paths is checked separately)."""
    assert public_methods() - {"base_paths"} == set(PATHS)


@pytest.mark.parametrize("method", sorted(PATHS))
def test_path_of_every_resource(method: str) -> None:
    args, expected = PATHS[method]
    assert getattr(KS, method)(*args) == expected


@pytest.mark.parametrize("method", sorted(PATHS))
def test_paths_follow_the_root(method: str) -> None:
    args, expected = PATHS[method]
    assert getattr(Keyspace("/a/b-c"), method)(*args) == "/a/b-c" + expected.removeprefix("/pvc")


def test_base_paths_are_the_top_level_directories() -> None:
    assert KS.base_paths() == ["/pvc/cluster", "/pvc/nodes", "/pvc/vms", "/pvc/vm_names",
                               "/pvc/jobs", "/pvc/decisions", "/pvc/faults", "/pvc/locks"]
    assert all(p.count("/") == 2 for p in KS.base_paths())


def test_vm_paths_use_the_canonical_uuid() -> None:
    assert KS.vm(UUID.upper()) == f"/pvc/vms/{UUID}"
    assert KS.vm_lease(UUID.replace("-", "")) == f"/pvc/vms/{UUID}/lease"


def test_default_root() -> None:
    assert Keyspace().schema() == "/pvc/schema"


def test_decision_prefix_names_a_decision() -> None:
    """The sequential child ZooKeeper creates from the prefix is addressable by decision()."""
    prefix = KS.decision_prefix()
    name = (prefix + "0000000012").rsplit("/", 1)[1]
    assert KS.decision(name) == prefix + "0000000012"


# -- validation --------------------------------------------------------------

BAD_COMMON = ["", "../x", "..", ".", "a/b", "/a", "a b", "a\n", "\na", "a\x00b", "ä", "-a"]

#: (check function, default field, the longest valid name, extra bad names)
CHECKS: list[tuple[Callable[..., str], str, str, list[object]]] = [
    (check_node_name, "node", "a" * 63, ["Hv1", "hv_1", "hv1-", "hv.1", "a" * 64, None, 1]),
    (check_vm_name, "name", "V" * 64, ["_web", ".web", "web:1", "V" * 65, None, 1]),
    (check_id, "id", "i" * 128, ["_job", ".job", "job:1", "i" * 129, None, 1]),
]


@pytest.mark.parametrize(("check", "field", "longest", "extra"), CHECKS,
                         ids=[c[0].__name__ for c in CHECKS])
def test_names_are_validated_with_the_field_named(
        check: Callable[..., str], field: str, longest: str, extra: list[object]) -> None:
    assert check(longest) == longest
    for bad in [*BAD_COMMON, *extra]:
        with pytest.raises(InvalidInput) as exc:
            check(bad)
        assert exc.value.field == field, bad
        assert str(exc.value).startswith(f"{field}: "), bad
        assert repr(bad) in str(exc.value), bad
        with pytest.raises(InvalidInput) as exc:
            check(bad, "body.target")
        assert exc.value.field == "body.target"


@pytest.mark.parametrize("good", ["hv1", "a", "0", "node-01", "a" * 63])
def test_valid_node_names(good: str) -> None:
    assert check_node_name(good) == good


@pytest.mark.parametrize("good", ["web1", "Web.Prod_2-a", "0", "V" * 64])
def test_valid_vm_names(good: str) -> None:
    assert check_vm_name(good) == good


@pytest.mark.parametrize(("pattern", "check", "samples"), [
    (NODE_NAME_PATTERN, check_node_name, ["hv1", "a" * 63, "a" * 64, "Hv1", "hv1-", "", "a/b"]),
    (VM_NAME_PATTERN, check_vm_name, ["web1", "V" * 64, "V" * 65, "_web", "../x", "", "a/b"]),
    (ID_PATTERN, check_id, ["job-1", "i" * 128, "i" * 129, ".job", "../x", "", "a/b"]),
])
def test_schema_patterns_agree_with_the_checks(
        pattern: str, check: Callable[..., str], samples: list[str]) -> None:
    """The request schemas (pvc_api) and the keyspace accept the same names."""
    for sample in samples:
        by_pattern = re.search(pattern, sample) is not None
        try:
            check(sample)
            by_check = True
        except InvalidInput:
            by_check = False
        assert by_pattern == by_check, sample


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "not-a-uuid", UUID + "0", None, 1])
def test_uuids_are_validated(bad: object) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_uuid(bad)
    assert exc.value.field == "uuid"
    with pytest.raises(InvalidInput) as exc:
        check_uuid(bad, "vm")
    assert exc.value.field == "vm"


@pytest.mark.parametrize(("method", "bad", "field"), [
    ("node", "../x", "node"), ("node_alive", "a/b", "node"), ("node_keepalive", "", "node"),
    ("vm", "../x", "uuid"), ("vm_state", "a/b", "uuid"), ("vm_lease", "", "uuid"),
    ("vm_placement", "x", "uuid"), ("vm_xml", "x", "uuid"), ("vm_console", "x", "uuid"),
    ("migration_lock", "../x", "uuid"),
    ("vm_name", "../x", "name"), ("vm_name", "a/b", "name"), ("vm_name", "", "name"),
    ("job", "../x", "job"), ("fault", "a/b", "fault"), ("lock", "", "lock"),
    ("decision", "../d1", "decision"), ("decision", "d/1", "decision"),
])
def test_path_methods_reject_bad_names(method: str, bad: str, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        getattr(KS, method)(bad)
    assert exc.value.field == field


@pytest.mark.parametrize("bad", ["", "pvc", "/", "/pvc/", "//pvc", "/pvc/../x", "/./pvc",
                                 "/a b", "/pvc\n", "/p:c"])
def test_bad_roots_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        Keyspace(bad)
    assert exc.value.field == "zookeeper.root"


# -- child paths (lock directories are arbitrary paths) ----------------------

@pytest.mark.parametrize(("parent", "name", "expected"), [
    ("/pvc/locks/flush", "write-hv1-ab-0000000001", "/pvc/locks/flush/write-hv1-ab-0000000001"),
    ("/pvc/locks/flush", "write-hv1-ab-", "/pvc/locks/flush/write-hv1-ab-"),
    ("/any/lock/dir/", "n", "/any/lock/dir/n"),
    ("", "n", "/n"),
    ("/", "n", "/n"),
])
def test_child(parent: str, name: str, expected: str) -> None:
    assert child(parent, name) == expected


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "/a", "a\x00"])
def test_child_rejects_what_is_not_one_component(bad: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        child("/pvc/locks/flush", bad)
    assert exc.value.field == "child"
