"""Inner IP packet checks (RFC 4303 §2.7 TFC padding removal)."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from petrel.esp.packet import NH_IPV4, NH_IPV6, inner_length, next_header_for


def ipv4(payload: bytes = b"hello") -> bytes:
    total = 20 + len(payload)
    src = ipaddress.IPv4Address("10.0.0.1").packed
    dst = ipaddress.IPv4Address("10.0.1.1").packed
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 17, 0, src, dst) + payload


def ipv6(payload: bytes = b"hello") -> bytes:
    src = ipaddress.IPv6Address("fd00::1").packed
    dst = ipaddress.IPv6Address("fd00:1::1").packed
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), 17, 64, src, dst) + payload


def test_next_header_for() -> None:
    assert next_header_for(ipv4()) == NH_IPV4
    assert next_header_for(ipv6()) == NH_IPV6
    assert next_header_for(b"") is None
    assert next_header_for(b"\x50") is None


def test_lengths_and_tfc_trim() -> None:
    assert inner_length(ipv4(b"abc") + bytes(30), NH_IPV4) == 23
    assert inner_length(ipv6(b"abc") + bytes(30), NH_IPV6) == 43
    assert inner_length(ipv4(b"abc"), NH_IPV4) == 23


def test_malformed() -> None:
    four, six = ipv4(b"abc"), ipv6(b"abc")
    assert inner_length(four[:-1], NH_IPV4) is None  # length field beyond data
    assert inner_length(six[:-1], NH_IPV6) is None
    assert inner_length(four, NH_IPV6) is None  # version / next header mismatch
    assert inner_length(six, NH_IPV4) is None
    assert inner_length(b"\x44" + four[1:], NH_IPV4) is None  # IHL < 5
    assert inner_length(four[:2] + b"\x00\x10" + four[4:], NH_IPV4) is None  # total < IHL
    assert inner_length(four, 59) is None


@given(st.binary(max_size=80), st.sampled_from([NH_IPV4, NH_IPV6, 0, 59]))
def test_never_raises(data: bytes, nh: int) -> None:
    length = inner_length(data, nh)
    assert length is None or 0 < length <= len(data)


def test_available_limits_the_view() -> None:
    packet = ipv4(b"abc") + b"\x01\x02\x02\x04"
    assert inner_length(packet, NH_IPV4, 23) == 23
    assert inner_length(packet, NH_IPV4, 22) is None
    assert inner_length(packet, NH_IPV4, 100) == 23
