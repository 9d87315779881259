"""MOBIKE as initiator (RFC 4555): we roam, and tell the responder where we went.

The original initiator of an IKE SA is its MOBIKE initiator (§3.1).  It offers MOBIKE in
IKE_AUTH (``mobike = yes``, the default) and has already floated to port 4500 if the
responder does NAT detection (§3.3, see :mod:`petrel.ike.ike_init`).  When the host's
source address towards the peer changes (the daemon watches the routing tables),
:func:`roam` moves the IKE SA and its Child SAs to the new address at once and sends an
INFORMATIONAL with UPDATE_SA_ADDRESSES, NAT detection for the new path and a COOKIE2
(§3.5, §3.9); outstanding requests are retransmitted from the new address.  The answer's
NAT detection may turn UDP encapsulation on; once on it stays on, as with the responder
(:mod:`petrel.ike.mobike`).  We list no additional addresses (§3.4 makes them optional).

Behind a NAT, our liveness checks carry NAT detection (§3.8): when the address the peer saw
(its NAT_DETECTION_DESTINATION_IP) is not the one it last reported, the NAT mapping changed,
and an update tells the peer, which under MOBIKE does not follow IKE messages by itself.
The first check after IKE_SA_INIT (port 500) or an IKE rekey (new SPIs) always differs: one
extra update, harmless as §3.8 notes.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence

from ..policy.connection import Connection
from ..wire.payloads import Message, Notify, Payload
from ..wire.registry import ExchangeType, NotifyType
from . import events as ev
from .ike_delete import delete_ike
from .ike_init import addr_matches
from .keys import nat_notifies, redo_nat_detection, reported_address_hash
from .sa import IkeSa, IkeState
from .services import NAT_T_PORT, IkeServices
from .task import Task

log = logging.getLogger("petrel.ike")

COOKIE2_SIZE = 16  # §3.9: 8 to 64 octets


def offer(conn: Connection) -> list[Notify]:
    """IKE_AUTH as initiator: N(MOBIKE_SUPPORTED) when the connection allows MOBIKE."""
    return [Notify(NotifyType.MOBIKE_SUPPORTED)] if conn.mobike else []


def note_answer(sa: IkeSa, conn: Connection, notifies: Sequence[Notify]) -> None:
    """IKE_AUTH response: MOBIKE is agreed when we offered it and the responder answered."""
    sa.mobike = conn.mobike and any(n.notify_type == NotifyType.MOBIKE_SUPPORTED for n in notifies)


def roam(ctx: IkeServices, sa: IkeSa, address: str, now: float) -> bool:
    """Our address towards the peer is now ``address``: move the IKE SA (on port 4500) and
    its Child SAs there and tell the peer (§3.5).  False when this SA cannot roam: MOBIKE
    not agreed, not established, or we are not its original initiator."""
    if not (sa.mobike and sa.original_initiator and sa.state is IkeState.ESTABLISHED):
        return False
    local, remote = (address, NAT_T_PORT), (sa.remote[0], NAT_T_PORT)
    if (local, remote) == (sa.local, sa.remote):
        return False
    if sa.connection is not None and not addr_matches(sa.connection.local_addrs, address):
        log.info("IKE SA %d: not roaming to %s, outside local_addrs", sa.ike_id, address)
        return False
    log.info(
        "IKE SA %d (%s): our address changed from %s to %s, updating the peer (MOBIKE)",
        sa.ike_id,
        sa.name,
        sa.local[0],
        address,
    )
    ctx.move(sa, local, remote)
    _update(ctx, sa, now)
    return True


def _update(ctx: IkeServices, sa: IkeSa, now: float) -> None:
    """Queue an address update, unless one already waits: it is built when sent, from the
    addresses then current (§3.5's "pending_update")."""
    if not any(isinstance(task, AddressUpdate) for task in sa.tasks):
        ctx.queue(sa, AddressUpdate(), now)


def checks_mapping(sa: IkeSa) -> bool:
    """Do our liveness checks watch the NAT mapping (§3.8)?  When we roam and sit behind a
    NAT."""
    return sa.mobike and sa.original_initiator and sa.nat_local


def liveness_payloads(ctx: IkeServices, sa: IkeSa) -> list[Payload]:
    """NAT detection for the current path in a liveness check, when it watches the mapping."""
    if not checks_mapping(sa):
        return []
    return list(nat_notifies(ctx.random, sa.spi_i, sa.spi_r, sa.local, sa.remote, sa.nat_fake))


def liveness_answered(ctx: IkeServices, sa: IkeSa, payloads: Sequence[Payload], now: float) -> None:
    """A liveness check's answer: an update if the peer now sees us elsewhere (§3.8)."""
    if not checks_mapping(sa):
        return
    seen = reported_address_hash(payloads)
    if not seen or hmac.compare_digest(seen, sa.nat_dest_hash):
        return
    log.info("IKE SA %d: our NAT mapping changed, updating the peer (MOBIKE)", sa.ike_id)
    _update(ctx, sa, now)


def carry_update(old: IkeSa, new: IkeSa) -> None:
    """``old`` was rekeyed into ``new`` while an address update was queued or outstanding on
    it: the peer may have made its new IKE SA from the old addresses, so ``new`` owes the
    update too (queued; the rekey's side kicks it once the peer knows ``new``).  An extra
    update is harmless (§3.8)."""
    outstanding = old.outstanding.task if old.outstanding is not None else None
    pending = isinstance(outstanding, AddressUpdate) or any(
        isinstance(task, AddressUpdate) for task in old.tasks
    )
    if pending and new.mobike and new.original_initiator:
        new.tasks.append(AddressUpdate())


class AddressUpdate(Task):
    """INFORMATIONAL { N(UPDATE_SA_ADDRESSES), N(NAT_DETECTION_*), N(COOKIE2) } (§3.5)."""

    exchange = ExchangeType.INFORMATIONAL

    def __init__(self) -> None:
        self.cookie2 = b""
        self.path: tuple[ev.Address, ev.Address] | None = None

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        if not sa.mobike or sa.state is not IkeState.ESTABLISHED:
            return None
        self.cookie2 = ctx.random(COOKIE2_SIZE)
        self.path = (sa.local, sa.remote)
        return [
            Notify(NotifyType.UPDATE_SA_ADDRESSES),
            *nat_notifies(ctx.random, sa.spi_i, sa.spi_r, sa.local, sa.remote, sa.nat_fake),
            Notify(NotifyType.COOKIE2, self.cookie2),
        ]

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        notifies = [p for p in payloads if isinstance(p, Notify)]
        echoed = [n.data for n in notifies if n.notify_type == NotifyType.COOKIE2]
        if not echoed or not hmac.compare_digest(echoed[0], self.cookie2):
            # §3.9: the answer must return our COOKIE2; charon closes the IKE SA as well.
            log.warning("IKE SA %d: address update answered without our COOKIE2", sa.ike_id)
            delete_ike(ctx, sa, now, "COOKIE2 mismatch")
            return False
        if any(n.notify_type == NotifyType.UNACCEPTABLE_ADDRESSES for n in notifies):
            log.warning("IKE SA %d: the peer refused our new address (MOBIKE)", sa.ike_id)
            return False
        if self.path != (sa.local, sa.remote):
            return False  # we moved again meanwhile: the queued update speaks for that path
        was_encap = sa.encap
        sa.nat_dest_hash = reported_address_hash(notifies) or sa.nat_dest_hash
        redo_nat_detection(sa, notifies, sa.local, sa.remote)
        log.info(
            "IKE SA %d (%s): the peer follows us to %s:%d (MOBIKE)%s",
            sa.ike_id,
            sa.name,
            *sa.local,
            ", NAT detected" if sa.encap and not was_encap else "",
        )
        if sa.encap != was_encap:
            ctx.events.append(ev.IkeSaUpdated(sa.ike_id, sa.local, sa.remote, sa.encap))
        return False
