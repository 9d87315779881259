"""MOBIKE as responder (RFC 4555): the peer moves its IKE SA and Child SAs to new addresses.

Support is agreed in IKE_AUTH (both send MOBIKE_SUPPORTED; ``mobike = yes``, the default).
Then an INFORMATIONAL request carrying UPDATE_SA_ADDRESSES moves the IKE SA and its Child SAs
to the addresses that request came from and to (§3.5), with NAT detection redone from its
NAT_DETECTION_* notifies; UDP encapsulation, once on, stays on (§3.5 allows either).  Every
request with NAT_DETECTION_* notifies (an update, or a return routability check, §3.7) is
answered with ours for that path, and a COOKIE2 is echoed (§3.9).  Addresses the peer lists
(ADDITIONAL_IP*_ADDRESS, NO_ADDITIONAL_ADDRESSES) are accepted and not used: the responder
never picks the path.  An update carrying NO_NATS_ALLOWED whose addresses and ports differ
from the packet's is refused with UNEXPECTED_NAT_DETECTED, NAT detection not redone (§3.9).
Roaming ourselves, as the initiator, is :mod:`petrel.ike.roaming`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from ..wire.payloads import Notify, Payload
from ..wire.registry import NotifyType
from . import events as ev
from .keys import nat_notifies, redo_nat_detection
from .sa import IkeSa
from .services import IkeServices

log = logging.getLogger("petrel.ike")

MOBIKE_NOTIFIES = frozenset(
    {
        NotifyType.UPDATE_SA_ADDRESSES,
        NotifyType.NAT_DETECTION_SOURCE_IP,
        NotifyType.NAT_DETECTION_DESTINATION_IP,
        NotifyType.COOKIE2,
        NotifyType.ADDITIONAL_IP4_ADDRESS,
        NotifyType.ADDITIONAL_IP6_ADDRESS,
        NotifyType.NO_ADDITIONAL_ADDRESSES,
        NotifyType.NO_NATS_ALLOWED,
    }
)


def agreed(sa: IkeSa, request: Sequence[Payload]) -> list[Notify]:
    """IKE_AUTH as responder: MOBIKE_SUPPORTED in our answer when the initiator sent it and
    the connection allows MOBIKE."""
    conn = sa.connection
    asked = any(
        isinstance(p, Notify) and p.notify_type == NotifyType.MOBIKE_SUPPORTED for p in request
    )
    sa.mobike = asked and conn is not None and conn.mobike
    return [Notify(NotifyType.MOBIKE_SUPPORTED)] if sa.mobike else []


def answer(
    ctx: IkeServices,
    sa: IkeSa,
    notifies: Sequence[Notify],
    local: ev.Address,
    remote: ev.Address,
) -> list[Payload]:
    """The MOBIKE part of our answer to an INFORMATIONAL request from ``remote`` to
    ``local``; moves the SA on UPDATE_SA_ADDRESSES."""
    if not sa.mobike:
        return []
    types = {int(n.notify_type) for n in notifies}
    if NotifyType.UPDATE_SA_ADDRESSES in types:
        if any(
            n.notify_type == NotifyType.NO_NATS_ALLOWED and not _as_sent(n.data, remote, local)
            for n in notifies
        ):
            log.info("IKE SA %d: address update through a NAT refused (NO_NATS_ALLOWED)", sa.ike_id)
            return [Notify(NotifyType.UNEXPECTED_NAT_DETECTED)]
        _move(ctx, sa, notifies, local, remote)
    reply: list[Payload] = []
    if types & {NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP}:
        reply += nat_notifies(ctx.random, sa.spi_i, sa.spi_r, local, remote, fake=sa.nat_fake)
    reply += [
        Notify(NotifyType.COOKIE2, n.data)
        for n in notifies
        if n.notify_type == (NotifyType.COOKIE2)
    ][:1]
    return reply


def _as_sent(data: bytes, source: ev.Address, destination: ev.Address) -> bool:
    """NO_NATS_ALLOWED data (§4.2.9: source and destination address, then ports, as the peer
    sent the packet) equals what arrived: no NAT in between."""
    size = {12: 4, 36: 16}.get(len(data))
    if size is None:
        return False
    src, dst = data[:size], data[size : 2 * size]
    sport, dport = int.from_bytes(data[-4:-2], "big"), int.from_bytes(data[-2:], "big")
    try:
        return (
            ipaddress.ip_address(src) == ipaddress.ip_address(source[0])
            and ipaddress.ip_address(dst) == ipaddress.ip_address(destination[0])
            and (sport, dport) == (source[1], destination[1])
        )
    except ValueError:
        return False


def _move(
    ctx: IkeServices,
    sa: IkeSa,
    notifies: Sequence[Notify],
    local: ev.Address,
    remote: ev.Address,
) -> None:
    before = (sa.local, sa.remote, sa.encap)
    redo_nat_detection(sa, notifies, local, remote)
    sa.local, sa.remote = local, remote
    log.info(
        "IKE SA %d (%s): peer updated its address to %s:%d (MOBIKE)%s",
        sa.ike_id,
        sa.name,
        *remote,
        ", NAT detected" if sa.encap else "",
    )
    if (sa.local, sa.remote, sa.encap) != before:
        ctx.events.append(ev.IkeSaUpdated(sa.ike_id, local, remote, sa.encap))
