"""IKEv2 message codec: bytes <-> :mod:`petrel.wire.payloads` values (RFC 7296 §3, RFC 7383).

Decoding treats every octet as hostile: each length is checked against the octets that remain
and any problem raises :class:`~petrel.wire.errors.DecodeError` carrying the notify the RFC
prescribes, never ``IndexError`` or ``struct.error``.  Reserved fields and bits are ignored on
decode and written as zero on encode (§3.1, §3.2), so ``encode(decode(b)) == b`` holds for every
canonical ``b`` and ``decode(encode(m)) == m`` for every well-formed value ``m``.

Canonical form, where the wire allows a choice: the Key Length attribute comes first among a
transform's attributes (§3.3.5).  Encoding raises ``ValueError`` for values that cannot be put
on the wire (an SK payload that is not last, a field that does not fit, a 9-octet SPI, ...).

The decoder lives in :mod:`petrel.wire.decoder`, the encoder in :mod:`petrel.wire.encoder`, the
field layouts both share in :mod:`petrel.wire.layout`; this module is the one to import.
"""

from __future__ import annotations

from .decoder import decode_header, decode_message, decode_payloads
from .encoder import encode_header, encode_message, encode_payloads, sk_generic_header, skf_header
from .layout import SK_GENERIC_HEADER_LEN, SKF_HEADER_LEN

__all__ = [
    "SKF_HEADER_LEN",
    "SK_GENERIC_HEADER_LEN",
    "decode_header",
    "decode_message",
    "decode_payloads",
    "encode_header",
    "encode_message",
    "encode_payloads",
    "sk_generic_header",
    "skf_header",
]
