"""Virtual IPs handed out as responder (RFC 7296 §2.19, §3.15): a CFG_REQUEST in IKE_AUTH
asking for INTERNAL_IP4_ADDRESS / INTERNAL_IP6_ADDRESS gets an address from the connection's
pools (:mod:`petrel.policy.pools`, leased by the peer's identity) in a CFG_REPLY, with the
pool's DNS servers; "dynamic" remote traffic selectors then mean that address.  A peer asking
for an address none of the pools can give gets INTERNAL_ADDRESS_FAILURE and no Child SA
(§1.2, §3.10.1); its IKE SA stays.  Leases are released when the IKE SA ends
(``IkeServices.destroy``) and move with it on an IKE SA rekey.
"""

from __future__ import annotations

import logging

from ..policy.connection import Connection
from ..wire.payloads import CP, ConfigAttribute, Notify, Payload, first_of
from ..wire.registry import CfgType, NotifyType
from .config_payload import ADDRESS, address_attribute, dns_attribute
from .sa import IkeSa
from .services import IkeServices

log = logging.getLogger("petrel.ike")


def assign(
    ctx: IkeServices, sa: IkeSa, conn: Connection, request: tuple[Payload, ...]
) -> tuple[list[Payload], bool]:
    """Our CP (or INTERNAL_ADDRESS_FAILURE) for the IKE_AUTH ``request``, and whether the
    first Child SA may follow (False: the peer asked for an address we could not give)."""
    cp = first_of(request, CP)
    if not isinstance(cp, CP) or cp.cfg_type != CfgType.CFG_REQUEST or not conn.pools:
        return [], True
    families = sorted({f for f, kind in ADDRESS.items() for a in cp.attributes if a.type == kind})
    if not families:
        return [], True
    attributes: list[ConfigAttribute] = []
    for family in families:
        for name in conn.pools:
            pool = ctx.pools.get(name)  # a connection loaded over VICI may name no pool
            if pool is None or pool.config.family != family:
                continue
            address = pool.acquire(sa.remote_id)
            if address is None:
                continue
            sa.remote_vips += ((name, str(address)),)
            attributes.append(address_attribute(address))
            attributes += [dns_attribute(d) for d in pool.config.dns]
            log.info("IKE SA %d: assigning virtual IP %s to '%s'", sa.ike_id, address, sa.remote_id)
            break
    if not attributes:
        ctx.fail(sa, NotifyType.INTERNAL_ADDRESS_FAILURE, "no virtual IP left in the pools", False)
        return [Notify(NotifyType.INTERNAL_ADDRESS_FAILURE)], False
    return [CP(CfgType.CFG_REPLY, tuple(attributes))], True
