"""Specific malformations, each mapped to the notify RFC 7296 prescribes."""

from __future__ import annotations

import struct

import pytest

from petrel.wire.codec import decode_header, decode_message, decode_payloads
from petrel.wire.errors import DecodeError
from petrel.wire.payloads import SKF, UnknownPayload, VendorID
from petrel.wire.registry import NotifyType, PayloadType

SYNTAX = NotifyType.INVALID_SYNTAX


def gen(next_payload: int, body: bytes, flags: int = 0, length: int | None = None) -> bytes:
    """A payload with its generic header (§3.2); ``length`` overrides the computed one."""
    return struct.pack("!BBH", next_payload, flags, 4 + len(body) if length is None else length) + (
        body
    )


def message(first: int, chain: bytes, version: int = 0x20, length: int | None = None) -> bytes:
    """An IKE header (§3.1) in front of ``chain``; ``length`` overrides the computed one."""
    total = 28 + len(chain) if length is None else length
    header = struct.pack("!8s8sBBBBII", b"I" * 8, bytes(8), first, version, 34, 8, 0, total)
    return header + chain


def reject(data: bytes, notify: NotifyType = SYNTAX) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_message(data)
    assert info.value.notify == notify
    return info.value


VID = gen(0, b"vendor")
GOOD = message(PayloadType.VENDOR_ID, VID)


def test_good_baseline_decodes() -> None:
    assert decode_message(GOOD).payloads == (VendorID(b"vendor"),)


# -- IKE header -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 20, 27])
def test_truncated_header(size: int) -> None:
    reject(GOOD[:size])
    with pytest.raises(DecodeError) as info:
        decode_header(GOOD[:size])
    assert info.value.notify == SYNTAX


@pytest.mark.parametrize("delta", [-1, 1, 1000, -len(GOOD)])
def test_header_length_mismatch(delta: int) -> None:
    reject(message(PayloadType.VENDOR_ID, VID, length=len(GOOD) + delta))


def test_trailing_octets_after_message() -> None:
    reject(GOOD + b"\0")


@pytest.mark.parametrize("version", [0x30, 0x10, 0x00, 0xF0, 0x32])
def test_major_version_other_than_2(version: int) -> None:
    err = reject(
        message(PayloadType.VENDOR_ID, VID, version=version), NotifyType.INVALID_MAJOR_VERSION
    )
    assert err.payload_type is None


def test_major_version_checked_before_length() -> None:
    """A version-3 message may have another layout; the answer is INVALID_MAJOR_VERSION."""
    reject(
        message(PayloadType.VENDOR_ID, VID, version=0x30, length=5),
        NotifyType.INVALID_MAJOR_VERSION,
    )


def test_minor_version_is_accepted() -> None:
    assert decode_message(message(PayloadType.VENDOR_ID, VID, version=0x27)).header.minor == 7


# -- payload chain ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 3])
def test_payload_length_below_4(length: int) -> None:
    reject(message(PayloadType.VENDOR_ID, gen(0, b"xxxx", length=length)))


def test_payload_overrunning_the_message() -> None:
    reject(message(PayloadType.VENDOR_ID, gen(0, b"vendor", length=11)))


def test_payload_header_truncated() -> None:
    reject(message(PayloadType.VENDOR_ID, VID[:3]))


def test_chain_claims_more_payloads_than_present() -> None:
    reject(message(PayloadType.VENDOR_ID, gen(PayloadType.NONCE, b"vendor")))


def test_octets_after_last_payload() -> None:
    reject(message(PayloadType.VENDOR_ID, VID + b"\0\0\0\0"))


def test_empty_chain_with_first_none() -> None:
    assert decode_message(message(0, b"")).payloads == ()
    reject(message(0, b"junk"))


def test_unknown_critical_payload() -> None:
    err = reject(
        message(200, gen(PayloadType.VENDOR_ID, b"?", flags=0x80) + VID),
        NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
    )
    assert err.payload_type == 200


def test_unknown_critical_payload_in_decrypted_chain() -> None:
    with pytest.raises(DecodeError) as info:
        decode_payloads(PayloadType.VENDOR_ID, gen(77, b"v") + gen(0, b"", flags=0x80))
    assert info.value.notify == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
    assert info.value.payload_type == 77


def test_unknown_noncritical_payload_is_kept_and_skipped() -> None:
    msg = decode_message(message(200, gen(PayloadType.VENDOR_ID, b"?", flags=0x7F) + VID))
    assert msg.payloads == (UnknownPayload(200, b"?"), VendorID(b"vendor"))


