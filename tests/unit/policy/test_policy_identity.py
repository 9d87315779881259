"""Tests for IKE identities in strongSwan text form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrel.policy.identity import ID_ANY, Identity, UnsupportedIdentity
from petrel.wire.registry import IdType


@pytest.mark.parametrize(
    ("text", "id_type", "data", "shown"),
    [
        ("192.0.2.1", IdType.IPV4_ADDR, bytes([192, 0, 2, 1]), "192.0.2.1"),
        (
            "2001:db8::1",
            IdType.IPV6_ADDR,
            bytes.fromhex("20010db8" + "00" * 11 + "01"),
            "2001:db8::1",
        ),
        ("left", IdType.FQDN, b"left", "left"),
        ("vpn.example.org", IdType.FQDN, b"vpn.example.org", "vpn.example.org"),
        ("@vpn.example.org", IdType.FQDN, b"vpn.example.org", "vpn.example.org"),
        ("alice@example.org", IdType.RFC822_ADDR, b"alice@example.org", "alice@example.org"),
        ("@@alice", IdType.RFC822_ADDR, b"alice", "rfc822:alice"),
        ("@#0102ff", IdType.KEY_ID, b"\x01\x02\xff", "@#0102ff"),
        ("ipv4:192.0.2.9", IdType.IPV4_ADDR, bytes([192, 0, 2, 9]), "192.0.2.9"),
        ("ipv6:::1", IdType.IPV6_ADDR, b"\x00" * 15 + b"\x01", "::1"),
        ("rfc822:bob", IdType.RFC822_ADDR, b"bob", "rfc822:bob"),
        ("email:bob@x", IdType.RFC822_ADDR, b"bob@x", "bob@x"),
        ("userfqdn:bob@x", IdType.RFC822_ADDR, b"bob@x", "bob@x"),
        ("fqdn:192.0.2.1", IdType.FQDN, b"192.0.2.1", "fqdn:192.0.2.1"),
        ("dns:host", IdType.FQDN, b"host", "host"),
        ("FQDN:host", IdType.FQDN, b"host", "host"),
        ("keyid:#abcd", IdType.KEY_ID, b"\xab\xcd", "@#abcd"),
        ("keyid:raw", IdType.KEY_ID, b"raw", "@#726177"),
        ("%any", ID_ANY, b"", "%any"),
        ("%any6", ID_ANY, b"", "%any"),
        ("", ID_ANY, b"", "%any"),
        ("0.0.0.0", ID_ANY, b"", "%any"),
        ("host:500", IdType.FQDN, b"host:500", "host:500"),
    ],
)
def test_parse_table(text: str, id_type: int, data: bytes, shown: str) -> None:
    ident = Identity.parse(text)
    assert (ident.id_type, ident.data) == (id_type, data)
    assert str(ident) == shown
    assert Identity.parse(str(ident)) == ident


@pytest.mark.parametrize("text", ["ipv4:nope", "ipv6:1.2.3.4", "@#zz", "keyid:#1", "fqdn:", "@"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Identity.parse(text)


@pytest.mark.parametrize("text", ["C=CH, O=strongSwan, CN=moon", "asn1dn:#3000", "asn1gn:#00"])
def test_parse_unsupported(text: str) -> None:
    with pytest.raises(UnsupportedIdentity):
        Identity.parse(text)


def test_matches() -> None:
    left = Identity.parse("left")
    assert Identity.any().matches(left)
    assert Identity.any().matches(None)
    assert left.matches(Identity.parse("left"))
    assert not left.matches(Identity.parse("right"))
    assert not left.matches(Identity.parse("rfc822:left"))
    assert not left.matches(None)
    assert Identity.parse("*.example.org").matches(Identity.parse("vpn.example.org"))
    assert not Identity.parse("*.example.org").matches(Identity.parse("example.com"))
    assert Identity.parse("*@example.org").matches(Identity.parse("carol@example.org"))


def test_str_of_wire_values() -> None:
    assert str(Identity(IdType.FQDN, b"\xff")) == "\\xff"
    assert str(Identity(IdType.IPV4_ADDR, b"\x01")) == "1:#01"
    assert str(Identity(99, b"\x01")) == "99:#01"


@given(st.text(max_size=40))
def test_parse_never_raises_other_errors(text: str) -> None:
    try:
        ident = Identity.parse(text)
    except ValueError:
        return
    assert Identity.parse(str(ident)) == ident
