"""Hostile input: the decoder returns a value or raises DecodeError, nothing else."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_strategies import message_bytes

from petrel.wire.codec import decode_message, decode_payloads, encode_message
from petrel.wire.errors import DecodeError
from petrel.wire.registry import NotifyType

_NOTIFIES = {
    NotifyType.INVALID_SYNTAX,
    NotifyType.INVALID_MAJOR_VERSION,
    NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
}


def _decode_or_error(data: bytes) -> None:
    """Decode ``data`` as a message and as a chain; on success the value must re-encode."""
    for attempt in (lambda: decode_message(data), lambda: decode_payloads(data[0], data[1:])):
        if not data:
            break
        try:
            value = attempt()
        except DecodeError as exc:
            assert exc.notify in _NOTIFIES
            assert isinstance(exc.detail, str) and exc.detail
            if exc.notify == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD:
                assert exc.payload_type is not None
            continue
        if not isinstance(value, tuple):
            assert decode_message(encode_message(value)) == value


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _decode_or_error(data)


@settings(max_examples=300)
@given(st.binary(min_size=28, max_size=200))
def test_arbitrary_bytes_with_consistent_header(data: bytes) -> None:
    """Force version 2 and a matching length so the chain decoder is what gets exercised."""
    raw = bytearray(data)
    raw[17] = 0x20
    raw[24:28] = struct.pack("!I", len(raw))
    _decode_or_error(bytes(raw))


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(message_bytes()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "length", "byte", "insert"]))
        if not data:
            break
        if kind == "flip":
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif kind == "byte":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == "insert":
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif len(data) >= 2:  # overwrite a 16-bit field (payload/attribute/selector lengths)
            pos = draw(st.integers(0, len(data) - 2))
            data[pos : pos + 2] = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
    if draw(st.booleans()) and len(data) >= 28:  # keep the outer header plausible
        data[17] = 0x20
        data[24:28] = struct.pack("!I", len(data))
    return bytes(data)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_valid_messages(data: bytes) -> None:
    _decode_or_error(data)


@settings(max_examples=300)
@given(message_bytes(), st.data())
def test_every_truncation_is_rejected(data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(0, len(data) - 1))
    try:
        decode_message(data[:cut])
    except DecodeError as exc:
        assert exc.notify == NotifyType.INVALID_SYNTAX
    else:
        raise AssertionError("a truncated message decoded")
