"""Log summaries of messages: payload types in order, charon's shape, no contents."""

from __future__ import annotations

from petrel.wire.payloads import (
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    SKF,
    Delete,
    IkeHeader,
    Nonce,
    Notify,
    UnknownPayload,
    VendorID,
)
from petrel.wire.registry import ExchangeType, NotifyType, ProtocolId
from petrel.wire.summary import message_summary

SPI = b"\x11" * 8


def test_summary_names_each_payload_and_hides_contents() -> None:
    secret = b"\xde\xad\xbe\xef" * 8
    header = IkeHeader(SPI, SPI, 0, ExchangeType.INFORMATIONAL, 7, FLAG_INITIATOR)
    text = message_summary(
        header,
        [
            Delete(ProtocolId.ESP, (b"\0\0\1\0",), 4),
            Notify(NotifyType.COOKIE, secret),
            Nonce(secret),
            VendorID(secret),
            UnknownPayload(99, secret),
        ],
    )
    assert text == "INFORMATIONAL request 7 [ D(ESP) N(COOKIE) No V UNKNOWN_99 ]"
    assert "dead" not in text


def test_summary_of_a_fragment_and_unknown_exchange() -> None:
    header = IkeHeader(SPI, SPI, 0, 250, 3, FLAG_RESPONSE)
    assert message_summary(header, [SKF(0, 2, 5, b"x")]) == "UNKNOWN_250 response 3 [ SKF(2/5) ]"
