"""ESP SA encapsulation/decapsulation (RFC 4303 tunnel mode)."""

from __future__ import annotations

import os
import struct

import pytest
from esp_helpers import (
    SPI,
    SUITE_IDS,
    SUITES,
    Suite,
    ipv4,
    ipv6,
    keys_for,
    reference_packet,
    sa_pair,
    trailer,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.crypto.encr import encr_spec
from petrel.crypto.integ import integ_spec
from petrel.esp.sa import InboundSa, OutboundSa, SequenceOverflow
from petrel.wire.registry import EncrId, IntegId

GCM = SUITES[0]
CBC = SUITES[3]
NULL_SHA = next(s for s in SUITES if s.name == "null-sha256")


def align_of(suite: Suite) -> int:
    return max(suite.encr.block_size, 4)


def icv_len(suite: Suite) -> int:
    return suite.integ.icv_size if suite.integ else suite.encr.icv_size


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("esn", [False, True], ids=["seq32", "esn"])
def test_round_trip(suite: Suite, esn: bool) -> None:
    out, inb, _ = sa_pair(suite, esn)
    sent = 0
    for make, nh in ((ipv4, 4), (ipv6, 41)):
        for size in (0, 1, 2, 3, 13, 100, 1400):
            inner = make(os.urandom(size))
            packet = out.encapsulate(inner)
            sent += 1
            assert packet[:4] == SPI.to_bytes(4, "big")
            assert packet[4:8] == (sent & 0xFFFFFFFF).to_bytes(4, "big")
            body = len(packet) - 8 - suite.encr.iv_size - icv_len(suite)
            assert body % align_of(suite) == 0  # §2.4: cipher block and 4-octet alignment
            assert body >= len(inner) + 2
            assert inb.decapsulate(packet) == (nh, inner)
    assert out.counters.packets == inb.counters.packets == sent
    assert out.counters.octets == inb.counters.octets
    assert inb.drops.total == 0
    assert inb.replay.top == sent


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("esn", [False, True], ids=["seq32", "esn"])
def test_reference_encoder_interoperates(suite: Suite, esn: bool) -> None:
    """A packet built independently (random IV, explicit layout) decapsulates: pins the AAD and
    the ICV coverage, including the ESN high bits appended for computation only."""
    _, inb, keys = sa_pair(suite, esn)
    inner = ipv6(b"x" * 37)
    seq = (3 << 32) + 7 if esn else 7
    inb.replay.top = seq - 1
    pt = inner + trailer(len(inner), 41, align_of(suite))
    assert inb.decapsulate(reference_packet(suite, keys, seq, pt, esn)) == (41, inner)
    assert inb.replay.top == seq


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_esn_high_bits_matter(suite: Suite) -> None:
    """With ESN the receiver must authenticate under the inferred high bits: a packet from
    subspace 5 is rejected by a receiver that infers subspace 0."""
    _, inb, keys = sa_pair(suite, esn=True)
    inner = ipv4()
    pt = inner + trailer(len(inner), 4, align_of(suite))
    assert inb.decapsulate(reference_packet(suite, keys, (5 << 32) + 9, pt, esn=True)) is None
    assert inb.drops.integrity == 1
    assert inb.replay.top == 0


def test_counter_iv_is_sequence_number() -> None:
    out, _, _ = sa_pair(GCM)
    out.seq = 0x1234
    packet = out.encapsulate(ipv4())
    assert packet[8:16] == (0x1235).to_bytes(8, "big")


def test_cbc_iv_is_random() -> None:
    out, _, _ = sa_pair(CBC)
    ivs = {out.encapsulate(ipv4())[8:24] for _ in range(8)}
    assert len(ivs) == 8


def test_tfc_padding_trimmed() -> None:
    out, inb, _ = sa_pair(GCM)
    inner = ipv4(b"data")
    assert inb.decapsulate(out.encapsulate(inner + bytes(300), 4)) == (4, inner)
    assert inb.counters.octets == len(inner)


def test_now_recorded() -> None:
    out, inb, _ = sa_pair(GCM)
    packet = out.encapsulate(ipv4(), now=10.5)
    assert out.counters.last_use == 10.5
    assert inb.counters.last_use is None
    inb.decapsulate(packet, now=11.0)
    assert inb.counters.last_use == 11.0
    inb.decapsulate(packet, now=12.0)  # replay: not a use
    assert inb.counters.last_use == 11.0


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("esn", [False, True], ids=["seq32", "esn"])
def test_every_flipped_byte_is_dropped(suite: Suite, esn: bool) -> None:
    out, inb, _ = sa_pair(suite, esn)
    packet = out.encapsulate(ipv4(b"payload!" * 5))
    for i in range(len(packet)):
        forged = bytearray(packet)
        forged[i] ^= 0x01
        assert inb.decapsulate(bytes(forged)) is None
    assert inb.drops.bad_spi == 4
    assert inb.drops.replay == 1  # sequence number 1 with its low bit flipped is 0
    assert inb.drops.integrity == len(packet) - 5
    assert inb.replay.top == 0  # forgeries never move the window
    assert inb.decapsulate(packet) is not None


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_replayed_packet_dropped(suite: Suite) -> None:
    out, inb, _ = sa_pair(suite)
    packet = out.encapsulate(ipv4())
    assert inb.decapsulate(packet) is not None
    assert inb.decapsulate(packet) is None
    assert inb.drops.replay == 1
    assert inb.counters.packets == 1


def test_reordering_and_window_edges() -> None:
    out, inb, _ = sa_pair(GCM, window=32)
    packets = [out.encapsulate(ipv4(bytes([i]))) for i in range(100)]
    assert inb.decapsulate(packets[99]) is not None  # seq 100: far ahead is fine
    assert inb.decapsulate(packets[68]) is not None  # seq 69: oldest slot of the window
    assert inb.decapsulate(packets[67]) is None  # seq 68: behind the window
    assert inb.drops.replay == 1
    for i in range(98, 68, -1):
        assert inb.decapsulate(packets[i]) is not None
    assert inb.counters.packets == 32


def test_sequence_zero_rejected() -> None:
    _, inb, keys = sa_pair(NULL_SHA)
    inner = ipv4()
    pt = inner + trailer(len(inner), 4, 4)
    assert inb.decapsulate(reference_packet(NULL_SHA, keys, 0, pt, esn=False)) is None
    assert inb.drops.replay == 1


def test_window_disabled_accepts_replays() -> None:
    out, inb, _ = sa_pair(GCM, window=0)
    packet = out.encapsulate(ipv4())
    assert inb.decapsulate(packet) is not None
    assert inb.decapsulate(packet) is not None
    assert inb.drops.total == 0


def test_large_window() -> None:
    out, inb, _ = sa_pair(GCM, window=4096)
    packets = [out.encapsulate(ipv4()) for _ in range(5000)]
    assert inb.decapsulate(packets[-1]) is not None
    assert inb.decapsulate(packets[5000 - 4096]) is not None
    assert inb.decapsulate(packets[5000 - 4097]) is None


@pytest.mark.parametrize("suite", [GCM, CBC], ids=["gcm", "cbc"])
def test_esn_across_2_32_boundary(suite: Suite) -> None:
    out, inb, _ = sa_pair(suite, esn=True)
    out.seq = (1 << 32) - 4
    inb.replay.top = out.seq
    packets = [out.encapsulate(ipv4(bytes([i]))) for i in range(8)]
    assert [int.from_bytes(p[4:8], "big") for p in packets[2:5]] == [0xFFFFFFFF, 0, 1]
    # Deliver out of order across the boundary: the window infers the right subspace each time.
    for i in (0, 4, 1, 3, 2, 7, 5, 6):
        assert inb.decapsulate(packets[i]) == (4, ipv4(bytes([i])))
    assert inb.replay.top == (1 << 32) + 4
    assert inb.decapsulate(packets[3]) is None
    assert inb.drops.replay == 1


def test_sequence_never_wraps_without_esn() -> None:
    out, inb, _ = sa_pair(GCM)
    out.seq = 0xFFFFFFFE
    inb.replay.top = out.seq
    last = out.encapsulate(ipv4())
    assert last[4:8] == b"\xff\xff\xff\xff"
    assert inb.decapsulate(last) is not None
    with pytest.raises(SequenceOverflow):
        out.encapsulate(ipv4())
    with pytest.raises(SequenceOverflow):
        out.encapsulate(ipv4())
    assert out.seq == 0xFFFFFFFF
    assert out.counters.packets == 1


def test_sequence_never_wraps_with_esn() -> None:
    out, _, _ = sa_pair(GCM, esn=True)
    out.seq = 0xFFFFFFFF
    assert out.encapsulate(ipv4())[4:8] == b"\0\0\0\0"  # low bits wrap, high bits carry
    out.seq = (1 << 64) - 2
    out.encapsulate(ipv4())
    with pytest.raises(SequenceOverflow):
        out.encapsulate(ipv4())


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_dummy_packets_counted_not_delivered(suite: Suite) -> None:
    out, inb, _ = sa_pair(suite)
    assert inb.decapsulate(out.dummy()) is None
    assert inb.decapsulate(out.dummy(64)) is None
    assert inb.drops.dummy == 2
    assert inb.drops.total == 0
    assert inb.counters.packets == 0
    assert inb.replay.top == 2  # authentic: the window still advances


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        (ipv4() + b"\x00\x00\x02\x04", "bad_padding"),  # pad octets must be 1, 2
        (ipv4() + b"\x01\x03\x02\x04", "bad_padding"),
        (ipv4()[:6] + b"\xff\x04", "bad_padding"),  # pad length beyond the payload
        (ipv4() + b"\x00\x11", "bad_next_header"),  # UDP is not a tunnel-mode payload
        (ipv4() + b"\x00\x29", "bad_inner"),  # IPv4 packet labelled IPv6
        (ipv4()[:-1] + b"\x01\x01\x04", "bad_inner"),  # inner length field beyond the data
        (b"\x00\x04", "bad_inner"),  # empty inner packet
        (ipv6() + b"\x00\x3b", "dummy"),
    ],
)
def test_content_checks(plaintext: bytes, reason: str) -> None:
    _, inb, keys = sa_pair(NULL_SHA)
    assert inb.decapsulate(reference_packet(NULL_SHA, keys, 1, plaintext, esn=False)) is None
    drops = inb.drops.as_dict()
    assert drops.pop(reason) == 1
    assert not any(drops.values())
    assert inb.replay.top == 1  # authentic packets advance the window even when dropped


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize("esn", [False, True], ids=["seq32", "esn"])
def test_every_truncation_dropped(suite: Suite, esn: bool) -> None:
    out, inb, _ = sa_pair(suite, esn)
    packet = out.encapsulate(ipv4(b"z" * 30))
    for n in range(len(packet)):
        assert inb.decapsulate(packet[:n]) is None
        assert inb.decapsulate(memoryview(packet)[:n]) is None
    assert inb.drops.total == 2 * len(packet)
    assert inb.drops.truncated > 0
    assert inb.decapsulate(packet) is not None


