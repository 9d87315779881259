"""Tests for the SPD and packet field extraction."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.policy.selectors import Selector
from petrel.policy.spd import Spd, packet_selector_fields

S = Selector.from_cidr


def ipv4(src: str, dst: str, proto: int, payload: bytes, frag: int = 0, ihl: int = 5) -> bytes:
    options = b"\x01" * (ihl * 4 - 20)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(payload),
        1,
        frag,
        64,
        proto,
        0,
        ip_address(src).packed,
        ip_address(dst).packed,
    )
    return header + options + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!IHBB16s16s",
        0x60000000,
        len(payload),
        next_header,
        64,
        ip_address(src).packed,
        ip_address(dst).packed,
    )
    return header + payload


def ports(sport: int, dport: int) -> bytes:
    return struct.pack("!HH", sport, dport) + b"\x00" * 16


A4, B4 = "198.51.100.1", "203.0.113.7"
A6, B6 = "2001:db8::1", "2001:db8:1::2"
PA4, PB4 = IPv4Address(A4).packed, IPv4Address(B4).packed
PA6, PB6 = IPv6Address(A6).packed, IPv6Address(B6).packed


def ext(next_header: int, body_len_units: int) -> bytes:
    """A generic IPv6 extension header of (units + 1) * 8 octets."""
    return bytes([next_header, body_len_units]) + b"\x00" * (6 + 8 * body_len_units)


def frag6(next_header: int, offset: int, more: bool) -> bytes:
    return struct.pack("!BBHI", next_header, 0, (offset << 3) | int(more), 0x1234)


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (ipv4(A4, B4, 6, ports(1234, 80)), (PA4, PB4, 6, 1234, 80)),
        (ipv4(A4, B4, 17, ports(53, 5353)), (PA4, PB4, 17, 53, 5353)),
        (ipv4(A4, B4, 132, ports(1, 2)), (PA4, PB4, 132, 1, 2)),
        (ipv4(A4, B4, 6, ports(1234, 80), ihl=7), (PA4, PB4, 6, 1234, 80)),
        (ipv4(A4, B4, 1, bytes([8, 0, 0, 0])), (PA4, PB4, 1, 0x0800, 0x0800)),
        (ipv4(A4, B4, 47, b"\x00" * 8), (PA4, PB4, 47, 0, 0)),
        # first fragment (MF set, offset 0) still carries ports
        (ipv4(A4, B4, 6, ports(1234, 80), frag=0x2000), (PA4, PB4, 6, 1234, 80)),
        # later fragment: no ports
        (ipv4(A4, B4, 6, b"\x00", frag=0x0010), (PA4, PB4, 6, 0, 0)),
        (ipv6(A6, B6, 6, ports(40000, 443)), (PA6, PB6, 6, 40000, 443)),
        (ipv6(A6, B6, 58, bytes([128, 0, 0, 0])), (PA6, PB6, 58, 0x8000, 0x8000)),
        (ipv6(A6, B6, 0, ext(60, 1) + ext(17, 0) + ports(1, 2)), (PA6, PB6, 17, 1, 2)),
        (ipv6(A6, B6, 44, frag6(17, 0, True) + ports(7, 9)), (PA6, PB6, 17, 7, 9)),
        (ipv6(A6, B6, 44, frag6(17, 100, False) + b"xx"), (PA6, PB6, 17, 0, 0)),
        (ipv6(A6, B6, 59, b""), (PA6, PB6, 59, 0, 0)),
        (ipv6(A6, B6, 50, b"\x00" * 8), (PA6, PB6, 50, 0, 0)),
    ],
)
def test_packet_selector_fields(packet: bytes, expected: tuple) -> None:
    assert packet_selector_fields(packet) == expected
    assert packet_selector_fields(memoryview(packet)) == expected
    assert packet_selector_fields(bytearray(packet)) == expected


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x45" + b"\x00" * 10,
        ipv4(A4, B4, 6, b"")[:19],
        b"\x44" + ipv4(A4, B4, 17, ports(1, 2))[1:],  # IHL 4 < 5
        b"\x4f" + ipv4(A4, B4, 17, ports(1, 2))[1:],  # IHL beyond the buffer
        ipv4(A4, B4, 6, b"\x00\x01"),  # TCP header cut short
        ipv4(A4, B4, 1, b"\x08"),
        ipv6(A6, B6, 6, b"")[:39],
        ipv6(A6, B6, 6, b"\x00"),
        ipv6(A6, B6, 0, b"\x11"),
        ipv6(A6, B6, 0, ext(6, 4)[:10]),
        ipv6(A6, B6, 44, frag6(6, 0, True)[:7]),
        ipv6(A6, B6, 0, b"".join(ext(0, 0) for _ in range(9)) + ext(6, 0) + ports(1, 2)),
        b"\x50" * 40,
        b"\x00",
    ],
)
def test_packet_selector_fields_rejects(packet: bytes) -> None:
    with pytest.raises(ValueError):
        packet_selector_fields(packet)


@settings(max_examples=1000)
@given(st.binary(max_size=120))
def test_packet_selector_fields_never_raises_other_errors(data: bytes) -> None:
    try:
        src, dst, proto, sport, dport = packet_selector_fields(data)
    except ValueError:
        return
    assert len(src) == len(dst) in (4, 16)
    assert 0 <= proto <= 255 and 0 <= sport <= 65535 and 0 <= dport <= 65535


@settings(max_examples=500)
@given(
    st.sampled_from([0x40, 0x45, 0x46, 0x60]).flatmap(
        lambda first: st.binary(min_size=19, max_size=100).map(lambda rest: bytes([first]) + rest)
    )
)
def test_packet_selector_fields_ip_like_input(data: bytes) -> None:
    try:
        packet_selector_fields(data)
    except ValueError:
        pass
    else:
        assert data[0] >> 4 in (4, 6)


def make_spd() -> Spd:
    spd = Spd()
    spd.add([S("198.51.100.0/24")], [S("203.0.113.0/24[tcp/22]")], "ssh")
    spd.add([S("198.51.100.1/32")], [S("203.0.113.0/24")], "net")
    spd.add([S("2001:db8::/32")], [S("2001:db8:1::/48")], "six")
    return spd


def test_lookup_outbound_first_match_wins() -> None:
    spd = make_spd()
    assert spd.lookup_outbound(PA4, PB4, 6, 5000, 22) == "ssh"
    assert spd.lookup_outbound(PA4, PB4, 6, 5000, 23) == "net"
    assert spd.lookup_outbound(PA4, PB4, 17, 5000, 22) == "net"
    assert spd.lookup_outbound(IPv4Address("198.51.100.2"), B4, 6, 5000, 80) is None
    assert spd.lookup_outbound(A4, "192.0.2.1", 6, 5000, 22) is None
    assert spd.lookup_outbound(PA6, PB6, 17, 1, 2) == "six"
    assert spd.lookup_outbound(PB6, PA6, 17, 1, 2) is None
    # an IPv4 address never matches an IPv6 rule of the same numeric value
    assert spd.lookup_outbound(PA4, IPv6Address("::cb00:7107").packed, 6, 1, 22) is None


def test_lookup_from_packet_fields() -> None:
    spd = make_spd()
    fields = packet_selector_fields(ipv4(A4, B4, 6, ports(40000, 22)))
    assert spd.lookup_outbound(*fields) == "ssh"


def test_check_inbound_reverses_direction() -> None:
    spd = make_spd()
    # reply from the remote ssh server to the local host
    assert spd.check_inbound("ssh", PB4, PA4, 6, 22, 40000)
    assert not spd.check_inbound("ssh", PB4, PA4, 6, 23, 40000)
    assert not spd.check_inbound("ssh", PA4, PB4, 6, 22, 40000)
    assert spd.check_inbound("net", B4, A4, 1, 0, 0)
    assert not spd.check_inbound("net", B4, "198.51.100.2", 1, 0, 0)
    assert not spd.check_inbound("unknown", PB4, PA4, 6, 22, 40000)


def test_opaque_selector_matches_only_portless_packets() -> None:
    spd = Spd()
    spd.add([S("198.51.100.0/24")], [S("203.0.113.0/24[tcp/%opaque]")], "frag")
    assert spd.lookup_outbound(PA4, PB4, 6, 0, 0) == "frag"
    assert spd.lookup_outbound(PA4, PB4, 6, 1, 80) is None


def test_add_replace_remove_and_order() -> None:
    spd = make_spd()
    assert len(spd) == 3
    spd.add([S("0.0.0.0/0")], [S("0.0.0.0/0")], "all", index=0)
    assert spd.lookup_outbound(PA4, PB4, 6, 5000, 22) == "all"
    spd.add([S("0.0.0.0/0")], [S("192.0.2.0/24")], "all")  # same handle replaces
    assert len(spd) == 4
    assert spd.lookup_outbound(PA4, PB4, 6, 5000, 22) == "ssh"
    assert spd.remove("ssh")
    assert not spd.remove("ssh")
    assert spd.lookup_outbound(PA4, PB4, 6, 5000, 22) == "net"
    assert [e.handle for e in spd.entries] == ["net", "six", "all"]


def test_dynamic_selectors_are_refused() -> None:
    with pytest.raises(ValueError):
        Spd().add([S("dynamic")], [S("10.0.0.0/8")], "x")
