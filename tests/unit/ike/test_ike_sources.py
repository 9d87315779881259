"""The source an IKE_SA_INIT counts under for the DoS limits (petrel.ike.sources)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrel.ike.sources import SourceKey


def test_ipv4_is_its_address() -> None:
    assert SourceKey()("192.0.2.7") == "192.0.2.7"


def test_ipv6_is_its_64_by_default() -> None:
    key = SourceKey()
    assert key("2001:db8:1:2::7") == key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::7") == "2001:db8:1:3::/64"
    assert key("fe80::1%vR") == "fe80::/64"  # a scoped address: the scope is no part of it


def test_other_prefixes() -> None:
    assert SourceKey(128)("2001:DB8::0001") == "2001:db8::1/128"
    assert SourceKey(48)("2001:db8:1:2::7") == "2001:db8:1::/48"
    for bad in (0, 129, -1):
        with pytest.raises(ValueError):
            SourceKey(bad)


@given(st.integers(0, 2**128 - 1), st.integers(1, 128))
def test_the_key_is_the_network_ipaddress_computes(value: int, bits: int) -> None:
    address = ipaddress.IPv6Address(value)
    network = ipaddress.IPv6Network((value >> (128 - bits) << (128 - bits), bits))
    assert address in network
    assert ipaddress.IPv6Network(SourceKey(bits)(str(address))) == network
