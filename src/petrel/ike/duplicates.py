"""Requests the peer sends again (RFC 7296 §2.1): answered from the cache of our last response,
never processed twice, and only when authentic (for a fragmented one its first fragment is
checked, RFC 7383 §2.6.1)."""

from __future__ import annotations

import logging

from ..crypto.errors import CryptoError
from ..wire.errors import DecodeError
from ..wire.payloads import SK, SKF, Message
from . import events as ev
from .fragment import open_fragment
from .protect import open_protected
from .sa import IkeSa
from .services import IkeServices

log = logging.getLogger("petrel.ike")


def answer_retransmitted_request(
    ctx: IkeServices,
    sa: IkeSa,
    data: bytes,
    message: Message,
    local: ev.Address,
    remote: ev.Address,
) -> None:
    """Resend our cached response to the request ``message`` (the one before the expected
    message ID), to where it came from this time (RFC 7296 §2.11).  Logged at level 2 only:
    replayed requests must not flood the default log."""
    cached = sa.last_response
    if (
        cached is None
        or cached[0] != message.header.message_id
        or not _authentic(ctx, sa, data, message)
    ):
        return
    log.debug(
        "IKE SA %d: received retransmit of request %d, retransmitting response",
        sa.ike_id,
        message.header.message_id,
    )
    ctx.send(sa, cached[1], (local, remote))


def _authentic(ctx: IkeServices, sa: IkeSa, data: bytes, message: Message) -> bool:
    assert sa.sk_in is not None
    last = message.payloads[-1] if message.payloads else None
    try:
        if isinstance(last, SK):
            open_protected(data, message, sa.sk_in)
            return True
        if isinstance(last, SKF) and last.fragment_number == 1:
            open_fragment(data, message, sa.sk_in)
            return True
    except (CryptoError, DecodeError):
        ctx.drops.drop("integrity check failed", ctx.now, "retransmitted request")
    return False
