"""Link layers, IP versions and UDP classification of the capture reader."""

from __future__ import annotations

import pytest
from decode_helpers import (
    ethernet,
    ipv4,
    ipv6,
    pcap_bytes,
    pcapng_bytes,
    sll,
    sll2,
    udp,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.decode.capture import (
    CaptureError,
    classify_udp,
    parse_frame,
    read_capture_bytes,
    read_hex,
)

IKE = b"\x11" * 28
MARKER = b"\x00\x00\x00\x00"


def _ike_v4() -> bytes:
    return ipv4("192.0.2.1", "192.0.2.2", 17, udp(500, 500, IKE))


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (1, ethernet(_ike_v4())),
        (1, ethernet(_ike_v4(), vlan=42)),
        (113, sll(_ike_v4())),
        (276, sll2(_ike_v4())),
        (101, _ike_v4()),
        (228, _ike_v4()),
    ],
)
def test_link_types(linktype: int, frame: bytes) -> None:
    found = parse_frame(7, 1.5, linktype, frame)
    assert found is not None
    assert (found.frame, found.src, found.dst, found.sport, found.kind) == (
        7,
        "192.0.2.1",
        "192.0.2.2",
        500,
        "ike",
    )
    assert found.data == IKE


def test_ipv6_with_extension_header_on_4500() -> None:
    packet = ipv6("2001:db8::1", "2001:db8::2", 17, udp(4500, 4500, MARKER + IKE), True)
    found = parse_frame(1, None, 1, ethernet(packet))
    assert found is not None and found.kind == "ike" and found.data == IKE
    assert found.src == "2001:db8::1"


def test_udp_4500_classification() -> None:
    assert classify_udp(4500, 4500, MARKER + IKE) == ("ike", IKE)
    assert classify_udp(4500, 1234, b"\xff") == ("keepalive", b"\xff")
    esp = b"\xc0\xff\xee\x01" + bytes(20)
    assert classify_udp(1234, 4500, esp) == ("esp", esp)
    assert classify_udp(4500, 4500, b"\x01\x02") is None
    assert classify_udp(53, 53, IKE) is None
    assert classify_udp(500, 40000, IKE) == ("ike", IKE)


def test_raw_esp_and_ignored_packets() -> None:
    esp = b"\xc0\xff\xee\x01" + bytes(24)
    found = parse_frame(1, None, 101, ipv4("192.0.2.1", "192.0.2.2", 50, esp))
    assert found is not None and found.kind == "esp" and found.data == esp
    tcp = ipv4("192.0.2.1", "192.0.2.2", 6, bytes(40))
    assert parse_frame(1, None, 101, tcp) is None
    fragment = ipv4("192.0.2.1", "192.0.2.2", 17, udp(500, 500, IKE), frag=0x2000)
    assert parse_frame(1, None, 101, fragment) is None
    assert parse_frame(1, None, 1, b"\x00" * 10) is None
    assert parse_frame(1, None, 999, _ike_v4()) is None


def test_pcap_and_pcapng_frame_numbers_count_every_frame() -> None:
    frames = [
        ethernet(ipv4("192.0.2.1", "192.0.2.2", 6, bytes(40))),  # frame 1: TCP, skipped
        ethernet(_ike_v4()),
        ethernet(ipv4("192.0.2.1", "192.0.2.2", 17, udp(4500, 4500, b"\xff"))),
    ]
    for data in (pcap_bytes(frames, 1), pcapng_bytes(frames, 1)):
        found = list(read_capture_bytes(data))
        assert [(d.frame, d.kind) for d in found] == [(2, "ike"), (3, "keepalive")]
        assert found[0].time == pytest.approx(1001.0)


def test_not_a_capture() -> None:
    with pytest.raises(CaptureError):
        list(read_capture_bytes(b"GIF89a not a capture"))
    with pytest.raises(CaptureError):
        list(read_capture_bytes(b""))


def test_hex_lines() -> None:
    found = list(read_hex(["# c\n", "\n", "11 22\n", "00000000 aabb # x\n", "ff\n", "xyz\n"]))
    assert [(d.frame, d.kind, d.data, d.note) for d in found] == [
        (3, "ike", b"\x11\x22", ""),
        (4, "ike", b"\xaa\xbb", ""),
        (5, "keepalive", b"\xff", ""),
        (6, "ike", b"", "line is not hex"),
    ]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([0, 1, 101, 113, 228, 229, 276]), st.binary(max_size=120))
def test_arbitrary_frames_never_raise(linktype: int, frame: bytes) -> None:
    found = parse_frame(1, None, linktype, frame)
    assert found is None or found.kind in ("ike", "esp", "keepalive")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=80), st.integers(0, 60), st.integers(1, 255))
def test_mutated_headers_never_raise(payload: bytes, position: int, xor: int) -> None:
    packet = bytearray(ethernet(ipv6("2001:db8::1", "2001:db8::2", 17, udp(500, 500, payload))))
    packet[14 + position] ^= xor
    parse_frame(1, None, 1, bytes(packet))
