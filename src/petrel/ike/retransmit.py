"""Retransmission of our outstanding request (RFC 7296 §2.1, §2.4): resend on the back-off
schedule, give up after ``retransmit_tries`` or the task's own deadline; the peer is then
taken for dead."""

from __future__ import annotations

import logging

from .sa import IkeSa, IkeState
from .services import IkeServices

log = logging.getLogger("petrel.ike")


def outstanding_deadlines(sa: IkeSa) -> list[float]:
    """When the outstanding request (if any) is due to be resent, or given up."""
    pending = sa.outstanding
    if pending is None:
        return []
    if pending.give_up_at is None:
        return [pending.next_send]
    return [pending.next_send, pending.give_up_at]


def retransmit_or_give_up(ctx: IkeServices, sa: IkeSa, now: float) -> None:
    """Resend the outstanding request when due; destroy the SA when its tries are spent."""
    pending = sa.outstanding
    if pending is None or sa.state is IkeState.DEAD:
        return
    expired = pending.give_up_at is not None and now >= pending.give_up_at
    if now < pending.next_send and not expired:
        return
    if pending.tries > ctx.settings.retransmit_tries or expired:
        log.warning(
            "IKE SA %d (%s): giving up after %d retransmits of message %d",
            sa.ike_id,
            sa.name,
            pending.tries - 1,
            pending.message_id,
        )
        ctx.destroy(sa, "peer not responding", dead_peer=True)
        return
    log.info("IKE SA %d: retransmit %d of request %d", sa.ike_id, pending.tries, pending.message_id)
    ctx.send(sa, pending.data)
    pending.tries += 1  # §2.1: each wait longer than the last
    pending.next_send = now + ctx.backoff(pending.tries)
