"""The ZooKeeper keyspace: the only module that spells a path.

Every znode PVC reads or writes is built by a method of :class:`Keyspace`.
Names that become path components are validated here, so a bad name is a
clear :class:`~pvc_core.errors.InvalidInput` before anything touches
ZooKeeper. The layout is versioned (``SCHEMA_VERSION``); ordered migrations
from older layouts live in :mod:`pvc_core.store.migrations`.

Layout (schema version 2)::

    {root}/schema                    int: keyspace schema version
    {root}/cluster/config            JSON: cluster-wide settings (maintenance, ...)
    {root}/cluster/primary           primary coordinator's node name ("" for none)
    {root}/cluster/primary_request   JSON: pending planned primary move (absent: none)
    {root}/nodes/{node}              JSON: node record (states, static info)
    {root}/nodes/{node}/alive        ephemeral: the node's session is alive
    {root}/nodes/{node}/keepalive    JSON: {"seq": n, "stats": {...}}
    {root}/vms/{uuid}                JSON: VM metadata (name, limits, selector, ...)
    {root}/vms/{uuid}/state          JSON: desired state and reason
    {root}/vms/{uuid}/placement      JSON: {"node": ..., "last_node": ...}
    {root}/vms/{uuid}/xml            domain XML
    {root}/vms/{uuid}/lease          JSON: run-lease {"holder": ..., "epoch": n}
    {root}/vms/{uuid}/console        console log tail
    {root}/vm_names/{name}           uuid: the name index (names are unique)
    {root}/jobs/{job_id}             JSON: job record
    {root}/decisions/d{seq}          JSON: one decision-log record (sequential)
    {root}/faults/{fault_id}         JSON: one fault
    {root}/locks/{name}              lock directories (sequential children)
"""

from __future__ import annotations

import re
import uuid as uuidlib

from pvc_core.errors import InvalidInput

#: The layout this code writes. Bump it together with a new migration.
SCHEMA_VERSION = 2

_NODE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_VM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ROOT_RE = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
# The checks use ``fullmatch``: with ``match`` the ``$`` of these patterns would
# also accept a name followed by a newline ("hv1\n").
#: The same rules as regular expressions, for request schemas (pvc_api.schemas).
NODE_NAME_PATTERN = _NODE_RE.pattern
VM_NAME_PATTERN = _VM_NAME_RE.pattern
ID_PATTERN = _ID_RE.pattern


def check_node_name(name: object, field: str = "node") -> str:
    """Return ``name`` if it is a valid node name (DNS label), else raise InvalidInput."""
    if not isinstance(name, str) or not _NODE_RE.fullmatch(name):
        raise InvalidInput(
            f"must be a lower-case DNS label (a-z, 0-9, '-', at most 63), got {name!r}", field)
    return name


def check_vm_name(name: object, field: str = "name") -> str:
    """Return ``name`` if it is a valid VM name, else raise InvalidInput."""
    if not isinstance(name, str) or not _VM_NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit, got {name!r}",
            field)
    return name


def check_uuid(value: object, field: str = "uuid") -> str:
    """Return the canonical form of a UUID string, else raise InvalidInput."""
    try:
        return str(uuidlib.UUID(str(value))) if isinstance(value, str) else _bad_uuid(value, field)
    except ValueError:
        return _bad_uuid(value, field)


def _bad_uuid(value: object, field: str) -> str:
    raise InvalidInput(f"must be a UUID, got {value!r}", field)


def check_id(value: object, field: str = "id") -> str:
    """Return ``value`` if it is a valid opaque identifier (job, fault, lock name)."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidInput(f"must be 1-128 of A-Z a-z 0-9 . _ - , got {value!r}", field)
    return value


def child(parent: str, name: str) -> str:
    """The path of the direct child ``name`` of the znode ``parent``.

    For directories whose path is not fixed by :class:`Keyspace` (a lock
    recipe works on any lock directory) and for children whose names
    ZooKeeper chose (sequential znodes, names listed by ``get_children``).
    A trailing ``/`` of ``parent`` is ignored, so the child of ``/`` is
    ``/name``. ``name`` may end in ``-`` (a sequential-znode prefix).

    :raises InvalidInput: ``name`` is empty, ``.`` or ``..``, or contains
        ``/`` or a NUL character (it would not be one path component).
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise InvalidInput(f"must be one znode name (no '/', not '', '.' or '..'), got {name!r}",
                           "child")
    return f"{parent.rstrip('/')}/{name}"