def test_wrong_spi_dropped() -> None:
    out, _, _ = sa_pair(GCM, spi=0x1000)
    _, inb, _ = sa_pair(GCM, spi=0x2000)
    assert inb.decapsulate(out.encapsulate(ipv4())) is None
    assert inb.drops.bad_spi == 1


def test_cbc_partial_block_dropped() -> None:
    out, inb, _ = sa_pair(CBC)
    packet = out.encapsulate(ipv4())
    icv = CBC.integ.icv_size  # type: ignore[union-attr]
    assert inb.decapsulate(packet[: -icv - 1] + packet[-icv:]) is None
    assert inb.drops.bad_length == 1


def test_input_types() -> None:
    out, inb, _ = sa_pair(GCM)
    inner = ipv4(b"abc")
    assert inb.decapsulate(bytearray(out.encapsulate(bytearray(inner)))) == (4, inner)
    assert inb.decapsulate(memoryview(out.encapsulate(memoryview(inner)))) == (4, inner)


def test_next_header_required_for_non_ip() -> None:
    out, _, _ = sa_pair(GCM)
    with pytest.raises(ValueError):
        out.encapsulate(b"\x00garbage")
    assert out.seq == 0


def test_constructor_validation() -> None:
    gcm = encr_spec(EncrId.AES_GCM_16, 128)
    cbc = encr_spec(EncrId.AES_CBC, 128)
    sha = integ_spec(IntegId.HMAC_SHA2_256_128)
    with pytest.raises(ValueError):
        OutboundSa(SPI, gcm, bytes(20), sha, bytes(32), False)  # AEAD + integrity
    with pytest.raises(ValueError):
        OutboundSa(SPI, cbc, bytes(16), None, b"", False)  # no integrity at all
    with pytest.raises(ValueError):
        OutboundSa(SPI, gcm, bytes(16), None, b"", False)  # salt missing
    with pytest.raises(ValueError):
        InboundSa(SPI, cbc, bytes(16), sha, bytes(20), False)
    for spi in (0, 255, 1 << 32):
        with pytest.raises(ValueError):
            OutboundSa(spi, gcm, bytes(20), None, b"", False)
    with pytest.raises(ValueError):
        InboundSa(SPI, gcm, bytes(20), None, b"", False, replay_window=-1)


