"""Virtual IP pools: parsing and leases by identity (petrel.policy.pools)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrel.policy.pools import AddressPool, PoolConfig

ip = ipaddress.ip_address


def test_a_cidr_pool_leaves_out_network_and_broadcast() -> None:
    cfg = PoolConfig.parse("p", "198.51.100.128/29", ("192.0.2.53",))
    assert (cfg.first, cfg.last, cfg.size, cfg.family) == (
        ip("198.51.100.129"),
        ip("198.51.100.134"),
        6,
        4,
    )
    assert cfg.dns == (ip("192.0.2.53"),)


def test_ranges_single_addresses_and_ipv6() -> None:
    assert PoolConfig.parse("p", "198.51.100.10-198.51.100.12").size == 3
    assert PoolConfig.parse("p", "198.51.100.10").size == 1
    v6 = PoolConfig.parse("p", "2001:db8:5::/126")
    assert (v6.first, v6.size, v6.family) == (ip("2001:db8:5::"), 4, 6)
    for bad in ("198.51.100.12-198.51.100.10", "198.51.100.1-2001:db8::1", "nonsense"):
        with pytest.raises(ValueError):
            PoolConfig.parse("p", bad)


def test_an_identity_gets_its_address_back() -> None:
    pool = AddressPool(PoolConfig.parse("p", "198.51.100.10-198.51.100.11"))
    a = pool.acquire("alice")
    assert pool.acquire("alice") == a  # a second IKE SA of hers (reauthentication)
    b = pool.acquire("bob")
    assert a != b and pool.acquire("carol") is None  # both addresses online
    pool.release("alice", a)  # type: ignore[arg-type]
    assert pool.acquire("carol") is None  # alice still holds it once
    pool.release("alice", a)  # type: ignore[arg-type]
    assert pool.acquire("alice") == a  # offline, kept for her
    pool.release("alice", a)  # type: ignore[arg-type]
    assert pool.acquire("carol") == a  # nothing unused left: the oldest offline lease


def test_release_of_an_address_not_held_is_ignored() -> None:
    pool = AddressPool(PoolConfig.parse("p", "198.51.100.10-198.51.100.11"))
    a = pool.acquire("alice")
    pool.release("alice", ip("198.51.100.99"))
    pool.release("mallory", a)  # type: ignore[arg-type]
    assert pool.acquire("bob") != a


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.booleans()), max_size=60))
def test_leases_never_collide_and_stay_inside_the_pool(steps: list[tuple[str, bool]]) -> None:
    pool = AddressPool(PoolConfig.parse("p", "198.51.100.10-198.51.100.13"))
    held: dict[str, list[ipaddress.IPv4Address | ipaddress.IPv6Address]] = {}
    for owner, take in steps:
        if take or not held.get(owner):
            address = pool.acquire(owner)
            if address is not None:
                assert pool.owns(address)
                others = {a for o, addrs in held.items() if o != owner for a in addrs}
                assert address not in others
                held.setdefault(owner, []).append(address)
        else:
            pool.release(owner, held[owner].pop())
    assert len(pool.online) + len(pool.offline) <= pool.config.size
