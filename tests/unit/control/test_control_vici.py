"""VICI codec: spec vectors, limits, malformed input and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.control.vici import (
    MAX_DEPTH,
    MAX_SEGMENT,
    Packet,
    PacketReader,
    PacketType,
    ViciError,
    decode_message,
    decode_packet,
    encode_message,
    encode_packet,
    value_bytes,
)

# --------------------------------------------------------------------------- vectors


def test_version_request_vector() -> None:
    # vici.md: `version` with no arguments is 00 00 00 09 | 00 | 07 "version".
    expected = bytes.fromhex("00000009") + b"\x00\x07version"
    assert encode_packet(PacketType.CMD_REQUEST, "version", {}) == expected
    assert encode_packet(PacketType.CMD_REQUEST, "version") == expected
    assert PacketReader().feed(expected) == [Packet(PacketType.CMD_REQUEST, "version", {})]


HAND_ENCODED = (
    b"\x03\x01a\x00\x011"  # KEY_VALUE a=1
    b"\x01\x01s"  # SECTION_START s
    b"\x03\x01k\x00\x01v"  # KEY_VALUE k=v
    b"\x02"  # SECTION_END
    b"\x04\x01l"  # LIST_START l
    b"\x05\x00\x01x"  # LIST_ITEM x
    b"\x05\x00\x02yz"  # LIST_ITEM yz
    b"\x06"  # LIST_END
)
HAND_DECODED = {"a": "1", "s": {"k": "v"}, "l": ["x", "yz"]}


def test_hand_encoded_message() -> None:
    assert encode_message(HAND_DECODED) == HAND_ENCODED
    assert decode_message(HAND_ENCODED) == HAND_DECODED
    assert list(decode_message(HAND_ENCODED)) == ["a", "s", "l"]  # order kept


def test_event_packet_with_message() -> None:
    seg = encode_packet(PacketType.EVENT, "list-sa", HAND_DECODED)
    assert seg[:4] == (len(seg) - 4).to_bytes(4, "big")
    assert seg[4:13] == b"\x07\x07list-sa"
    assert seg[13:] == HAND_ENCODED
    assert decode_packet(seg[4:]) == Packet(PacketType.EVENT, "list-sa", HAND_DECODED)


@pytest.mark.parametrize(
    ("ptype", "body"),
    [
        (PacketType.CMD_UNKNOWN, b"\x02"),
        (PacketType.EVENT_CONFIRM, b"\x05"),
        (PacketType.EVENT_UNKNOWN, b"\x06"),
    ],
)
def test_bodiless_packets(ptype: PacketType, body: bytes) -> None:
    assert encode_packet(ptype) == len(body).to_bytes(4, "big") + body
    assert decode_packet(body) == Packet(ptype, None, None)


def test_register_packet() -> None:
    assert encode_packet(PacketType.EVENT_REGISTER, "log") == b"\x00\x00\x00\x05\x03\x03log"
    assert decode_packet(b"\x04\x03log") == Packet(PacketType.EVENT_UNREGISTER, "log", None)


def test_empty_response() -> None:
    assert encode_packet(PacketType.CMD_RESPONSE, None, {}) == b"\x00\x00\x00\x01\x01"
    assert decode_packet(b"\x01") == Packet(PacketType.CMD_RESPONSE, None, {})


def test_value_conversions() -> None:
    raw = encode_message({"t": True, "f": False, "n": 42, "b": b"\xff\x00", "e": []})
    assert decode_message(raw) == {"t": "yes", "f": "no", "n": "42", "b": "\udcff\x00", "e": []}
    assert value_bytes(decode_message(raw)["b"]) == b"\xff\x00"


def test_binary_values_survive() -> None:
    der = bytes(range(256)) * 3
    decoded = decode_message(encode_message({"data": der}))["data"]
    assert isinstance(decoded, str)
    assert value_bytes(decoded) == der


# --------------------------------------------------------------------------- limits


def test_name_limit() -> None:
    assert decode_message(encode_message({"n" * 255: "v"})) == {"n" * 255: "v"}
    with pytest.raises(ViciError):
        encode_message({"n" * 256: "v"})
    with pytest.raises(ViciError):
        encode_packet(PacketType.CMD_REQUEST, "c" * 256)


def test_value_limit() -> None:
    big = "v" * 65535
    assert decode_message(encode_message({"k": big, "l": [big]})) == {"k": big, "l": [big]}
    with pytest.raises(ViciError):
        encode_message({"k": big + "v"})
    with pytest.raises(ViciError):
        encode_message({"l": [big + "v"]})


def test_segment_limit() -> None:
    # 9 values of 65535 bytes exceed 512 KiB.
    message = {f"k{i}": "v" * 65535 for i in range(9)}
    with pytest.raises(ViciError):
        encode_packet(PacketType.CMD_RESPONSE, None, message)
    with pytest.raises(ViciError):
        PacketReader().feed((MAX_SEGMENT + 1).to_bytes(4, "big"))
    # Exactly at the limit is fine: 7 full values plus padding.
    body = encode_message({f"k{i}": "v" * 65535 for i in range(7)})
    pad = MAX_SEGMENT - 1 - len(body) - 5  # type, name len, "p", 2-byte length
    body += encode_message({"p": "x" * pad})
    seg = (len(body) + 1).to_bytes(4, "big") + b"\x01" + body
    assert len(seg) - 4 == MAX_SEGMENT
    assert PacketReader().feed(seg)[0].type == PacketType.CMD_RESPONSE


def test_depth_limit() -> None:
    nested: dict[str, object] = {}
    inner = nested
    for _ in range(MAX_DEPTH):
        inner["s"] = {}
        inner = inner["s"]  # type: ignore[assignment]
    assert decode_message(encode_message(nested)) == nested
    deeper = b"\x01\x01s" * (MAX_DEPTH + 1) + b"\x02" * (MAX_DEPTH + 1)
    with pytest.raises(ViciError):
        decode_message(deeper)
    with pytest.raises(ViciError):
        encode_message({"s": nested})


@pytest.mark.parametrize(
    "message",
    [
        {"l": [["nested"]]},
        {"l": [{"s": "v"}]},
        {1: "v"},
        {"k": 1.5},
        {"k": None},
    ],
)
def test_unencodable(message: dict[object, object]) -> None:
    with pytest.raises(ViciError):
        encode_message(message)


def test_packet_argument_checks() -> None:
    with pytest.raises(ViciError):
        encode_packet(PacketType.CMD_REQUEST, None)
    with pytest.raises(ViciError):
        encode_packet(PacketType.CMD_RESPONSE, "name")
    with pytest.raises(ViciError):
        encode_packet(PacketType.EVENT_CONFIRM, None, {})
    with pytest.raises(ViciError):
        encode_packet(9, None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "data",
    [
        b"\x02",  # section end at top level
        b"\x01\x01s",  # unterminated section
        b"\x01\x01s\x02\x02",  # too many ends
        b"\x04\x01l",  # unterminated list
        b"\x04\x01l\x04\x01m\x06\x06",  # nested list
        b"\x04\x01l\x03\x01k\x00\x00\x06",  # key-value inside list
        b"\x04\x01l\x01\x01s\x02\x06",  # section inside list
        b"\x05\x00\x00",  # list item outside list
        b"\x06",  # list end outside list
        b"\x07",  # unknown element
        b"\x00",  # unknown element
        b"\x03\x05ab",  # truncated name
        b"\x03\x01k\x00",  # truncated value length
        b"\x03\x01k\x00\x05abc",  # truncated value
        b"\x03\x01k\x00\x00\x03\x01k\x00\x00",  # duplicate key
        b"\x01\x01s\x02\x03\x01s\x00\x00",  # duplicate name across types
    ],
)
def test_malformed_messages(data: bytes) -> None:
    with pytest.raises(ViciError):
        decode_message(data)


@pytest.mark.parametrize(
    "body",
    [
        b"",  # empty
        b"\x08",  # unknown packet type
        b"\xff",
        b"\x00",  # named packet without name length
        b"\x00\x05ver",  # truncated name
        b"\x00\x02\xc3\xa9",  # non-ASCII name
        b"\x02junk",  # CMD_UNKNOWN with a body
        b"\x03\x03logx",  # register with a body
        b"\x01\x07",  # response with a bad message
    ],
)
def test_malformed_packets(body: bytes) -> None:
    with pytest.raises(ViciError):
        decode_packet(body)


def test_zero_length_segment() -> None:
    with pytest.raises(ViciError):
        PacketReader().feed(b"\x00\x00\x00\x00")


def test_reader_stays_failed() -> None:
    reader = PacketReader()
    with pytest.raises(ViciError):
        reader.feed(b"\x00\x00\x00\x01\x09")
    with pytest.raises(ViciError):
        reader.feed(encode_packet(PacketType.CMD_RESPONSE, None, {}))


def test_reader_incremental() -> None:
    stream = (
        encode_packet(PacketType.EVENT_REGISTER, "list-sa")
        + encode_packet(PacketType.CMD_REQUEST, "list-sas", {"ike": "home"})
        + encode_packet(PacketType.EVENT_UNREGISTER, "list-sa")
    )
    reader = PacketReader()
    got: list[Packet] = []
    for i in range(len(stream)):
        got += reader.feed(stream[i : i + 1])
    assert reader.pending == 0
    assert got == [
        Packet(PacketType.EVENT_REGISTER, "list-sa", None),
        Packet(PacketType.CMD_REQUEST, "list-sas", {"ike": "home"}),
        Packet(PacketType.EVENT_UNREGISTER, "list-sa", None),
    ]
    assert PacketReader().feed(stream) == got


# --------------------------------------------------------------------------- properties

_raw_text = st.binary(max_size=24).map(lambda b: b.decode("utf-8", "surrogateescape"))
_names = st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape"))
_lists = st.lists(_raw_text, max_size=4)
messages = st.recursive(
    st.dictionaries(_names, st.one_of(_raw_text, _lists), max_size=4),
    lambda inner: st.dictionaries(_names, st.one_of(_raw_text, _lists, inner), max_size=4),
    max_leaves=20,
)


@settings(deadline=None)
@given(messages)
def test_message_round_trip(message: dict[str, object]) -> None:
    assert decode_message(encode_message(message)) == message


@settings(deadline=None)
@given(st.sampled_from(list(PacketType)), st.text(alphabet=st.characters(max_codepoint=127)))
def test_packet_round_trip(ptype: PacketType, name: str) -> None:
    name = name[:255]
    message = {"k": name, "s": {"l": [name]}} if ptype.has_message else None
    seg = encode_packet(ptype, name if ptype.named else None, message)
    assert PacketReader().feed(seg) == [Packet(ptype, name if ptype.named else None, message)]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_message_bytes(data: bytes) -> None:
    try:
        message = decode_message(data)
    except ViciError:
        return
    # Decoding is lossless: re-encoding gives back exactly the input.
    assert encode_message(message) == data


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=6))
def test_arbitrary_stream_chunks(chunks: list[bytes]) -> None:
    reader = PacketReader()
    try:
        for chunk in chunks:
            for packet in reader.feed(chunk):
                assert isinstance(packet.type, PacketType)
    except ViciError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_framed_bodies(body: bytes) -> None:
    seg = len(body).to_bytes(4, "big") + body
    try:
        packets = PacketReader().feed(seg)
    except ViciError:
        return
    assert len(packets) == 1
    p = packets[0]
    assert encode_packet(p.type, p.name, p.message) == seg
