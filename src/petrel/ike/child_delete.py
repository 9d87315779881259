"""Deleting Child SAs with INFORMATIONAL Delete payloads (RFC 7296 §1.4.1), both roles,
including both sides deleting at once."""

from __future__ import annotations

from ..wire.payloads import Delete, Message, Payload
from ..wire.registry import ExchangeType, ProtocolId
from .sa import ChildSa, ChildState, IkeSa
from .services import IkeServices
from .task import Notification, Task
from .timers import TimerKey

REKEY_LINGER = 2.0  # seconds an old inbound SA keeps receiving after its replacement is up
# Seconds outbound traffic of a Child SA that the peer deleted without a replacement waits for
# a new SA of that child (strongSwan deletes an expired SA, then re-creates it at once).
PEER_DELETE_HOLD = 2.0


def spi_bytes(value: int) -> bytes:
    return value.to_bytes(4, "big")


class ChildDelete(Task):
    """Delete one of our Child SAs; it goes down once the peer answered."""

    exchange = ExchangeType.INFORMATIONAL

    def __init__(self, child: ChildSa, reason: str, linger: bool) -> None:
        self.child = child
        self.reason = reason
        self.linger = linger

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        if sa.children.get(self.child.child_id) is not self.child:
            return None  # the peer deleted it meanwhile
        return [Delete(ProtocolId.ESP, (spi_bytes(self.child.spi_in),), 4)]

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        child = self.child
        if sa.children.get(child.child_id) is child:
            ctx.child_down(sa, child, self.reason, linger=REKEY_LINGER if self.linger else 0.0)
        return False


def delete_child(
    ctx: IkeServices, sa: IkeSa, child: ChildSa, now: float, reason: str, linger: bool = False
) -> None:
    """Queue the Delete of ``child`` (once: a Child SA being deleted is left alone)."""
    if child.state == ChildState.DELETING:
        return
    child.state = ChildState.DELETING
    for key in TimerKey.of_child(child.child_id):
        sa.timers.pop(key, None)
    ctx.queue(sa, ChildDelete(child, reason, linger), now)


def delete_spi(ctx: IkeServices, sa: IkeSa, spi_in: int, now: float) -> None:
    """Delete an inbound SPI the peer may hold for a Child SA we did not install."""
    delete = Delete(ProtocolId.ESP, (spi_bytes(spi_in),), 4)
    ctx.queue(sa, Notification([delete]), now)


def peer_deletes(ctx: IkeServices, sa: IkeSa, delete: Delete) -> Delete | None:
    """Responder: the peer deletes Child SAs (§1.4.1); returns the Delete to answer with."""
    ours = []
    for spi in delete.spis:
        spi_out = int.from_bytes(spi, "big")
        for child in list(sa.children.values()):
            if child.spi_out != spi_out:
                continue
            ours_too = child.state == ChildState.DELETING
            if not ours_too:
                # Both deleting at once: answer without it (§1.4.1).
                ours.append(spi_bytes(child.spi_in))
            rekeyed = child.replacement is not None or child.peer_rekey is not None
            ctx.child_down(
                sa,
                child,
                "rekeyed" if rekeyed else "deleted by peer",
                linger=REKEY_LINGER if rekeyed else 0.0,
                hold=0.0 if rekeyed or ours_too else PEER_DELETE_HOLD,
            )
    return Delete(delete.protocol, tuple(ours), 4) if ours else None
