"""Distinguished names (RFC 5280 §4.1.2.4) in strongSwan's text syntax, and DN matching.

Text: ``C=CH, O=strongSwan, CN=moon.strongswan.org`` - RDNs separated by ``,`` (or by ``/``
when the text starts with ``/``), written in the order they are encoded, one attribute each.
Keys are strongSwan's (``C ST L O OU CN E``, ``DC``, ``UID``, ``serialNumber`` …),
case-insensitive. Values are PrintableString when they fit its alphabet, else UTF8String;
``E``/``Email`` are IA5String (as strongSwan's ``atodn``). Pure Python: no library needed.

Matching (strongSwan's default ``compare_dn``): same number of RDNs with the same types in
the same order; values equal (case-insensitive when both are PrintableString, or for e-mail
RDNs), or the pattern value is ``*``, which matches any value of that RDN.
"""

from __future__ import annotations

from dataclasses import dataclass

from petrel.crypto import der
from petrel.crypto.pki_errors import MalformedInput

__all__ = ["DistinguishedName", "DnError", "Rdn"]

PRINTABLE_STRING = 0x13
UTF8_STRING = 0x0C
IA5_STRING = 0x16
_TELETEX, _BMP, _UNIVERSAL, _VISIBLE, _NUMERIC = 0x14, 0x1E, 0x1C, 0x1A, 0x12
_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
_EMAIL = "1.2.840.113549.1.9.1"
_MAX_RDNS = 32

# Text keys strongSwan reads (identification.c x501rdns) -> OID; the first key of an OID is
# the one printed (strongSwan's oid.txt names).
_KEYS: dict[str, str] = {
    "CN": "2.5.4.3",
    "C": "2.5.4.6",
    "L": "2.5.4.7",
    "ST": "2.5.4.8",
    "STREET": "2.5.4.9",
    "O": "2.5.4.10",
    "OU": "2.5.4.11",
    "T": "2.5.4.12",
    "D": "2.5.4.13",
    "SN": "2.5.4.4",
    "serialNumber": "2.5.4.5",
    "postalCode": "2.5.4.17",
    "N": "2.5.4.41",
    "G": "2.5.4.42",
    "I": "2.5.4.43",
    "dnQualifier": "2.5.4.46",
    "dmdName": "2.5.4.54",
    "pseudonym": "2.5.4.65",
    "organizationIdentifier": "2.5.4.97",
    "UID": "0.9.2342.19200300.100.1.1",
    "DC": "0.9.2342.19200300.100.1.25",
    "E": _EMAIL,
    "Email": _EMAIL,
    "emailAddress": _EMAIL,
    "unstructuredName": "1.2.840.113549.1.9.2",
    "UN": "1.2.840.113549.1.9.2",
    "unstructuredAddress": "1.2.840.113549.1.9.8",
    "UA": "1.2.840.113549.1.9.8",
    "employeeNumber": "2.16.840.1.113730.3.1.3",
    "EN": "2.16.840.1.113730.3.1.3",
}
_KEYS_LOWER = {k.lower(): oid for k, oid in _KEYS.items()}
_NAMES: dict[str, str] = {}
for _key, _oid in _KEYS.items():
    _NAMES.setdefault(_oid, _key)
_IA5_OIDS = frozenset({_EMAIL, "1.2.840.113549.1.9.2"})


class DnError(MalformedInput):
    """A DN text or encoding that cannot be read."""


@dataclass(frozen=True, slots=True)
class Rdn:
    """One attribute: type OID, value and the ASN.1 string tag it is (or will be) encoded as."""

    oid: str
    value: str
    tag: int = UTF8_STRING

    @property
    def key(self) -> str:
        return _NAMES.get(self.oid, self.oid)

    def encode(self) -> bytes:
        atv = der.encode_oid(self.oid) + der.tlv(self.tag, _encode_value(self.tag, self.value))
        return der.tlv(der.SET, der.tlv(der.SEQUENCE, atv))


def _encode_value(tag: int, value: str) -> bytes:
    if tag == _BMP:
        return value.encode("utf-16-be")
    if tag == _UNIVERSAL:
        return value.encode("utf-32-be")
    if tag == _TELETEX:
        return value.encode("latin-1")
    return value.encode("utf-8")