def test_known_payload_keeps_critical_bit() -> None:
    msg = decode_message(message(PayloadType.VENDOR_ID, gen(0, b"v", flags=0x80)))
    assert msg.payloads == (VendorID(b"v", critical=True),)


@pytest.mark.parametrize("encrypted", [PayloadType.SK, PayloadType.SKF])
def test_encrypted_payload_must_be_last(encrypted: int) -> None:
    body = b"\0\1\0\1" + b"ct" if encrypted == PayloadType.SKF else b"ct"
    # The SK header's Next Payload names the inner type, so the VID after it is an orphan.
    reject(message(encrypted, gen(PayloadType.IDi, body) + VID))


# -- SA ---------------------------------------------------------------------------------------


def transform(last: int, ttype: int, tid: int, attrs: bytes = b"") -> bytes:
    return struct.pack("!BBHBBH", last, 0, 8 + len(attrs), ttype, 0, tid) + attrs


def proposal(last: int, number: int, transforms: list[bytes], protocol: int = 1, spi: bytes = b"",
             count: int | None = None) -> bytes:  # fmt: skip
    body = spi + b"".join(transforms)
    n = len(transforms) if count is None else count
    return struct.pack("!BBHBBBB", last, 0, 8 + len(body), number, protocol, len(spi), n) + body


def sa_message(*proposals: bytes) -> bytes:
    return message(PayloadType.SA, gen(0, b"".join(proposals)))


ENCR = transform(3, 1, 20, struct.pack("!HH", 0x800E, 256))
PRF = transform(0, 2, 7)


def test_sa_baseline() -> None:
    sa = decode_message(sa_message(proposal(2, 1, [ENCR, PRF]), proposal(0, 2, [ENCR, PRF])))
    assert [p.number for p in sa.payloads[0].proposals] == [1, 2]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "proposals",
    [
        pytest.param([], id="no-proposals"),
        pytest.param([proposal(2, 1, [ENCR, PRF])], id="last-proposal-marked-more"),
        pytest.param([proposal(0, 1, [ENCR, PRF]), proposal(0, 2, [ENCR, PRF])], id="early-last"),
        pytest.param([proposal(1, 1, [ENCR, PRF])], id="bad-last-substruc"),
        pytest.param([proposal(0, 0, [ENCR, PRF])], id="number-zero"),
        pytest.param([proposal(2, 1, [ENCR, PRF]), proposal(0, 3, [PRF])], id="number-gap"),
        pytest.param([proposal(2, 2, [PRF]), proposal(0, 2, [PRF])], id="number-repeated"),
        pytest.param([proposal(0, 1, [ENCR, PRF], count=3)], id="transform-count-high"),
        pytest.param([proposal(0, 1, [ENCR, PRF], count=1)], id="transform-count-low"),
        pytest.param([proposal(0, 1, [ENCR, transform(3, 2, 7)])], id="last-transform-more"),
        pytest.param([proposal(0, 1, [transform(0, 1, 20), PRF])], id="early-last-transform"),
        pytest.param([proposal(0, 1, [PRF], protocol=3)], id="esp-without-spi"),
        pytest.param([proposal(0, 1, [PRF], protocol=1, spi=b"1234")], id="ike-spi-4"),
        pytest.param([proposal(0, 1, [PRF], protocol=2, spi=b"12345678")], id="ah-spi-8"),
        pytest.param(
            [proposal(0, 1, [transform(0, 1, 12, struct.pack("!HH", 14, 2) + b"\1\0")])],
            id="key-length-tlv",
        ),
        pytest.param(
            [proposal(0, 1, [transform(0, 1, 12, struct.pack("!HHHH", 0x800E, 128, 0x800E, 256))])],
            id="key-length-twice",
        ),
        pytest.param(
            [proposal(0, 1, [transform(0, 1, 12, struct.pack("!HH", 5, 9) + b"\1")])],
            id="tlv-attribute-overrun",
        ),
        pytest.param([proposal(0, 1, [transform(0, 1, 12, b"\x80")])], id="attribute-truncated"),
    ],
)
def test_malformed_sa(proposals: list[bytes]) -> None:
    err = reject(sa_message(*proposals))
    assert err.payload_type == PayloadType.SA


def test_transform_length_overrun() -> None:
    bad = bytearray(proposal(0, 1, [PRF]))
    bad[10:12] = struct.pack("!H", 9)  # transform length 9 in an 8-octet transform
    reject(sa_message(bytes(bad)))


