"""Parse the few fields of libvirt domain XML the fake hypervisor needs."""

from __future__ import annotations

import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pvc_core.errors import InvalidInput

_MIB = 1024 * 1024
#: libvirt memory units -> bytes (libvirt's default unit is KiB).
_UNITS: Mapping[str, int] = MappingProxyType({
    "b": 1, "bytes": 1,
    "kb": 1000, "k": 1024, "kib": 1024,
    "mb": 1000**2, "m": 1024**2, "mib": 1024**2,
    "gb": 1000**3, "g": 1024**3, "gib": 1024**3,
    "tb": 1000**4, "t": 1024**4, "tib": 1024**4,
})


@dataclass(frozen=True)
class ParsedDomain:
    """The fields of a domain definition, and its XML with the UUID filled in.

    ``domain_type`` is the ``type`` attribute of ``<domain>`` ("" when absent);
    ``console_path`` the file its serial console is logged to (None if none).
    """

    uuid: str
    name: str
    memory_mib: int
    vcpus: int
    xml: str
    domain_type: str = ""
    console_path: str | None = None


def _int(text: str | None, what: str) -> int:
    try:
        value = int((text or "").strip())
    except ValueError:
        raise InvalidInput(f"domain XML: {what} is not an integer: {text!r}", "xml") from None
    if value <= 0:
        raise InvalidInput(f"domain XML: {what} must be positive, not {value}", "xml")
    return value


def parse_root(xml: str) -> ET.Element:
    """Parse XML whose root must be ``<domain>``; raises InvalidInput."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InvalidInput(f"domain XML is malformed: {exc}", "xml") from None
    if root.tag != "domain":
        raise InvalidInput(f"domain XML: root element is <{root.tag}>, not <domain>", "xml")
    return root


def console_path(root: ET.Element) -> str | None:
    """The file a domain's serial console is written to, or None.

    In order of preference: ``<serial type='file'><source path=.../>``, a
    serial device's ``<log file=.../>``, then the same two for ``<console>``.
    """
    devices = root.find("devices")
    if devices is None:
        return None
    for tag in ("serial", "console"):
        for dev in devices.findall(tag):
            source = dev.find("source")
            if dev.get("type") == "file" and source is not None and source.get("path"):
                return source.get("path")
        for dev in devices.findall(tag):
            log = dev.find("log")
            if log is not None and log.get("file"):
                return log.get("file")
    return None


def parse_domain_xml(xml: str) -> ParsedDomain:
    """Parse ``<domain>`` XML; generate a UUID when it has none.

    Raises InvalidInput for malformed XML, a root that is not ``domain``, a
    missing name or memory, a bad UUID, unit or number.
    """
    root = parse_root(xml)
    name = (root.findtext("name") or "").strip()
    if not name:
        raise InvalidInput("domain XML: <name> is missing or empty", "xml")
    uuid_el = root.find("uuid")
    if uuid_el is None or not (uuid_el.text or "").strip():
        uuid_el = uuid_el if uuid_el is not None else ET.SubElement(root, "uuid")
        uuid_el.text = str(uuidlib.uuid4())
    try:
        uuid = str(uuidlib.UUID((uuid_el.text or "").strip()))
    except ValueError:
        raise InvalidInput(f"domain XML: bad <uuid> {uuid_el.text!r}", "xml") from None
    uuid_el.text = uuid
    mem_el = root.find("memory")
    if mem_el is None:
        raise InvalidInput("domain XML: <memory> is missing", "xml")
    unit = mem_el.get("unit", "KiB").lower()
    if unit not in _UNITS:
        raise InvalidInput(f"domain XML: unknown memory unit {mem_el.get('unit')!r}", "xml")
    memory_bytes = _int(mem_el.text, "<memory>") * _UNITS[unit]
    vcpu_el = root.find("vcpu")
    vcpus = 1 if vcpu_el is None else _int(vcpu_el.text, "<vcpu>")
    return ParsedDomain(uuid=uuid, name=name, memory_mib=-(-memory_bytes // _MIB),
                        vcpus=vcpus, xml=ET.tostring(root, encoding="unicode"),
                        domain_type=(root.get("type") or "").strip(),
                        console_path=console_path(root))
