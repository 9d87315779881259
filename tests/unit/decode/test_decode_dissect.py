"""SK with cipher + integrity, SKF reassembly (RFC 7383) and error reporting."""

from __future__ import annotations

import os

from decode_helpers import sk_message, skf_messages

from petrel.crypto.encr import encr_spec
from petrel.crypto.integ import integ_spec
from petrel.crypto.sk import SkCipher
from petrel.decode.capture import Datagram
from petrel.decode.dissect import INTEGRITY_FAILED, Dissector
from petrel.decode.keys import IkeSaKeys
from petrel.decode.render import payload_name
from petrel.wire.codec import encode_header, sk_generic_header
from petrel.wire.payloads import (
    AUTH,
    CERT,
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    IDi,
    IkeHeader,
    TrafficSelector,
    TSi,
    TSr,
)
from petrel.wire.registry import (
    AuthMethod,
    CertEncoding,
    EncrId,
    ExchangeType,
    IdType,
    IntegId,
    PayloadType,
    TsType,
)

SPI_I, SPI_R = os.urandom(8), os.urandom(8)
ENCR = encr_spec(EncrId.AES_CBC, 128)
INTEG = integ_spec(IntegId.HMAC_SHA2_256_128)
KEYS = IkeSaKeys(
    SPI_I,
    SPI_R,
    os.urandom(16),
    os.urandom(16),
    EncrId.AES_CBC,
    128,
    os.urandom(32),
    os.urandom(32),
    IntegId.HMAC_SHA2_256_128,
)
C_I = SkCipher(ENCR, KEYS.sk_ei, INTEG, KEYS.sk_ai)
C_R = SkCipher(ENCR, KEYS.sk_er, INTEG, KEYS.sk_ar)
SELECTOR = TrafficSelector(TsType.IPV4_ADDR_RANGE, 6, 80, 80, b"\x0a\0\0\1", b"\x0a\0\0\1")
INNER = [
    IDi(IdType.RFC822_ADDR, b"user@example.org"),
    CERT(CertEncoding.X509_SIGNATURE, os.urandom(900)),
    AUTH(AuthMethod.DIGITAL_SIGNATURE, os.urandom(300)),
    TSi((SELECTOR,)),
    TSr((SELECTOR,)),
]


def _dgram(frame: int, data: bytes) -> Datagram:
    return Datagram(frame, None, "192.0.2.1", "192.0.2.2", 4500, 4500, "ike", data)


def test_cbc_hmac_sk_decrypts_and_wrong_sk_a_is_named() -> None:
    msg = sk_message(C_R, SPI_I, SPI_R, ExchangeType.IKE_AUTH, 1, FLAG_RESPONSE, INNER)
    record = Dissector({(SPI_I, SPI_R): KEYS}).feed(_dgram(1, msg))
    assert record.error is None
    assert [payload_name(p) for p in record.inner or ()] == ["IDi", "CERT", "AUTH", "TSi", "TSr"]
    wrong = IkeSaKeys(**{**_fields(KEYS), "sk_ar": os.urandom(32)})
    record = Dissector({(SPI_I, SPI_R): wrong}).feed(_dgram(1, msg))
    assert record.error == INTEGRITY_FAILED == "integrity check failed (wrong SK_a?)"
    assert record.inner is None


def _fields(keys: IkeSaKeys) -> dict[str, object]:
    return {name: getattr(keys, name) for name in IkeSaKeys.__slots__}


def test_skf_fragments_reassemble_in_any_order() -> None:
    frags = skf_messages(
        C_I, SPI_I, SPI_R, ExchangeType.IKE_AUTH, 1, FLAG_INITIATOR, INNER, total=3
    )
    dissector = Dissector({(SPI_I, SPI_R): KEYS})
    records = [dissector.feed(_dgram(n, frags[i])) for n, i in ((10, 2), (11, 0), (12, 1))]
    assert [r.error for r in records] == [None, None, None]
    assert records[0].inner is None and records[1].inner is None
    assert "waiting for 2 more" in records[0].notes[0]
    done = records[2]
    assert "reassembled 3 fragments (frames 11, 12, 10)" in done.notes
    assert [payload_name(p) for p in done.inner or ()] == ["IDi", "CERT", "AUTH", "TSi", "TSr"]
    assert done.inner == tuple(INNER)


def test_skf_without_keys_and_with_a_forged_fragment() -> None:
    frags = skf_messages(
        C_I, SPI_I, SPI_R, ExchangeType.IKE_AUTH, 1, FLAG_INITIATOR, INNER, total=2
    )
    record = Dissector().feed(_dgram(1, frags[0]))
    assert record.notes == ["encrypted (no keys for this IKE SA)"]
    forged = bytearray(frags[1])
    forged[-20] ^= 1
    dissector = Dissector({(SPI_I, SPI_R): KEYS})
    dissector.feed(_dgram(1, frags[0]))
    assert dissector.feed(_dgram(2, bytes(forged))).error == INTEGRITY_FAILED


def test_malformed_inner_chain_is_reported() -> None:
    # A validly sealed chain whose first payload claims a length of 3 (below the header's 4).
    chain = bytes([0, 0, 0, 3]) + bytes(8)
    body_len = C_I.body_length(len(chain))
    header = IkeHeader(
        SPI_I, SPI_R, PayloadType.SK, ExchangeType.INFORMATIONAL, 2, FLAG_INITIATOR,
        length=28 + 4 + body_len,
    )  # fmt: skip
    aad = encode_header(header) + sk_generic_header(PayloadType.NOTIFY, body_len)
    record = Dissector({(SPI_I, SPI_R): KEYS}).feed(_dgram(1, aad + C_I.seal(aad, chain)))
    assert record.error is not None
    assert record.error.startswith("inner payloads: INVALID_SYNTAX")


def test_unusable_keys_are_reported_not_raised() -> None:
    bad = IkeSaKeys(**{**_fields(KEYS), "sk_ei": b"short"})
    msg = sk_message(C_I, SPI_I, SPI_R, ExchangeType.IKE_AUTH, 1, FLAG_INITIATOR, INNER)
    record = Dissector({(SPI_I, SPI_R): bad}).feed(_dgram(1, msg))
    assert record.error is not None and record.error.startswith("cannot use the keys")


def test_unsupported_critical_payload_names_the_notify() -> None:
    body = bytes([0, 0x80, 0, 4])  # payload type 99, critical, empty
    header = IkeHeader(SPI_I, SPI_R, 99, ExchangeType.INFORMATIONAL, 0, 0, length=32)
    record = Dissector().feed(_dgram(1, encode_header(header) + body))
    assert record.error is not None
    assert record.error.startswith("UNSUPPORTED_CRITICAL_PAYLOAD")
    assert record.header is not None and record.header.message_id == 0