def _decode_value(tag: int, raw: bytes) -> str:
    try:
        if tag in (PRINTABLE_STRING, IA5_STRING, _VISIBLE, _NUMERIC):
            return raw.decode("ascii")
        if tag == UTF8_STRING:
            return raw.decode("utf-8")
        if tag == _TELETEX:
            return raw.decode("latin-1")
        if tag == _BMP:
            return raw.decode("utf-16-be")
        if tag == _UNIVERSAL:
            return raw.decode("utf-32-be")
    except UnicodeDecodeError:
        raise DnError("DN value is not valid for its string type") from None
    return "#" + raw.hex()


@dataclass(frozen=True, slots=True)
class DistinguishedName:
    """An ordered sequence of RDNs (multi-valued RDNs are flattened in order)."""

    rdns: tuple[Rdn, ...]

    @classmethod
    def parse(cls, text: str) -> DistinguishedName:
        """Read strongSwan DN text; :class:`DnError` names the offending part."""
        body = text.strip()
        sep = ","
        if body.startswith("/"):
            sep, body = "/", body[1:]
        rdns: list[Rdn] = []
        for part in body.split(sep):
            if not part.strip():
                continue
            key, eq, value = part.partition("=")
            key = key.strip()
            if not eq:
                raise DnError(f"RDN {part.strip()!r} has no '='")
            oid = _KEYS_LOWER.get(key.lower())
            if oid is None:
                raise DnError(f"unknown RDN type {key!r} in DN {text!r}")
            value = value.strip()
            if oid in _IA5_OIDS and value.isascii():
                tag = IA5_STRING
            elif all(ch in _PRINTABLE for ch in value):
                tag = PRINTABLE_STRING
            else:
                tag = UTF8_STRING
            rdns.append(Rdn(oid, value, tag))
        if not rdns:
            raise DnError(f"empty distinguished name {text!r}")
        if len(rdns) > _MAX_RDNS:
            raise DnError("distinguished name has too many RDNs")
        return cls(tuple(rdns))

    @classmethod
    def from_der(cls, data: bytes) -> DistinguishedName:
        """Decode a DER Name (SEQUENCE OF SET OF AttributeTypeAndValue)."""
        rdns: list[Rdn] = []
        for rdn_set in der.read_one(data).expect(der.SEQUENCE, "Name").children():
            for atv in rdn_set.expect(der.SET, "RelativeDistinguishedName").children():
                parts = atv.expect(der.SEQUENCE, "AttributeTypeAndValue").children()
                if len(parts) != 2:
                    raise DnError("AttributeTypeAndValue must hold a type and a value")
                oid = der.decode_oid(parts[0].expect(der.OID, "attribute type").value)
                rdns.append(Rdn(oid, _decode_value(parts[1].tag, parts[1].value), parts[1].tag))
                if len(rdns) > _MAX_RDNS:
                    raise DnError("distinguished name has too many RDNs")
        return cls(tuple(rdns))

    @property
    def der(self) -> bytes:
        """DER encoding, one attribute per RDN, in the order given."""
        return der.tlv(der.SEQUENCE, b"".join(r.encode() for r in self.rdns))

    def __str__(self) -> str:
        return ", ".join(f"{r.key}={r.value}" for r in self.rdns)

    @property
    def wildcards(self) -> int:
        return sum(1 for r in self.rdns if r.value == "*")

    def match(self, pattern: DistinguishedName) -> int | None:
        """Wildcards used if ``self`` matches ``pattern`` (strongSwan ``compare_dn``), else None."""
        if len(self.rdns) != len(pattern.rdns):
            return None
        used = 0
        for have, want in zip(self.rdns, pattern.rdns, strict=True):
            if have.oid != want.oid:
                return None
            if want.value == "*":
                used += 1
            elif not _values_equal(have, want):
                return None
        return used

    def equals(self, other: DistinguishedName) -> bool:
        """Equal by the matching rules, without wildcards."""
        return len(self.rdns) == len(other.rdns) and all(
            a.oid == b.oid and _values_equal(a, b)
            for a, b in zip(self.rdns, other.rdns, strict=True)
        )


def _values_equal(a: Rdn, b: Rdn) -> bool:
    fold = (a.tag == b.tag == PRINTABLE_STRING) or (
        a.tag == b.tag == IA5_STRING and a.oid == _EMAIL
    )
    if fold:
        return a.value.lower() == b.value.lower()
    return a.value == b.value


def oid_for_key(key: str) -> str | None:
    """The OID of a DN key such as ``CN`` (case-insensitive), or None."""
    return _KEYS_LOWER.get(key.lower())
