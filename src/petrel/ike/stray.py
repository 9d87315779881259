"""Messages outside any IKE SA we hold (RFC 7296 §2.21.1, §2.21.4): a malformed IKE_SA_INIT
request answered with an unprotected error, a protected request for an unknown IKE SA with
INVALID_IKE_SPI — rate limited, since anyone can make us send it — and nothing else."""

from __future__ import annotations

import struct

from ..wire.errors import DecodeError
from ..wire.payloads import FLAG_INITIATOR, FLAG_RESPONSE, SK, SKF, IkeHeader, Message, Notify
from ..wire.registry import ExchangeType, NotifyType, name_of
from . import events as ev
from .services import ZERO_SPI, IkeServices

INVALID_SPI_BURST = 10  # INVALID_IKE_SPI answers sent back to back at most …
INVALID_SPI_PER_SECOND = 10.0  # … and on average per second, whatever the sources


class ReplyBudget:
    """A token bucket over the engine's clock: unauthenticated answers we may still send."""

    def __init__(self, burst: int = INVALID_SPI_BURST, rate: float = INVALID_SPI_PER_SECOND):
        self.burst = burst
        self.rate = rate
        self._tokens = float(burst)
        self._at: float | None = None

    def take(self, now: float) -> bool:
        if self._at is not None and now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now if self._at is None else max(self._at, now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def error_notify(exc: DecodeError) -> Notify:
    """The notify answering a malformed request; UNSUPPORTED_CRITICAL_PAYLOAD carries the
    one-octet payload type it names (§3.10.1)."""
    data = b""
    if exc.notify == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD and exc.payload_type is not None:
        data = bytes([exc.payload_type & 0xFF])
    return Notify(exc.notify, data)


def reject_malformed(
    ctx: IkeServices,
    data: bytes,
    exc: DecodeError,
    local: ev.Address,
    remote: ev.Address,
    now: float,
) -> None:
    """§2.21.1, §1.5: an unprotected error answers only a malformed IKE_SA_INIT request
    (INVALID_MAJOR_VERSION in the version we speak, §2.5); everything else is dropped."""
    ctx.drops.drop(f"malformed IKE message ({name_of(exc.notify, NotifyType)})", now, exc.detail)
    if len(data) < 28 or exc.notify not in (
        NotifyType.INVALID_MAJOR_VERSION,
        NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
        NotifyType.INVALID_SYNTAX,
    ):
        return
    spi_i, spi_r, _np, _version, exchange, flags, message_id = struct.unpack_from(
        ">8s8sBBBBI", data
    )
    if exchange != ExchangeType.IKE_SA_INIT or flags & FLAG_RESPONSE or spi_r != ZERO_SPI:
        return
    header = IkeHeader(spi_i, ZERO_SPI, 0, exchange, message_id, FLAG_RESPONSE)
    ctx.send_to(ctx.plain(None, header, [error_notify(exc)]), local, remote)


def answer_unknown_spi(
    ctx: IkeServices,
    budget: ReplyBudget,
    message: Message,
    local: ev.Address,
    remote: ev.Address,
    now: float,
) -> None:
    """§2.21.4: a protected *request* for an IKE SA we do not know may get an unprotected
    INFORMATIONAL response with INVALID_IKE_SPI, the SPIs and message ID copied, sent
    whence it came; a response never gets an answer."""
    ctx.drops.drop("message for an unknown IKE SA", now)
    header = message.header
    if (
        header.is_response
        or not message.payloads
        or not isinstance(message.payloads[-1], SK | SKF)
        or not budget.take(now)
    ):
        return
    reply = IkeHeader(
        header.spi_i,
        header.spi_r,
        0,
        ExchangeType.INFORMATIONAL,
        header.message_id,
        FLAG_RESPONSE | (0 if header.is_initiator else FLAG_INITIATOR),
    )
    ctx.send_to(ctx.plain(None, reply, [Notify(NotifyType.INVALID_IKE_SPI)]), local, remote)


def only_invalid_ike_spi(message: Message) -> bool:
    """An unprotected INFORMATIONAL carrying just INVALID_IKE_SPI (§2.21.4)."""
    return message.header.exchange == ExchangeType.INFORMATIONAL and [
        n.notify_type for n in message.notifies()
    ] == [NotifyType.INVALID_IKE_SPI]
