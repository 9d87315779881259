"""Configuration payload attributes for virtual IPs (RFC 7296 §3.15.1): addresses and DNS
servers, IPv4 or IPv6, one encoding for both roles."""

from __future__ import annotations

import ipaddress

from ..wire.payloads import CP, ConfigAttribute, Payload
from ..wire.registry import CfgAttr, CfgType

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ADDRESS = {4: CfgAttr.INTERNAL_IP4_ADDRESS, 6: CfgAttr.INTERNAL_IP6_ADDRESS}
_DNS = {4: CfgAttr.INTERNAL_IP4_DNS, 6: CfgAttr.INTERNAL_IP6_DNS}
_SIZE = {4: 4, 6: 17}  # an IPv6 address is followed by its prefix length


def address_attribute(address: IpAddress) -> ConfigAttribute:
    """INTERNAL_IP*_ADDRESS with ``address`` (empty for 0.0.0.0 / ::, "any address")."""
    if address.is_unspecified:
        return ConfigAttribute(ADDRESS[address.version])
    value = address.packed + (bytes((128,)) if address.version == 6 else b"")
    return ConfigAttribute(ADDRESS[address.version], value)


def dns_attribute(server: IpAddress) -> ConfigAttribute:
    return ConfigAttribute(_DNS[server.version], server.packed)


def replied_addresses(payloads: tuple[Payload, ...]) -> tuple[str, ...]:
    """The addresses of a CFG_REPLY among ``payloads`` (malformed attributes skipped)."""
    out = []
    for payload in payloads:
        if not isinstance(payload, CP) or payload.cfg_type != CfgType.CFG_REPLY:
            continue
        for attribute in payload.attributes:
            for family, kind in ADDRESS.items():
                if attribute.type == kind and len(attribute.value) == _SIZE[family]:
                    address = ipaddress.ip_address(attribute.value[: 4 if family == 4 else 16])
                    if not address.is_unspecified:
                        out.append(str(address))
    return tuple(out)
