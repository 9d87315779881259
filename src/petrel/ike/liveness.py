"""Liveness checks, "dead peer detection" (RFC 7296 §1.4, §2.4): an empty INFORMATIONAL
when the peer was silent for dpd_delay, given up after dpd_timeout; with NAT detection when
a roaming initiator behind a NAT watches its mapping (RFC 4555 §3.8, :mod:`roaming`)."""

from __future__ import annotations

from ..policy.connection import Connection
from ..wire.payloads import Message, Payload
from ..wire.registry import ExchangeType
from .roaming import liveness_answered, liveness_payloads
from .sa import IkeSa, IkeState
from .services import IkeServices
from .task import Task
from .timers import DPD


class Liveness(Task):
    exchange = ExchangeType.INFORMATIONAL

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        return liveness_payloads(ctx, sa)

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        sa.timers[DPD] = now + self.conn.dpd_delay
        liveness_answered(ctx, sa, payloads, now)
        return False

    def give_up_at(self, sa: IkeSa, now: float) -> float | None:
        return now + self.conn.dpd_timeout if self.conn.dpd_timeout > 0 else None


def check_liveness(ctx: IkeServices, sa: IkeSa, now: float) -> None:
    """The DPD timer fired: check the peer unless it was heard from lately or we are busy."""
    conn = sa.connection
    if conn is None or conn.dpd_delay <= 0 or sa.state is not IkeState.ESTABLISHED:
        return
    quiet = now - sa.last_peer_activity
    if quiet < conn.dpd_delay or sa.outstanding is not None:
        sa.timers[DPD] = now + max(conn.dpd_delay - quiet, 0.5)
        return
    ctx.run(sa, Liveness(conn), now)
