"""Distinguished names in strongSwan's text syntax: parsing, printing, DER, and matching with
``*`` wildcards per RDN value (strongSwan's default compare_dn)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from petrel.crypto.dn import IA5_STRING, PRINTABLE_STRING, UTF8_STRING, DistinguishedName, DnError
from petrel.crypto.pki_ops import to_name

MOON = "C=CH, O=strongSwan, CN=moon.strongswan.org"


def test_parse_print_and_der_round_trip() -> None:
    dn = DistinguishedName.parse(MOON)
    assert [r.key for r in dn.rdns] == ["C", "O", "CN"]
    assert str(dn) == MOON
    assert DistinguishedName.from_der(dn.der) == dn
    # The library's Name built from the same text (pki_ops) encodes to the same DER, and
    # reads as the same RDNs in the order written (RFC 4514 prints them reversed).
    name = to_name(MOON)
    assert name.public_bytes() == dn.der
    assert name.rfc4514_string() == "CN=moon.strongswan.org,O=strongSwan,C=CH"


def test_string_types_follow_strongswan() -> None:
    dn = DistinguishedName.parse("C=CH, CN=Zürich, E=moon@strongswan.org, OU=a_b")
    assert [r.tag for r in dn.rdns] == [PRINTABLE_STRING, UTF8_STRING, IA5_STRING, UTF8_STRING]
    assert str(dn) == "C=CH, CN=Zürich, E=moon@strongswan.org, OU=a_b"


def test_slash_syntax_aliases_and_spacing() -> None:
    a = DistinguishedName.parse("/C=CH/O=strongSwan/CN=moon.strongswan.org")
    b = DistinguishedName.parse("c=CH,o = strongSwan ,  cn=moon.strongswan.org  ")
    assert a == b == DistinguishedName.parse(MOON)
    email = DistinguishedName.parse("emailAddress=x@y, Email=x@y, E=x@y")
    assert str(email) == "E=x@y, E=x@y, E=x@y"
    assert str(DistinguishedName.parse("DC=org, DC=example, UID=alice")) == (
        "DC=org, DC=example, UID=alice"
    )


@pytest.mark.parametrize("text", ["", "CN", "XX=1, CN=a", "C=CH, foo", ", ,"])
def test_bad_text_is_a_dn_error(text: str) -> None:
    with pytest.raises(DnError):
        DistinguishedName.parse(text)


@pytest.mark.parametrize(
    ("pattern", "wildcards"),
    [
        (MOON, 0),
        ("c=ch, o=STRONGSWAN, cn=MOON.strongswan.org", 0),  # PrintableString: any case
        ("C=CH, O=strongSwan, CN=*", 1),
        ("C=*, O=*, CN=*", 3),
    ],
)
def test_matching(pattern: str, wildcards: int) -> None:
    dn = DistinguishedName.parse(MOON)
    assert dn.match(DistinguishedName.parse(pattern)) == wildcards


@pytest.mark.parametrize(
    "pattern",
    [
        "O=strongSwan, C=CH, CN=moon.strongswan.org",  # order matters
        "C=CH, O=strongSwan",  # fewer RDNs
        "C=CH, O=strongSwan, CN=moon.strongswan.org, OU=x",  # more RDNs
        "C=CH, O=strongSwan, CN=sun.strongswan.org",
        "C=CH, O=strongSwan, OU=*",  # wildcard of another type
    ],
)
def test_non_matching(pattern: str) -> None:
    assert DistinguishedName.parse(MOON).match(DistinguishedName.parse(pattern)) is None


def test_utf8_values_compare_exactly() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Moon"),  # UTF8String by default
        ]
    )
    dn = DistinguishedName.from_der(name.public_bytes())
    assert dn.rdns[1].tag == UTF8_STRING
    assert dn.match(DistinguishedName.parse("C=CH, CN=Moon")) == 0
    assert dn.match(DistinguishedName.parse("C=CH, CN=moon")) is None


def test_hostile_der_is_a_dn_error_or_malformed() -> None:
    from petrel.crypto.pki_errors import MalformedInput

    for blob in ("3003310130", "30053103300106", "300a3108300606035504030c", "3100"):
        with pytest.raises(MalformedInput):
            DistinguishedName.from_der(bytes.fromhex(blob))
