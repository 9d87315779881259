"""Tests for traffic selectors and RFC 7296 §2.9 narrowing."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrel.policy.selectors import Selector, matches_packet, narrow, resolve_dynamic
from petrel.wire.payloads import TrafficSelector
from petrel.wire.registry import TsType

S = Selector.from_cidr


@pytest.mark.parametrize(
    ("text", "start", "end", "proto", "ports"),
    [
        ("10.0.0.0/24", "10.0.0.0", "10.0.0.255", 0, (0, 65535)),
        ("10.0.0.7/24", "10.0.0.0", "10.0.0.255", 0, (0, 65535)),
        ("10.0.0.1", "10.0.0.1", "10.0.0.1", 0, (0, 65535)),
        ("10.0.0.1-10.0.0.9", "10.0.0.1", "10.0.0.9", 0, (0, 65535)),
        ("10.0.0.1..10.0.0.9", "10.0.0.1", "10.0.0.9", 0, (0, 65535)),
        ("0.0.0.0/0", "0.0.0.0", "255.255.255.255", 0, (0, 65535)),
        ("%any", "0.0.0.0", "255.255.255.255", 0, (0, 65535)),
        ("%any6", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, (0, 65535)),
        (
            "2001:db8::/32[tcp/443]",
            "2001:db8::",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            6,
            (443, 443),
        ),
        ("10.0.0.0/24[tcp/80]", "10.0.0.0", "10.0.0.255", 6, (80, 80)),
        ("10.0.0.0/24[udp]", "10.0.0.0", "10.0.0.255", 17, (0, 65535)),
        ("10.0.0.0/24[/53]", "10.0.0.0", "10.0.0.255", 0, (53, 53)),
        ("10.0.0.0/24[%any/53]", "10.0.0.0", "10.0.0.255", 0, (53, 53)),
        ("10.0.0.0/24[tcp/1024-65535]", "10.0.0.0", "10.0.0.255", 6, (1024, 65535)),
        ("10.0.0.0/24[tcp/%opaque]", "10.0.0.0", "10.0.0.255", 6, (65535, 0)),
        ("10.0.0.0/24[icmp/8]", "10.0.0.0", "10.0.0.255", 1, (0x0800, 0x08FF)),
        ("10.0.0.0/24[icmp/3/4]", "10.0.0.0", "10.0.0.255", 1, (0x0304, 0x0304)),
        ("10.0.0.0/24[47]", "10.0.0.0", "10.0.0.255", 47, (0, 65535)),
        (" 10.0.0.0/24 [ tcp / 80 ] ", "10.0.0.0", "10.0.0.255", 6, (80, 80)),
    ],
)
def test_from_cidr(text: str, start: str, end: str, proto: int, ports: tuple[int, int]) -> None:
    sel = S(text)
    assert (str(sel.start), str(sel.end)) == (start, end)
    assert (sel.protocol, sel.start_port, sel.end_port) == (proto, *ports)
    assert not sel.dynamic
    assert S(str(sel)) == sel  # __str__ round-trips


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("10.0.0.0/24[tcp/80]", "10.0.0.0/24[tcp/80]"),
        ("10.0.0.1", "10.0.0.1/32"),
        ("10.0.0.1-10.0.0.9", "10.0.0.1..10.0.0.9"),
        ("10.0.0.0-10.0.0.255", "10.0.0.0/24"),
        ("10.0.0.0/24[udp]", "10.0.0.0/24[udp]"),
        ("10.0.0.0/24[/53]", "10.0.0.0/24[/53]"),
        ("10.0.0.0/24[icmp/8]", "10.0.0.0/24[icmp/8]"),
        ("10.0.0.0/24[icmp/3/4]", "10.0.0.0/24[icmp/3/4]"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("dynamic[tcp/22]", "dynamic[tcp/22]"),
    ],
)
def test_str(text: str, shown: str) -> None:
    assert str(S(text)) == shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10.0.0.0/33",
        "10.0.0.9-10.0.0.1",
        "10.0.0.1-2001:db8::1",
        "host.example",
        "10.0.0.0/24[tcp/99999]",
        "10.0.0.0/24[tcp/90-80]",
        "10.0.0.0/24[bogus]",
        "10.0.0.0/24[256]",
        "10.0.0.0/24[tcp/http]",
        "10.0.0.0/24]",
        "10.0.0.0/24[icmp/300]",
        "10.0.0.0/24[icmp/3/x]",
    ],
)
def test_from_cidr_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        S(text)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        Selector(IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1"))
    with pytest.raises(ValueError):
        Selector(IPv4Address("10.0.0.1"), IPv6Address("::1"))
    with pytest.raises(ValueError):
        Selector(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.1"), 6, 80, 79)
    with pytest.raises(ValueError):
        Selector(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.1"), 300)


def test_wire_round_trip() -> None:
    sel = S("192.0.2.0/24[udp/500]")
    wire = sel.to_wire()
    assert wire == TrafficSelector(
        TsType.IPV4_ADDR_RANGE, 17, 500, 500, bytes([192, 0, 2, 0]), bytes([192, 0, 2, 255])
    )
    assert Selector.from_wire(wire) == sel
    six = S("2001:db8::/64")
    assert six.to_wire().ts_type == TsType.IPV6_ADDR_RANGE
    assert Selector.from_wire(six.to_wire()) == six


@pytest.mark.parametrize(
    "wire",
    [
        TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, b"\x00" * 16, b"\x00" * 16),
        TrafficSelector(TsType.IPV6_ADDR_RANGE, 0, 0, 65535, b"\x00" * 4, b"\x00" * 4),
        TrafficSelector(9, 0, 0, 65535, b"\x00" * 4, b"\x00" * 4),
        TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, b"\x00\x00\x00\x02", b"\0\0\0\1"),
        TrafficSelector(TsType.IPV4_ADDR_RANGE, 6, 9, 8, b"\x00" * 4, b"\x00" * 4),
    ],
)
def test_from_wire_rejects(wire: TrafficSelector) -> None:
    with pytest.raises(ValueError):
        Selector.from_wire(wire)


def test_dynamic_cannot_go_on_the_wire_until_resolved() -> None:
    dyn = S("dynamic[tcp/22]")
    assert dyn.dynamic
    with pytest.raises(ValueError):
        dyn.to_wire()
    (resolved,) = resolve_dynamic([dyn], "192.0.2.1")
    assert resolved == S("192.0.2.1/32[tcp/22]")
    other = S("10.0.0.0/8")
    assert resolve_dynamic([other, S("dynamic")], IPv6Address("2001:db8::1")) == (
        other,
        S("2001:db8::1"),
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("10.0.0.0/16", "10.0.1.0/24", "10.0.1.0/24"),
        ("10.0.0.0-10.0.0.50", "10.0.0.40-10.0.0.99", "10.0.0.40-10.0.0.50"),
        ("10.0.0.0/24", "10.0.1.0/24", None),
        ("10.0.0.0/24", "2001:db8::/32", None),
        ("10.0.0.0/24", "10.0.0.0/24[tcp/80]", "10.0.0.0/24[tcp/80]"),
        ("10.0.0.0/24[tcp]", "10.0.0.0/24[udp]", None),
        ("10.0.0.0/24[tcp/1-100]", "10.0.0.0/24[/50-200]", "10.0.0.0/24[tcp/50-100]"),
        ("10.0.0.0/24[tcp/1-10]", "10.0.0.0/24[tcp/11-20]", None),
        ("10.0.0.0/24[tcp/%opaque]", "10.0.0.0/24", "10.0.0.0/24[tcp/%opaque]"),
        ("10.0.0.0/24[tcp/%opaque]", "10.0.0.0/24[tcp/80]", None),
        ("10.0.0.0/24[/%opaque]", "10.0.0.0/24[/%opaque]", "10.0.0.0/24[/%opaque]"),
    ],
)
def test_intersect(a: str, b: str, expected: str | None) -> None:
    want = None if expected is None else S(expected)
    assert S(a).intersect(S(b)) == want
    assert S(b).intersect(S(a)) == want


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("10.0.0.0/16", "10.0.1.0/24", True),
        ("10.0.1.0/24", "10.0.0.0/16", False),
        ("10.0.0.0/16", "10.0.1.0/24[tcp/80]", True),
        ("10.0.0.0/16[tcp/80]", "10.0.1.0/24", False),
        ("10.0.0.0/16[tcp/1-100]", "10.0.1.0/24[tcp/80]", True),
        ("10.0.0.0/16", "10.0.1.0/24[tcp/%opaque]", True),
        ("10.0.0.0/16[tcp/1-100]", "10.0.1.0/24[tcp/%opaque]", False),
        ("10.0.0.0/16", "2001:db8::/64", False),
    ],
)
def test_contains(outer: str, inner: str, expected: bool) -> None:
    assert S(outer).contains(S(inner)) is expected


def test_matches_endpoint() -> None:
    sel = S("10.0.0.0/24[tcp/80]")
    assert sel.matches("10.0.0.9", 6, 80)
    assert sel.matches(IPv4Address("10.0.0.9"), 6, 80)
    assert sel.matches(bytes([10, 0, 0, 9]), 6, 80)
    assert not sel.matches("10.0.1.9", 6, 80)
    assert not sel.matches("10.0.0.9", 17, 80)
    assert not sel.matches("10.0.0.9", 6, 81)
    assert not sel.matches(IPv6Address("::a00:9").packed, 6, 80)
    assert S("10.0.0.0/24[tcp/%opaque]").matches("10.0.0.1", 6, 0)
    assert not S("10.0.0.0/24[tcp/%opaque]").matches("10.0.0.1", 6, 80)


def test_matches_packet_pair() -> None:
    local = (S("198.51.100.1/32"),)
    remote = (S("203.0.113.0/24[udp/53]"), S("203.0.113.0/24[tcp/22]"))
    assert matches_packet(local, remote, "198.51.100.1", "203.0.113.5", 17, 4000, 53)
    assert matches_packet(local, remote, "198.51.100.1", "203.0.113.5", 6, 4000, 22)
    assert not matches_packet(local, remote, "198.51.100.1", "203.0.113.5", 6, 4000, 53)
    assert not matches_packet(local, remote, "198.51.100.2", "203.0.113.5", 17, 4000, 53)


# RFC 7296 §2.9 narrowing.  The initiator's first selector is the specific address of the
# packet that triggered the request; the second is the whole range it would like.
@pytest.mark.parametrize(
    ("proposed", "configured", "expected"),
    [
        # the responder's policy is exactly what was proposed
        (["192.0.2.0/24"], ["192.0.2.0/24"], ["192.0.2.0/24"]),
        # the responder narrows a wide proposal to its policy
        (["0.0.0.0/0"], ["192.0.2.0/24"], ["192.0.2.0/24"]),
        # the policy is wider than the proposal: the proposal stands
        (["192.0.2.0/26"], ["192.0.2.0/24"], ["192.0.2.0/26"]),
        # triggering packet first, then the range: both narrowed, order kept
        (
            ["198.51.100.43", "198.51.100.0/24"],
            ["198.51.100.0/25"],
            ["198.51.100.43/32", "198.51.100.0/25"],
        ),
        # the range intersects two configured subnets
        (["10.0.0.0/8"], ["10.1.0.0/16", "10.2.0.0/16"], ["10.1.0.0/16", "10.2.0.0/16"]),
        # protocol and port narrowing
        (["10.0.0.0/24"], ["10.0.0.0/24[tcp/80]"], ["10.0.0.0/24[tcp/80]"]),
        # duplicates collapse
        (["10.0.0.0/24", "10.0.0.0/24"], ["10.0.0.0/24"], ["10.0.0.0/24"]),
        (["10.0.0.0/24", "10.0.0.0/16"], ["10.0.0.0/24"], ["10.0.0.0/24"]),
        # nothing in common: TS_UNACCEPTABLE
        (["192.0.2.0/24"], ["198.51.100.0/24"], []),
        (["192.0.2.0/24[udp]"], ["192.0.2.0/24[tcp]"], []),
        (["2001:db8::/32"], ["192.0.2.0/24"], []),
        ([], ["192.0.2.0/24"], []),
    ],
)
def test_narrow(proposed: list[str], configured: list[str], expected: list[str]) -> None:
    result = narrow([S(t) for t in proposed], [S(t) for t in configured])
    assert result == tuple(S(t) for t in expected)


_addr4 = st.integers(0, 2**32 - 1).map(IPv4Address)


@st.composite
def selectors4(draw: st.DrawFn) -> Selector:
    a, b = sorted((draw(_addr4), draw(_addr4)))
    proto = draw(st.sampled_from([0, 6, 17]))
    if draw(st.booleans()):
        return Selector(a, b, proto, 65535, 0)
    p, q = sorted((draw(st.integers(0, 65535)), draw(st.integers(0, 65535))))
    return Selector(a, b, proto, p, q)


@given(selectors4(), selectors4())
def test_intersection_is_contained_in_both(a: Selector, b: Selector) -> None:
    common = a.intersect(b)
    assert common == b.intersect(a)
    if common is not None:
        assert a.contains(common)
        assert b.contains(common)
    assert a.contains(a)
    assert a.intersect(a) == a


@given(selectors4())
def test_wire_round_trip_property(sel: Selector) -> None:
    assert Selector.from_wire(sel.to_wire()) == sel
    assert S(str(sel)) == sel