# draft-mcgrew-gcm-test-01 §4 (GCM in ESP): published key, salt, SPI, sequence number, IV and
# ciphertext. Both plaintexts end in padding 01 02, pad length 2, next header 1 (ICMP: the
# vectors are not tunnel mode), so a tunnel-mode SA must authenticate, strip the padding and
# then drop on the next header; the window advancing proves the tag verified.
KAT = [
    pytest.param(
        128,
        "4c80cdefbb5d10da906ac73c3613a634" + "2e443b68",
        0x00004321,
        0x8765432100000000,
        True,
        "4956ed7e3b244cfe",
        "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34"
        "cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce"
        "61bc17d768fd9732459018148f6cbe722fd04796562dfdb4",
        id="aes128-esn",
    ),
    pytest.param(
        256,
        "abbccddef00112233445566778899aababbccddef00112233445566778899aab" + "11223344",
        0x4A2CBFE3,
        2,
        False,
        "0102030405060708",
        "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763"
        "748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49"
        "15956c96",
        id="aes256",
    ),
]


@pytest.mark.parametrize(("bits", "key", "spi", "seq", "esn", "iv", "ct"), KAT)
def test_gcm_esp_known_answer(
    bits: int, key: str, spi: int, seq: int, esn: bool, iv: str, ct: str
) -> None:
    encr = encr_spec(EncrId.AES_GCM_16, bits)
    inb = InboundSa(spi, encr, bytes.fromhex(key), None, b"", esn, 32)
    inb.replay.top = seq - 1
    packet = struct.pack(">II", spi, seq & 0xFFFFFFFF) + bytes.fromhex(iv + ct)
    assert inb.decapsulate(packet) is None
    drops = inb.drops.as_dict()
    assert drops.pop("bad_next_header") == 1
    assert not any(drops.values())
    assert inb.replay.top == seq
    # One flipped tag bit and it no longer authenticates.
    inb.replay.top = seq - 1
    assert inb.decapsulate(packet[:-1] + bytes([packet[-1] ^ 1])) is None
    assert inb.drops.integrity == 1


@settings(max_examples=300)
@given(st.binary(max_size=200), st.sampled_from(SUITES), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, suite: Suite, esn: bool) -> None:
    k = keys_for(suite)
    inb = InboundSa(SPI, suite.encr, k.encr, suite.integ, k.integ, esn, 32)
    for packet in (data, SPI.to_bytes(4, "big") + data):
        assert inb.decapsulate(packet) is None
    assert inb.drops.total == 2
