"""Identity text with distinguished names, strongSwan's match levels, and which identities a
certificate confirms (subject DN, dNSName, rfc822Name, iPAddress, key IDs)."""

from __future__ import annotations

import pytest
from cred_helpers import leaf, root

from petrel.credentials.identities import (
    MATCH_ANY,
    MATCH_NONE,
    MATCH_ONE_WILDCARD,
    MATCH_PERFECT,
    cert_identities,
    cert_match,
    format_identity,
    id_match,
    parse_identity,
)
from petrel.crypto.dn import DistinguishedName
from petrel.crypto.pki_ops import CertSpec
from petrel.crypto.x509 import Certificate
from petrel.policy.identity import Identity
from petrel.wire.registry import IdType

MOON_DN = "C=CH, O=strongSwan, CN=moon.strongswan.org"


def test_parse_distinguished_names() -> None:
    ident = parse_identity(MOON_DN)
    assert ident.id_type == IdType.DER_ASN1_DN
    assert ident.data == DistinguishedName.parse(MOON_DN).der
    assert format_identity(ident) == MOON_DN
    assert parse_identity("asn1dn:" + MOON_DN) == ident
    assert parse_identity("asn1dn:#" + ident.data.hex()) == ident
    assert parse_identity("/C=CH/O=strongSwan/CN=moon.strongswan.org") == ident


@pytest.mark.parametrize(
    ("text", "id_type"),
    [
        ("moon.strongswan.org", IdType.FQDN),
        ("@moon", IdType.FQDN),
        ("carol@strongswan.org", IdType.RFC822_ADDR),
        ("192.0.2.1", IdType.IPV4_ADDR),
        ("2001:db8::1", IdType.IPV6_ADDR),
        ("keyid:#0102", IdType.KEY_ID),
        ("%any", 0),
    ],
)
def test_other_identities_parse_as_before(text: str, id_type: int) -> None:
    assert parse_identity(text) == Identity.parse(text)
    assert parse_identity(text).id_type == id_type


@pytest.mark.parametrize("text", ["XX=1, CN=a", "asn1dn:#3003", "asn1dn:#zz"])
def test_bad_distinguished_names(text: str) -> None:
    with pytest.raises(ValueError):
        parse_identity(text)


@pytest.mark.parametrize(
    ("have", "pattern", "level"),
    [
        ("moon.strongswan.org", "moon.strongswan.org", MATCH_PERFECT),
        ("Moon.StrongSwan.org", "moon.strongswan.org", MATCH_PERFECT),
        ("moon.strongswan.org", "*.strongswan.org", MATCH_ONE_WILDCARD),
        ("moon.strongswan.org", "*", MATCH_NONE),  # '*' alone is %any, not an FQDN
        ("moon.strongswan.org", "fqdn:*", MATCH_ANY),
        ("moon.strongswan.org", "%any", MATCH_ANY),
        ("moon.strongswan.org", "sun.strongswan.org", MATCH_NONE),
        ("moon.strongswan.org", "*.example.org", MATCH_NONE),
        ("carol@strongswan.org", "*@strongswan.org", MATCH_ONE_WILDCARD),
        ("carol@strongswan.org", "dave@strongswan.org", MATCH_NONE),
        ("192.0.2.1", "192.0.2.1", MATCH_PERFECT),
        ("192.0.2.1", "192.0.2.2", MATCH_NONE),
        ("192.0.2.1", "moon.strongswan.org", MATCH_NONE),
        (MOON_DN, MOON_DN, MATCH_PERFECT),
        (MOON_DN, "c=ch, o=STRONGSWAN, cn=Moon.strongswan.org", MATCH_PERFECT),
        (MOON_DN, "C=CH, O=strongSwan, CN=*", MATCH_ONE_WILDCARD),
        (MOON_DN, "C=*, O=*, CN=*", MATCH_ONE_WILDCARD - 2),
        (MOON_DN, "C=CH, CN=*", MATCH_NONE),
        (MOON_DN, "O=strongSwan, C=CH, CN=moon.strongswan.org", MATCH_NONE),
        (MOON_DN, "moon.strongswan.org", MATCH_NONE),
    ],
)
def test_id_match_levels(have: str, pattern: str, level: int) -> None:
    pattern_id = Identity.parse("*") if pattern == "*" else parse_identity(pattern)
    if pattern == "*":  # strongSwan reads a lone '*' as %any as well
        assert pattern_id.is_any
        level = MATCH_ANY
    assert id_match(parse_identity(have), pattern_id) == level


@pytest.fixture(scope="module")
def moon() -> Certificate:
    ca = root()
    spec = CertSpec(sans=("moon.strongswan.org", "moon@strongswan.org", "192.0.2.1", "2001:db8::1"))
    return leaf(ca, dn=MOON_DN, spec=spec).cert


@pytest.mark.parametrize(
    ("identity", "level"),
    [
        ("moon.strongswan.org", MATCH_PERFECT),
        ("*.strongswan.org", MATCH_ONE_WILDCARD),
        ("moon@strongswan.org", MATCH_PERFECT),
        ("*@strongswan.org", MATCH_ONE_WILDCARD),
        ("192.0.2.1", MATCH_PERFECT),
        ("2001:db8::1", MATCH_PERFECT),
        (MOON_DN, MATCH_PERFECT),
        ("C=CH, O=strongSwan, CN=*", MATCH_ONE_WILDCARD),
        ("%any", MATCH_ANY),
        ("sun.strongswan.org", MATCH_NONE),
        ("192.0.2.2", MATCH_NONE),
        ("C=CH, O=strongSwan, CN=sun.strongswan.org", MATCH_NONE),
        ("carol@strongswan.org", MATCH_NONE),
    ],
)
def test_certificate_confirms_identities(moon: Certificate, identity: str, level: int) -> None:
    assert cert_match(moon, parse_identity(identity)) == level


def test_common_name_is_not_an_fqdn() -> None:
    cert = leaf(root(), dn="C=CH, CN=gw.example.org", spec=CertSpec()).cert
    assert cert_match(cert, parse_identity("gw.example.org")) == MATCH_NONE
    assert [i.id_type for i in cert_identities(cert)] == [IdType.DER_ASN1_DN]


def test_key_id_identities(moon: Certificate) -> None:
    assert moon.subject_key_id is not None
    for keyid in (moon.keyid, moon.public_key.pubkey_sha1, moon.subject_key_id):
        assert cert_match(moon, Identity(IdType.KEY_ID, keyid)) == MATCH_PERFECT
    assert cert_match(moon, Identity(IdType.KEY_ID, b"\x00" * 20)) == MATCH_NONE
