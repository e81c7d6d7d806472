"""VM records: metadata, desired state, placement and XML, one znode each.

A VM is defined and removed in one multi-key transaction (its znodes and its
name in the name index), so a failure never leaves half a VM behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pvc_core.errors import AlreadyExists, InvalidInput, NotFound, VersionConflict
from pvc_core.keyspace import check_uuid, check_vm_name, child
from pvc_core.states import VMState
from pvc_core.store.base import Repository
from pvc_core.store.codec import Versioned, decode, encode, read_json, update_json
from pvc_core.store.records import Placement, VmMeta, VmRecord, VmStateRecord
from pvc_core.store.zk import Op


class VmRepository(Repository):
    """Define, read, change and remove VMs."""

    # -- define / remove ----------------------------------------------------

    def define(self, vm_uuid: str, name: str, xml: str, *, meta: VmMeta | None = None,
               node: str | None = None, state: VMState = VMState.STOP,
               by: str = "", memory_mib: int = 0, vcpus: int = 0) -> VmRecord:
        """Create a VM atomically; raise AlreadyExists if the name or UUID is taken."""
        vm_uuid = check_uuid(vm_uuid)
        check_vm_name(name)
        if not isinstance(xml, str) or not xml.strip():
            raise InvalidInput("must be a non-empty domain XML document", "xml")
        meta = meta or VmMeta()
        state_rec = VmStateRecord(state, "defined", by)
        placement = Placement(node, None)
        ops = [
            Op.create(self.ks.vm(vm_uuid), encode({
                "name": name, "meta": meta.to_dict(),
                "resources": {"memory_mib": memory_mib, "vcpus": vcpus}})),
            Op.create(self.ks.vm_state(vm_uuid), encode(state_rec.to_dict())),
            Op.create(self.ks.vm_placement(vm_uuid), encode(placement.to_dict())),
            Op.create(self.ks.vm_xml(vm_uuid), xml.encode()),
            Op.create(self.ks.vm_name(name), vm_uuid.encode()),
        ]
        try:
            self.zk.transaction(ops)
        except AlreadyExists as exc:
            if self.ks.vm_name(name) in str(exc):
                raise AlreadyExists(f"VM name {name!r} is already taken") from None
            raise AlreadyExists(f"VM {vm_uuid} is already defined") from None
        return VmRecord(vm_uuid, name, meta, state_rec, placement, {}, memory_mib, vcpus)

    def remove(self, vm_uuid: str) -> None:
        """Delete the VM and everything under it, and free its name, atomically."""
        record = self.get(vm_uuid)
        base = self.ks.vm(record.uuid)
        kids = self.zk.children(base)
        ops = [Op.delete(child(base, kid)) for kid in kids]
        ops += [Op.delete(base, record.versions["meta"]), Op.delete(self.ks.vm_name(record.name))]
        try:
            self.zk.transaction(ops)
        except (VersionConflict, NotFound):
            raise VersionConflict(
                f"VM {record.name} changed while it was being removed; try again") from None

    # -- read -----------------------------------------------------------------

    def uuids(self) -> list[str]:
        return sorted(self.zk.children(self.ks.vms()))

    def resolve(self, name_or_uuid: str) -> str:
        """Return the UUID of a VM given its name or UUID; NotFound otherwise."""
        try:
            vm_uuid = check_uuid(name_or_uuid)
        except InvalidInput:
            try:
                data, _ = self.zk.get(self.ks.vm_name(check_vm_name(name_or_uuid)))
            except NotFound:
                raise NotFound(f"VM {name_or_uuid!r} does not exist") from None
            return data.decode()
        if self.zk.exists(self.ks.vm(vm_uuid)) is None:
            raise NotFound(f"VM {name_or_uuid!r} does not exist")
        return vm_uuid

    def get(self, name_or_uuid: str) -> VmRecord:
        vm_uuid = self.resolve(name_or_uuid)
        records = self._read_many([vm_uuid])
        if not records:
            raise NotFound(f"VM {name_or_uuid!r} does not exist")
        return records[0]

    def by_uuid(self, vm_uuid: str) -> VmRecord:
        """One VM by its canonical UUID, in one pipelined round trip (no name lookup)."""
        records = self._read_many([vm_uuid])
        if not records:
            raise NotFound(f"VM {vm_uuid} does not exist")
        return records[0]

    def all(self, uuids: list[str] | None = None) -> list[VmRecord]:
        """Every VM (or those of ``uuids``), read with pipelined requests (three
        znodes per VM); VMs removed meanwhile are left out."""
        return self._read_many(self.uuids() if uuids is None else uuids)

    def _read_many(self, uuids: list[str]) -> list[VmRecord]:
        paths: list[str] = []
        for u in uuids:
            paths += [self.ks.vm(u), self.ks.vm_state(u), self.ks.vm_placement(u)]
        results = self.zk.get_many(paths)
        out = []
        for i, u in enumerate(uuids):
            meta_r, state_r, place_r = results[3 * i:3 * i + 3]
            if meta_r is None or state_r is None or place_r is None:
                continue  # removed while listing
            meta = decode(meta_r[0], paths[3 * i])
            resources = meta.get("resources") or {}
            out.append(VmRecord(
                uuid=u, name=meta["name"], meta=VmMeta.from_dict(meta.get("meta")),
                state=VmStateRecord.from_dict(decode(state_r[0], paths[3 * i + 1])),
                placement=Placement.from_dict(decode(place_r[0], paths[3 * i + 2])),
                versions={"meta": meta_r[1].version, "state": state_r[1].version,
                          "placement": place_r[1].version},
                memory_mib=int(resources.get("memory_mib", 0)),
                vcpus=int(resources.get("vcpus", 0))))
        return out

    def get_xml(self, name_or_uuid: str) -> Versioned[str]:
        vm_uuid = self.resolve(name_or_uuid)
        data, stat = self.zk.get(self.ks.vm_xml(vm_uuid))
        return Versioned(data.decode(), stat.version)

    def get_console(self, name_or_uuid: str) -> str:
        """The VM's published console log tail ("" when none was published)."""
        vm_uuid = self.resolve(name_or_uuid)
        try:
            data, _ = self.zk.get(self.ks.vm_console(vm_uuid))
        except NotFound:
            return ""
        return data.decode(errors="replace")

    # -- change ---------------------------------------------------------------

    def set_console(self, vm_uuid: str, text: str, max_bytes: int = 900_000) -> None:
        """Publish the console log tail (its last ``max_bytes``); a VM removed
        meanwhile is left alone."""
        path = self.ks.vm_console(vm_uuid)
        if self.zk.exists(self.ks.vm(vm_uuid)) is None:
            return
        data = text.encode()[-max_bytes:]
        if self.zk.exists(path) is None:
            self.zk.create(path, data)
        else:
            self.zk.set(path, data)

    def set_state(self, name_or_uuid: str, state: VMState, reason: str = "", by: str = "",
                  expected_version: int = -1) -> VmStateRecord:
        """Set the desired state; with ``expected_version`` >= 0, compare-and-set."""
        vm_uuid = self.resolve(name_or_uuid)
        rec = VmStateRecord(VMState(state), reason, by)
        self.zk.set(self.ks.vm_state(vm_uuid), encode(rec.to_dict()), expected_version)
        return rec

    def update_placement(self, name_or_uuid: str,
                         change: Callable[[Placement], Placement]) -> Placement:
        vm_uuid = self.resolve(name_or_uuid)
        result = update_json(self.zk, self.ks.vm_placement(vm_uuid),
                             lambda raw: change(Placement.from_dict(raw)).to_dict())
        return Placement.from_dict(result.value)

    def set_placement_and_state(self, record: VmRecord, placement: Placement,
                                state: VmStateRecord | None = None) -> None:
        """Write placement (and state) in one transaction, both compare-and-set
        against the versions ``record`` was read at.

        Raises VersionConflict when either changed since: the caller re-reads
        and decides again.
        """
        ops = [Op.set(self.ks.vm_placement(record.uuid), encode(placement.to_dict()),
                      record.versions.get("placement", -1))]
        if state is not None:
            ops.append(Op.set(self.ks.vm_state(record.uuid), encode(state.to_dict()),
                              record.versions.get("state", -1)))
        try:
            self.zk.transaction(ops)
        except VersionConflict:
            raise VersionConflict(f"VM {record.name} changed meanwhile; try again") from None

    def update_meta(self, name_or_uuid: str, **changes: Any) -> VmMeta:
        """Change metadata fields (validated); unknown fields are InvalidInput."""
        vm_uuid = self.resolve(name_or_uuid)

        def apply(raw: dict[str, Any]) -> dict[str, Any]:
            merged = {**VmMeta.from_dict(raw.get("meta")).to_dict(), **changes}
            return {**raw, "meta": VmMeta.from_dict(merged).to_dict()}

        result = update_json(self.zk, self.ks.vm(vm_uuid), apply)
        return VmMeta.from_dict(result.value["meta"])

    def set_xml(self, name_or_uuid: str, xml: str, *, memory_mib: int, vcpus: int,
                expected_version: int = -1) -> None:
        """Replace the domain XML and the resources read from it, atomically."""
        if not isinstance(xml, str) or not xml.strip():
            raise InvalidInput("must be a non-empty domain XML document", "xml")
        vm_uuid = self.resolve(name_or_uuid)
        raw = read_json(self.zk, self.ks.vm(vm_uuid))
        doc = {**raw.value, "resources": {"memory_mib": memory_mib, "vcpus": vcpus}}
        self.zk.transaction([Op.set(self.ks.vm_xml(vm_uuid), xml.encode(), expected_version),
                             Op.set(self.ks.vm(vm_uuid), encode(doc), raw.version)])

    def raw_meta(self, name_or_uuid: str) -> Versioned[Any]:
        return read_json(self.zk, self.ks.vm(self.resolve(name_or_uuid)))

