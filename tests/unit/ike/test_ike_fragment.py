"""RFC 7383 fragmentation: splitting, sealing, reassembly rules and DoS limits."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_strategies import plain_payloads

from petrel.crypto.encr import encr_spec
from petrel.crypto.integ import integ_spec
from petrel.crypto.sk import SkCipher
from petrel.ike.fragment import (
    DEFAULT_FRAGMENT_SIZE,
    IPV4_MIN_DATAGRAM,
    MAX_FRAGMENTS,
    Reassembler,
    fragment_message,
    ike_payload_limit,
    open_fragment,
)
from petrel.ike.protect import open_protected
from petrel.wire.codec import (
    SKF_HEADER_LEN,
    decode_message,
    decode_payloads,
    encode_header,
    encode_payloads,
    skf_header,
)
from petrel.wire.errors import DecodeError
from petrel.wire.payloads import (
    FLAG_INITIATOR,
    IKE_HEADER_LEN,
    SK,
    SKF,
    IkeHeader,
    Message,
    Nonce,
    Payload,
    VendorID,
)
from petrel.wire.registry import EncrId, ExchangeType, IntegId, PayloadType

MID = 7


def gcm() -> SkCipher:
    spec = encr_spec(EncrId.AES_GCM_16, 256)
    return SkCipher(spec, os.urandom(spec.key_size))


def cbc_sha256() -> SkCipher:
    encr, integ = encr_spec(EncrId.AES_CBC, 128), integ_spec(IntegId.HMAC_SHA2_256_128)
    return SkCipher(encr, os.urandom(encr.key_size), integ, os.urandom(integ.key_size))


CIPHERS = {"aes-gcm-16": gcm(), "aes-cbc+sha256": cbc_sha256()}
cipher_names = st.sampled_from(sorted(CIPHERS))


def header(message_id: int = MID, exchange: int = ExchangeType.IKE_AUTH) -> IkeHeader:
    return IkeHeader(
        spi_i=bytes.fromhex("0102030405060708"),
        spi_r=bytes.fromhex("1112131415161718"),
        next_payload=PayloadType.NONE,
        exchange=exchange,
        message_id=message_id,
        flags=FLAG_INITIATOR,
    )


def big_chain(size: int = 3000) -> tuple[Payload, ...]:
    """A chain of about ``size`` octets: a few payloads of random content."""
    return (
        Nonce(os.urandom(32)),
        VendorID(os.urandom(size // 2)),
        VendorID(os.urandom(size - size // 2)),
    )


def split(cipher: SkCipher, payloads: tuple[Payload, ...], max_datagram: int, **kw: int):
    data = fragment_message(header(), payloads, cipher, max_datagram, **kw)
    return [(d, decode_message(d)) for d in data]


def feed(r: Reassembler, frags, cipher: SkCipher, now: float = 0.0, mid: int = MID):
    results = [r.add(d, m, cipher, now, expected_message_id=mid) for d, m in frags]
    done = [x for x in results if x is not None]
    assert len(done) <= 1
    return done[0] if done else None


# --------------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CIPHERS))
def test_small_message_is_one_plain_sk_message(name: str) -> None:
    cipher = CIPHERS[name]
    payloads = (Nonce(b"n" * 32), VendorID(b"petrel"))
    (data,) = fragment_message(header(), payloads, cipher, DEFAULT_FRAGMENT_SIZE)
    msg = decode_message(data)
    assert msg.header.next_payload == PayloadType.SK and len(msg.payloads) == 1
    assert isinstance(msg.payloads[0], SK)
    assert open_protected(data, msg, cipher) == payloads


def test_exact_fit_counts_the_marker() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    payloads = big_chain(900)
    (data,) = fragment_message(header(), payloads, cipher, 2000)
    assert len(fragment_message(header(), payloads, cipher, len(data))) == 1
    assert len(fragment_message(header(), payloads, cipher, len(data) + 4, marker_len=4)) == 1
    assert len(fragment_message(header(), payloads, cipher, len(data) + 3, marker_len=4)) > 1
    assert len(fragment_message(header(), payloads, cipher, len(data) - 1)) > 1


@settings(max_examples=60, deadline=None)
@given(
    name=cipher_names,
    max_datagram=st.integers(100, 1500),
    marker=st.sampled_from([0, 4]),
    size=st.integers(200, 4000),
)
def test_split_round_trip_and_sizes(name: str, max_datagram: int, marker: int, size: int) -> None:
    cipher = CIPHERS[name]
    payloads = big_chain(size)
    frags = split(cipher, payloads, max_datagram, marker_len=marker)
    for data, _ in frags:
        assert len(data) + marker <= max_datagram
    r = Reassembler(max_fragments=1000, max_size=1 << 20)
    if len(frags) == 1:
        assert isinstance(frags[0][1].payloads[-1], SK)
        return
    first, inner = feed(r, frags, cipher)
    assert first == PayloadType.NONCE
    assert inner == payloads
    assert r.drops == {}


@settings(max_examples=40, deadline=None)
@given(
    name=cipher_names,
    chain=st.lists(plain_payloads(), min_size=1, max_size=6).map(tuple),
    max_datagram=st.integers(100, 400),
)
def test_any_chain_round_trips(name: str, chain: tuple[Payload, ...], max_datagram: int) -> None:
    cipher = CIPHERS[name]
    frags = split(cipher, chain, max_datagram, min_fragments=2)
    first, inner = feed(Reassembler(max_fragments=1000, max_size=1 << 20), frags, cipher)
    assert (first, inner) == (encode_payloads(chain)[0], chain)


@pytest.mark.parametrize("name", sorted(CIPHERS))
def test_each_fragment_decodes_as_skf(name: str) -> None:
    cipher = CIPHERS[name]
    frags = split(cipher, big_chain(3000), 576)
    total = len(frags)
    assert total > 1
    for number, (data, msg) in enumerate(frags, start=1):
        h = msg.header
        assert h.next_payload == PayloadType.SKF
        assert (h.message_id, h.exchange, h.flags) == (MID, ExchangeType.IKE_AUTH, FLAG_INITIATOR)
        assert h.length == len(data)
        (skf,) = msg.payloads
        assert isinstance(skf, SKF)
        assert (skf.fragment_number, skf.total_fragments) == (number, total)
        assert skf.inner_next_payload == (PayloadType.NONCE if number == 1 else 0)
        assert len(data) == IKE_HEADER_LEN + SKF_HEADER_LEN + len(skf.body)
        # The AAD is the IKE header plus the SKF header with the final lengths (§2.5).
        aad = data[: IKE_HEADER_LEN + SKF_HEADER_LEN]
        assert aad == encode_header(h) + skf_header(
            skf.inner_next_payload, number, total, len(skf.body)
        )
        assert open_fragment(data, msg, cipher)


def test_min_fragments_forces_more_smaller_fragments() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    payloads = big_chain(3000)
    natural = split(cipher, payloads, 1232)
    more = split(cipher, payloads, 1232, min_fragments=len(natural) + 1)
    assert len(more) == len(natural) + 1
    assert feed(Reassembler(), more, cipher) == (PayloadType.NONCE, payloads)


def test_too_small_datagram_is_refused() -> None:
    cipher = CIPHERS["aes-cbc+sha256"]
    # 28 + 8 + IV 16 + one block 16 + ICV 16 = 84 carries up to 15 octets; 83 carries none.
    with pytest.raises(ValueError):
        fragment_message(header(), big_chain(500), cipher, 83)
    assert len(fragment_message(header(), big_chain(100), cipher, 84)) > 1
    with pytest.raises(ValueError):
        fragment_message(header(), (Nonce(b"x" * 16),), cipher, 1000, min_fragments=100)


def test_payload_limits() -> None:
    assert ike_payload_limit(DEFAULT_FRAGMENT_SIZE, 6) == 1232
    assert ike_payload_limit(IPV4_MIN_DATAGRAM, 4) == 548


# --------------------------------------------------------------------------------------------
# Receiving
# --------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=cipher_names, data=st.data())
def test_any_order_with_duplicates(name: str, data: st.DataObject) -> None:
    cipher = CIPHERS[name]
    payloads = big_chain(2500)
    frags = split(cipher, payloads, 400)
    order = data.draw(st.permutations(frags))
    # Copies of fragments already held arrive before the last new fragment completes it.
    dups = data.draw(st.lists(st.sampled_from(order[:-1]), max_size=5))
    stream = list(order[:-1]) + dups + [order[-1]]
    r = Reassembler()
    assert feed(r, stream, cipher) == (PayloadType.NONCE, payloads)
    assert r.drops["duplicate"] == len(dups)
    assert r.pending_message_id is None


def tamper(data: bytes) -> tuple[bytes, Message]:
    bad = bytearray(data)
    bad[-1] ^= 0x01
    return bytes(bad), decode_message(bytes(bad))


@pytest.mark.parametrize("name", sorted(CIPHERS))
def test_tampered_fragment_dropped_then_clean_copy_accepted(name: str) -> None:
    cipher = CIPHERS[name]
    payloads = big_chain(2000)
    frags = split(cipher, payloads, 600)
    r = Reassembler()
    assert feed(r, frags[:-1], cipher) is None
    assert feed(r, [tamper(frags[-1][0])], cipher) is None
    assert r.drops["integrity"] == 1 and r.pending_message_id == MID
    assert feed(r, [frags[-1]], cipher) == (PayloadType.NONCE, payloads)


def test_wrong_key_fragment_is_an_integrity_drop() -> None:
    frags = split(gcm(), big_chain(2000), 600)
    r = Reassembler()
    assert feed(r, frags, gcm()) is None
    assert r.drops["integrity"] == len(frags) and r.pending_message_id is None


def test_larger_total_restarts_reassembly() -> None:
    cipher = CIPHERS["aes-cbc+sha256"]
    payloads = big_chain(3000)
    old = split(cipher, payloads, 1232)
    new = split(cipher, payloads, 548)
    assert len(new) > len(old)
    r = Reassembler()
    assert feed(r, old[:-1], cipher) is None
    # The retransmission with smaller fragments: old pieces are thrown away.
    assert feed(r, new[:1], cipher) is None
    assert r.drops["restarted"] == 1
    # Late fragments of the old cut (smaller total) are discarded.
    assert feed(r, old[-1:], cipher) is None
    assert r.drops["total_smaller"] == 1
    assert feed(r, new[1:], cipher) == (PayloadType.NONCE, payloads)


def test_forged_larger_total_does_not_wipe_state() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    payloads = big_chain(3000)
    frags = split(cipher, payloads, 1232)
    other = split(gcm(), payloads, 548)  # same shape, wrong key: unauthenticated
    r = Reassembler()
    assert feed(r, frags[:-1], cipher) is None
    assert feed(r, other[:1], cipher) is None
    assert r.drops["integrity"] == 1 and r.drops["restarted"] == 0
    assert feed(r, frags[-1:], cipher) == (PayloadType.NONCE, payloads)


def test_unexpected_message_id_discarded_and_newer_supersedes() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    frags = split(cipher, big_chain(2000), 600)
    r = Reassembler()
    assert feed(r, frags, cipher, mid=MID + 1) is None
    assert r.drops["message_id"] == len(frags)
    assert feed(r, frags[:1], cipher) is None
    later = [
        (d, decode_message(d))
        for d in fragment_message(header(MID + 1), big_chain(2000), cipher, 600)
    ]
    assert feed(r, later[:1], cipher, mid=MID + 1) is None
    assert r.drops["superseded"] == 1 and r.pending_message_id == MID + 1


def test_timeout_discards_partial_state() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    payloads = big_chain(2000)
    frags = split(cipher, payloads, 600)
    r = Reassembler(timeout=10.0)
    assert feed(r, frags[:-1], cipher, now=100.0) is None
    assert feed(r, frags[-1:], cipher, now=110.5) is None  # too late: starts afresh
    assert r.drops["timeout"] == 1
    assert feed(r, frags[:-1], cipher, now=111.0) == (PayloadType.NONCE, payloads)
    assert not r.expire(1000.0)  # nothing left pending
    assert feed(r, frags[:1], cipher, now=1000.0) is None
    assert r.expire(1010.1) and r.pending_message_id is None


def test_fragment_count_limit() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    frags = split(cipher, big_chain(12000), 200)
    assert len(frags) > MAX_FRAGMENTS
    r = Reassembler()
    assert feed(r, frags, cipher) is None
    assert r.drops["too_many"] == len(frags) and r.pending_message_id is None
    small = Reassembler(max_fragments=len(frags))
    assert feed(small, frags, cipher) is not None


def test_reassembled_size_limit() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    frags = split(cipher, big_chain(3000), 600)
    r = Reassembler(max_size=2000)
    assert feed(r, frags, cipher) is None
    assert r.drops["too_big"] >= 1
    assert feed(Reassembler(max_size=3100), frags, cipher) is not None


def forge(
    cipher: SkCipher,
    number: int,
    total: int,
    inner_next: int,
    piece: bytes,
    message_id: int = MID,
    exchange: int = ExchangeType.IKE_AUTH,
) -> tuple[bytes, Message]:
    """An authentic SKF message with arbitrary header fields (as a buggy peer would send)."""
    body_len = cipher.body_length(len(piece))
    h = header(message_id, exchange)
    h = IkeHeader(
        h.spi_i, h.spi_r, PayloadType.SKF, h.exchange, h.message_id, h.flags,
        length=IKE_HEADER_LEN + SKF_HEADER_LEN + body_len,
    )  # fmt: skip
    aad = encode_header(h) + skf_header(inner_next, number, total, body_len)
    data = aad + cipher.seal(aad, piece)
    return data, decode_message(data)


def test_next_payload_rules() -> None:
    cipher = CIPHERS["aes-cbc+sha256"]
    first, chain = encode_payloads(big_chain(300))
    a, b = chain[:150], chain[150:]
    r = Reassembler()
    assert feed(r, [forge(cipher, 1, 2, 0, a)], cipher) is None  # fragment 1 must name it
    assert feed(r, [forge(cipher, 2, 2, first, b)], cipher) is None  # others must be 0
    assert r.drops["next_payload"] == 2 and r.pending_message_id is None
    stream = [forge(cipher, 2, 2, 0, b), forge(cipher, 1, 2, first, a)]
    assert feed(r, stream, cipher) == (first, decode_payloads(first, chain))


def test_bad_numbers_and_inconsistent_headers() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    first, chain = encode_payloads(big_chain(300))
    r = Reassembler()
    # The codec refuses number 0 / number > total, so build the values directly.
    data, msg = forge(cipher, 1, 2, first, chain[:100])
    for number, total in ((0, 2), (3, 2)):
        skf = msg.payloads[-1]
        assert isinstance(skf, SKF)
        fake = Message(msg.header, (SKF(first, number, total, skf.body),))
        assert r.add(data, fake, cipher, 0.0, expected_message_id=MID) is None
    assert r.drops["bad_number"] == 2
    assert feed(r, [(data, msg)], cipher) is None
    other = forge(cipher, 2, 2, 0, chain[100:], exchange=ExchangeType.INFORMATIONAL)
    assert feed(r, [other], cipher) is None
    assert r.drops["inconsistent"] == 1
    plain = fragment_message(header(), big_chain(10), cipher, 1500)[0]
    assert r.add(plain, decode_message(plain), cipher, 0.0, expected_message_id=MID) is None
    assert r.drops["not_skf"] == 1
    last = forge(cipher, 2, 2, 0, chain[100:])
    assert feed(r, [last], cipher) == (first, decode_payloads(first, chain))


def test_malformed_reassembled_chain_raises_decode_error() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    junk = b"\x00\x00\xff\xff" + b"x" * 20  # payload length 65535 overruns the chain
    r = Reassembler()
    stream = [
        forge(cipher, 1, 2, PayloadType.NONCE, junk[:10]),
        forge(cipher, 2, 2, 0, junk[10:]),
    ]
    with pytest.raises(DecodeError):
        feed(r, stream, cipher)
    assert r.pending_message_id is None


def test_reset_forgets_partial_message() -> None:
    cipher = CIPHERS["aes-gcm-16"]
    payloads = big_chain(2000)
    frags = split(cipher, payloads, 600)
    r = Reassembler()
    assert feed(r, frags[:-1], cipher) is None
    r.reset()
    assert r.pending_message_id is None
    assert feed(r, frags[-1:], cipher) is None
    assert feed(r, frags[:-1], cipher) == (PayloadType.NONCE, payloads)