def test_unknown_transform_attribute_is_kept() -> None:
    attrs = struct.pack("!HH", 0x8001, 7) + struct.pack("!HH", 2, 3) + b"abc"
    sa = decode_message(sa_message(proposal(0, 1, [transform(0, 1, 12, attrs)])))
    (t,) = sa.payloads[0].proposals[0].transforms  # type: ignore[attr-defined]
    assert t.key_length is None
    assert t.other_attributes == ((1, True, b"\0\7"), (2, False, b"abc"))


# -- other payloads ---------------------------------------------------------------------------


def ts(ts_type: int, sel_len: int, addr_size: int) -> bytes:
    return struct.pack("!BBHHH", ts_type, 0, sel_len, 0, 65535) + bytes(2 * addr_size)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\1\0\0\0" + ts(7, 17, 4) + b"\0", id="ipv4-len-17"),
        pytest.param(b"\1\0\0\0" + ts(7, 40, 16), id="ipv4-len-40"),
        pytest.param(b"\1\0\0\0" + ts(8, 16, 4), id="ipv6-len-16"),
        pytest.param(b"\1\0\0\0" + ts(9, 16, 4), id="unknown-ts-type"),
        pytest.param(b"\2\0\0\0" + ts(7, 16, 4), id="count-high"),
        pytest.param(b"\1\0\0\0" + ts(7, 16, 4) * 2, id="count-low"),
        pytest.param(b"\1\0\0\0" + ts(8, 40, 16)[:30], id="truncated-selector"),
        pytest.param(b"\0\0\0", id="truncated-header"),
    ],
)
@pytest.mark.parametrize("kind", [PayloadType.TSi, PayloadType.TSr])
def test_bad_traffic_selectors(kind: int, body: bytes) -> None:
    err = reject(message(kind, gen(0, body)))
    assert err.payload_type == kind


def test_good_traffic_selectors() -> None:
    body = b"\2\0\0\0" + ts(7, 16, 4) + ts(8, 40, 16)
    (tsi,) = decode_message(message(PayloadType.TSi, gen(0, body))).payloads
    assert [len(s.start_addr) for s in tsi.selectors] == [4, 16]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(struct.pack("!BBH", 3, 4, 2) + b"1234", id="count-2-one-spi"),
        pytest.param(struct.pack("!BBH", 3, 4, 1) + b"12345678", id="count-1-two-spis"),
        pytest.param(struct.pack("!BBH", 1, 0, 3), id="size-0-count-3"),
        pytest.param(struct.pack("!BBH", 3, 4, 1) + b"123", id="short-spi"),
        pytest.param(b"\3\4\0", id="truncated"),
    ],
)
def test_delete_count_mismatch(body: bytes) -> None:
    reject(message(PayloadType.DELETE, gen(0, body)))


@pytest.mark.parametrize("number, total", [(0, 0), (0, 3), (4, 3), (2, 1), (65535, 2)])
def test_skf_fragment_number_out_of_range(number: int, total: int) -> None:
    err = reject(message(PayloadType.SKF, gen(PayloadType.IDi, struct.pack("!HH", number, total))))
    assert err.payload_type == PayloadType.SKF


def test_skf_good() -> None:
    msg = decode_message(message(PayloadType.SKF, gen(35, struct.pack("!HH", 3, 3) + b"ct")))
    assert msg.payloads == (SKF(PayloadType.IDi, 3, 3, b"ct"),)


@pytest.mark.parametrize(
    "ptype, body",
    [
        (PayloadType.KE, b"\0\x13\0"),
        (PayloadType.IDi, b"\1\0\0"),
        (PayloadType.IDr, b""),
        (PayloadType.AUTH, b"\2\0"),
        (PayloadType.CERT, b""),
        (PayloadType.CERTREQ, b""),
        (PayloadType.NOTIFY, b"\0\0\x40"),
        (PayloadType.NOTIFY, b"\3\4\0\x2c" + b"123"),  # SPI size 4, 3 octets left
        (PayloadType.CP, b"\1\0"),
        (PayloadType.CP, b"\1\0\0\0" + struct.pack("!HH", 1, 4) + b"\0"),  # attribute overrun
        (PayloadType.CP, b"\1\0\0\0\0\1\0"),  # attribute header truncated
        (PayloadType.EAP, b"\1\1\0"),
        (PayloadType.EAP, b"\1\1\0\x09" + b"abcd"),  # EAP length 9, 8 octets present
        (PayloadType.EAP, b"\1\1\0\x07" + b"abcd"),  # EAP length 7, 8 octets present
        (PayloadType.SKF, b"\0\1\0"),
    ],
)
def test_short_or_inconsistent_bodies(ptype: int, body: bytes) -> None:
    err = reject(message(ptype, gen(0, body)))
    assert err.payload_type == ptype
