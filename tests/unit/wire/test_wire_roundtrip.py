"""Property tests: decode(encode(v)) == v and encode(decode(b)) == b for generated values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import (
    encrypted_payloads,
    ike_headers,
    messages,
    payload_chains,
    plain_payloads,
)

from petrel.wire.codec import (
    decode_header,
    decode_message,
    decode_payloads,
    encode_header,
    encode_message,
    encode_payloads,
)
from petrel.wire.payloads import IKE_HEADER_LEN, Message, Payload


@given(plain_payloads() | encrypted_payloads())
def test_single_payload_round_trip(payload: Payload) -> None:
    first, chain = encode_payloads([payload])
    decoded = decode_payloads(first, chain)
    assert decoded == (payload,)
    assert type(decoded[0]) is type(payload)
    assert encode_payloads(decoded) == (first, chain)


@given(payload_chains())
def test_payload_chain_round_trip(chain: tuple[Payload, ...]) -> None:
    first, data = encode_payloads(chain)
    assert decode_payloads(first, data) == chain


@settings(max_examples=300)
@given(messages())
def test_message_round_trip(msg: Message) -> None:
    data = encode_message(msg)
    assert len(data) == msg.header.length
    decoded = decode_message(data)
    assert decoded == msg
    assert encode_message(decoded) == data


@given(ike_headers())
def test_header_round_trip(header) -> None:  # type: ignore[no-untyped-def]
    data = encode_header(header)
    assert len(data) == IKE_HEADER_LEN
    assert decode_header(data) == header


@given(messages(), st.integers(1, 0xFF))
def test_reserved_bits_ignored_on_decode(msg: Message, noise: int) -> None:
    """§3.1/§3.2: reserved flag bits and the generic header's reserved bits are ignored."""
    data = bytearray(encode_message(msg))
    data[19] |= noise & 0xC7  # IKE header flags other than I, V, R
    if msg.payloads:
        data[IKE_HEADER_LEN + 1] |= noise & 0x7F  # first generic header, bits after C
    assert decode_message(bytes(data)) == msg
