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
from ..wire.payloads import CP, Payload
from ..wire.registry import CfgType
from .config_payload import address_attribute


def request(conn: Connection) -> list[Payload]:
    """The CFG_REQUEST of our IKE_AUTH, if the connection asks for virtual IPs."""
    attributes = tuple(address_attribute(ipaddress.ip_address(text)) for text in conn.vips)
    return [CP(CfgType.CFG_REQUEST, attributes)] if attributes else []


def proposed_local_ts(conn: Connection, selectors: tuple[Selector, ...]) -> tuple[Selector, ...]:
    """Our traffic selectors while the virtual IP is unknown: "dynamic" means the whole
    range of each family asked for (the selectors as they are when none is asked for)."""
    if not conn.vips:
        return selectors
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