class Keyspace:
    """Builds every path under one root (default ``/pvc``)."""

    def __init__(self, root: str = "/pvc") -> None:
        if (not isinstance(root, str) or not _ROOT_RE.fullmatch(root)
                or any(part in (".", "..") for part in root.split("/"))):
            raise InvalidInput(f"must be an absolute znode path like /pvc, got {root!r}",
                               "zookeeper.root")
        self.root = root

    def _p(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    # schema and cluster
    def schema(self) -> str:
        return self._p("schema")

    def cluster(self) -> str:
        return self._p("cluster")

    def cluster_config(self) -> str:
        return self._p("cluster", "config")

    def primary(self) -> str:
        return self._p("cluster", "primary")

    # nodes
    def nodes(self) -> str:
        return self._p("nodes")

    def node(self, name: str) -> str:
        return self._p("nodes", check_node_name(name))

    def node_alive(self, name: str) -> str:
        return self._p("nodes", check_node_name(name), "alive")

    def node_keepalive(self, name: str) -> str:
        return self._p("nodes", check_node_name(name), "keepalive")

    # VMs
    def vms(self) -> str:
        return self._p("vms")

    def vm(self, vm_uuid: str) -> str:
        return self._p("vms", check_uuid(vm_uuid))

    def vm_state(self, vm_uuid: str) -> str:
        return self._p("vms", check_uuid(vm_uuid), "state")

    def vm_placement(self, vm_uuid: str) -> str:
        return self._p("vms", check_uuid(vm_uuid), "placement")

    def vm_xml(self, vm_uuid: str) -> str:
        return self._p("vms", check_uuid(vm_uuid), "xml")

    def vm_lease(self, vm_uuid: str) -> str:
        return self._p("vms", check_uuid(vm_uuid), "lease")

    def vm_console(self, vm_uuid: str) -> str:
        return self._p("vms", check_uuid(vm_uuid), "console")

    def vm_names(self) -> str:
        return self._p("vm_names")

    def vm_name(self, name: str) -> str:
        return self._p("vm_names", check_vm_name(name))

    # jobs, decisions, faults
    def jobs(self) -> str:
        return self._p("jobs")

    def job(self, job_id: str) -> str:
        return self._p("jobs", check_id(job_id, "job"))

    def decisions(self) -> str:
        return self._p("decisions")

    def decision_prefix(self) -> str:
        """Prefix for sequential decision znodes (ZooKeeper appends the number)."""
        return self._p("decisions", "d")

    def decision(self, name: str) -> str:
        """``{root}/decisions/{name}``: one decision record, by its znode name (``d{seq}``).

        ``name`` is a child name as listed under :meth:`decisions`.
        """
        return self._p("decisions", check_id(name, "decision"))

    def faults(self) -> str:
        return self._p("faults")

    def fault(self, fault_id: str) -> str:
        return self._p("faults", check_id(fault_id, "fault"))

    # locks
    def locks(self) -> str:
        return self._p("locks")

    def lock(self, name: str) -> str:
        return self._p("locks", check_id(name, "lock"))

    def flush_lock(self) -> str:
        return self.lock("flush")

    def fence_lock(self) -> str:
        return self.lock("fence")

    def primary_lock(self) -> str:
        return self.lock("primary")

    def transition_lock(self) -> str:
        """Read/write lock: a coordinator in relinquish or takeover holds the write side."""
        return self.lock("primary-transition")

    def schema_lock(self) -> str:
        return self.lock("schema")

    def migration_lock(self, vm_uuid: str) -> str:
        return self.lock(f"migrate-{check_uuid(vm_uuid)}")

    def base_paths(self) -> list[str]:
        """Directories every initialised cluster has."""
        return [self.cluster(), self.nodes(), self.vms(), self.vm_names(), self.jobs(),
                self.decisions(), self.faults(), self.locks()]

    def primary_request(self) -> str:
        """``{root}/cluster/primary_request``: JSON, a planned primary move (absent: none).

        Written by :func:`pvc_core.ops.nodes.request_primary` and
        :func:`~pvc_core.ops.nodes.request_secondary`; cleared by the
        coordinator that satisfied it (see docs/coordinator.md).
        """
        return self._p("cluster", "primary_request")
