"""Virtual IPs asked for as initiator (swanctl ``vips``, RFC 7296 §2.19, §3.15): IKE_AUTH
carries a CFG_REQUEST for each address family asked (0.0.0.0 / :: for any address, or the
address wanted) and, while the address is unknown, "dynamic" local traffic selectors of
the whole family; the CFG_REPLY's addresses become the IKE SA's own virtual IPs, which the
data plane puts on its device (``VirtualIpsAssigned``) and which "dynamic" local selectors
mean from then on.  A reply without the address asked for ends the IKE SA: a Child SA for
the whole address range would otherwise claim traffic it was never meant to carry.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from ..policy.connection import Connection
from ..policy.selectors import Selector
from ..wire.payloads import CP, ConfigAttribute, Payload
from ..wire.registry import CfgAttr, CfgType

_ADDRESS = {4: CfgAttr.INTERNAL_IP4_ADDRESS, 6: CfgAttr.INTERNAL_IP6_ADDRESS}
_SIZE = {4: 4, 6: 17}  # §3.15.1: an IPv6 address is followed by its prefix length


def request(conn: Connection) -> list[Payload]:
    """The CFG_REQUEST of our IKE_AUTH, if the connection asks for virtual IPs."""
    attributes = []
    for text in conn.vips:
        address = ipaddress.ip_address(text)
        value = b"" if address.is_unspecified else address.packed
        if value and address.version == 6:
            value += bytes((128,))
        attributes.append(ConfigAttribute(_ADDRESS[address.version], value))
    return [CP(CfgType.CFG_REQUEST, tuple(attributes))] if attributes else []


def proposed_local_ts(conn: Connection, selectors: tuple[Selector, ...]) -> tuple[Selector, ...]:
    """Our traffic selectors while the virtual IP is unknown: "dynamic" means the whole
    range of each family asked for."""
    families = {ipaddress.ip_address(v).version for v in conn.vips}
    out: list[Selector] = []
    for selector in selectors:
        if not selector.dynamic:
            out.append(selector)
            continue
        for family in sorted(families):
            whole = Selector.from_cidr("0.0.0.0/0" if family == 4 else "::/0")
            out.append(replace(selector, start=whole.start, end=whole.end, dynamic=False))
    return tuple(out)


def assigned(payloads: tuple[Payload, ...]) -> tuple[str, ...]:
    """The addresses of the responder's CFG_REPLY (malformed attributes skipped)."""
    out = []
    for payload in payloads:
        if not isinstance(payload, CP) or payload.cfg_type != CfgType.CFG_REPLY:
            continue
        for attribute in payload.attributes:
            for family, kind in _ADDRESS.items():
                if attribute.type == kind and len(attribute.value) == _SIZE[family]:
                    address = ipaddress.ip_address(attribute.value[: 4 if family == 4 else 16])
                    if not address.is_unspecified:
                        out.append(str(address))
    return tuple(out)
