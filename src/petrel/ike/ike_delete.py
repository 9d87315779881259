"""Deleting an IKE SA with an INFORMATIONAL Delete (RFC 7296 §1.4.1) as initiator."""

from __future__ import annotations

from ..wire.payloads import Delete, Message, Payload
from ..wire.registry import ExchangeType, ProtocolId
from .sa import IkeSa, IkeState
from .services import IkeServices
from .task import Task


class IkeDelete(Task):
    """The IKE SA is destroyed once the peer answered (or, §2.21.4, no longer knows it)."""

    exchange = ExchangeType.INFORMATIONAL
    deletes_ike = True

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        if sa.state is IkeState.DEAD:
            return None
        return [Delete(ProtocolId.IKE)]

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        ctx.destroy(sa, self.reason)
        return False


def delete_ike(ctx: IkeServices, sa: IkeSa, now: float, reason: str) -> None:
    """Send Delete for an IKE SA and destroy it once answered (or given up on)."""
    sa.state = IkeState.DELETING
    ctx.queue(sa, IkeDelete(reason), now)
