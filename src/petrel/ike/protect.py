"""Building and opening IKE messages, with or without an SK payload (RFC 7296 §3.14)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ..crypto.sk import SkCipher
from ..wire.codec import decode_payloads, encode_header, encode_message, encode_payloads
from ..wire.payloads import IKE_HEADER_LEN, SK, IkeHeader, Message, Payload
from ..wire.registry import PayloadType

_SK_HEADER = struct.Struct(">BBH")


def build_plain(header: IkeHeader, payloads: Sequence[Payload]) -> bytes:
    """An unprotected message (IKE_SA_INIT, or an error notify outside an IKE SA)."""
    return encode_message(Message(header, tuple(payloads)))


def build_protected(header: IkeHeader, payloads: Sequence[Payload], cipher: SkCipher) -> bytes:
    """A message whose payloads all travel inside one SK payload.

    The AAD (AEAD) or ICV input (cipher+integrity) is the IKE header and the SK generic
    header carrying their final lengths (§3.14, RFC 5282 §5.1).
    """
    first, inner = encode_payloads(tuple(payloads))
    body_len = cipher.body_length(len(inner))
    total = IKE_HEADER_LEN + _SK_HEADER.size + body_len
    fixed = IkeHeader(
        spi_i=header.spi_i,
        spi_r=header.spi_r,
        next_payload=PayloadType.SK,
        exchange=header.exchange,
        message_id=header.message_id,
        flags=header.flags,
        major=header.major,
        minor=header.minor,
        length=total,
    )
    aad = encode_header(fixed) + _SK_HEADER.pack(first, 0, _SK_HEADER.size + body_len)
    return aad + cipher.seal(aad, inner)


def open_protected(data: bytes, message: Message, cipher: SkCipher) -> tuple[Payload, ...]:
    """Verify and decrypt the SK payload that ends ``message`` (decoded from ``data``).

    Raises :class:`petrel.crypto.errors.CryptoError` on an integrity failure and
    :class:`petrel.wire.errors.DecodeError` on a malformed inner payload chain.
    """
    sk = message.payloads[-1]
    assert isinstance(sk, SK)
    aad = data[: len(data) - len(sk.body)]
    plaintext = cipher.open(aad, sk.body)
    return decode_payloads(int(sk.inner_next_payload), plaintext)
