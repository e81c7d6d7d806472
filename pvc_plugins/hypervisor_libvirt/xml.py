"""Check the domain XML libvirt is given, on top of the core parser.

The core (:mod:`pvc_core.domainxml`) reads name, UUID, memory, vCPUs and
the console log path; libvirt additionally needs a ``type`` attribute on
``<domain>`` and reports a missing one only as an internal error, so this
module checks it first and reports :class:`~pvc_core.errors.InvalidInput`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvc_core.domainxml import console_path, parse_domain_xml, parse_root
from pvc_core.errors import InvalidInput


@dataclass(frozen=True)
class DomainXml:
    """What the driver reads from a domain definition.

    :ivar uuid: the canonical lower-case UUID, or None when the XML has none
        (libvirt then generates one).
    """

    name: str
    uuid: str | None
    domain_type: str
    memory_mib: int
    vcpus: int
    console_path: str | None


def parse_domain(xml: str) -> DomainXml:
    """Parse and check a ``<domain>`` definition; raises InvalidInput."""
    has_uuid = bool((parse_root(xml).findtext("uuid") or "").strip())
    parsed = parse_domain_xml(xml)
    if not parsed.domain_type:
        raise InvalidInput("domain XML: the <domain> element has no type attribute")
    return DomainXml(name=parsed.name, uuid=parsed.uuid if has_uuid else None,
                     domain_type=parsed.domain_type, memory_mib=parsed.memory_mib,
                     vcpus=parsed.vcpus, console_path=parsed.console_path)


def console_path_of(xml: str) -> str | None:
    """The serial console log file named in domain XML, or None."""
    return console_path(parse_root(xml))
