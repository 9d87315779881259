"""Identities beyond :mod:`petrel.policy.identity`: distinguished names, strongSwan's match
levels, and matching identities against certificates.

- :func:`parse_identity` reads strongSwan identity text like ``Identity.parse`` and also
  distinguished names (``C=CH, O=strongSwan, CN=moon``, ``asn1dn:#<hex DER>``) as
  ID_DER_ASN1_DN (RFC 7296 §3.5).
- :func:`id_match` is strongSwan's ``matches``: how well a concrete identity fits a
  configured one that may hold wildcards (``%any``; ``*.example.org`` and ``*@example.org``
  by suffix, case-insensitively; ``CN=*`` per DN RDN).
- :func:`cert_match` is strongSwan's ``has_subject``: the best match of an identity against a
  certificate's subject DN and subjectAltNames (dNSName, rfc822Name, iPAddress,
  directoryName), or for KEY_ID its key identifiers.
"""

from __future__ import annotations

import hashlib

from petrel.crypto.dn import DistinguishedName, DnError
from petrel.crypto.pki_errors import MalformedInput
from petrel.crypto.x509 import Certificate, GeneralName
from petrel.policy.identity import Identity
from petrel.wire.registry import IdType

__all__ = [
    "MATCH_ANY",
    "MATCH_MAX_WILDCARDS",
    "MATCH_NONE",
    "MATCH_ONE_WILDCARD",
    "MATCH_PERFECT",
    "cert_identities",
    "cert_match",
    "format_identity",
    "id_match",
    "parse_identity",
]

# strongSwan's id_match_t: higher is better; wildcards lower a DN match one step each.
MATCH_NONE = 0
MATCH_ANY = 1
MATCH_MAX_WILDCARDS = 2
MATCH_ONE_WILDCARD = 19
MATCH_PERFECT = 20

_STRING_TYPES = (IdType.FQDN, IdType.RFC822_ADDR)


def parse_identity(text: str) -> Identity:
    """Identity text as strongSwan reads it, distinguished names included."""
    stripped = text.strip()
    if stripped.lower().startswith("asn1dn:"):
        value = stripped[len("asn1dn:") :]
        if value.startswith("#"):
            try:
                der = bytes.fromhex(value[1:])
                DistinguishedName.from_der(der)
            except (ValueError, MalformedInput):
                raise ValueError(f"invalid DER distinguished name {value!r}") from None
            return Identity(IdType.DER_ASN1_DN, der)
        return Identity(IdType.DER_ASN1_DN, _dn_der(value))
    if "=" in stripped and not _has_type_prefix(stripped):
        return Identity(IdType.DER_ASN1_DN, _dn_der(stripped))
    return Identity.parse(stripped)


def _has_type_prefix(text: str) -> bool:
    head = text.split(":", 1)[0].lower()
    return ":" in text and head in ("fqdn", "dns", "email", "rfc822", "userfqdn", "keyid")


def _dn_der(text: str) -> bytes:
    try:
        return DistinguishedName.parse(text).der
    except DnError as exc:
        raise ValueError(str(exc)) from None


def format_identity(identity: Identity) -> str:
    """Text of an identity; distinguished names in strongSwan's DN syntax."""
    if identity.id_type == IdType.NULL:
        return "%null"  # RFC 7619 ID_NULL
    if identity.id_type == IdType.DER_ASN1_DN:
        try:
            return str(DistinguishedName.from_der(identity.data))
        except MalformedInput:
            return "(invalid ID_DER_ASN1_DN)"
    return str(identity)


def _string_match(have: bytes, pattern: bytes) -> int:
    if have.lower() == pattern.lower():
        return MATCH_PERFECT
    if pattern == b"*":
        return MATCH_ANY
    if pattern.startswith(b"*") and have.lower().endswith(pattern[1:].lower()):
        return MATCH_ONE_WILDCARD
    return MATCH_NONE


def _dn_match(have: bytes, pattern: bytes) -> int:
    if have == pattern:
        return MATCH_PERFECT
    try:
        used = DistinguishedName.from_der(have).match(DistinguishedName.from_der(pattern))
    except MalformedInput:
        return MATCH_NONE
    if used is None:
        return MATCH_NONE
    return MATCH_PERFECT - min(used, MATCH_ONE_WILDCARD - MATCH_MAX_WILDCARDS)


def id_match(have: Identity, pattern: Identity) -> int:
    """How well ``have`` (a peer's or our concrete identity) fits ``pattern``; 0 = not."""
    if pattern.is_any:
        return MATCH_ANY
    if have.id_type != pattern.id_type:
        return MATCH_NONE
    if have.id_type in _STRING_TYPES:
        return _string_match(have.data, pattern.data)
    if have.id_type == IdType.DER_ASN1_DN:
        return _dn_match(have.data, pattern.data)
    return MATCH_PERFECT if have.data == pattern.data else MATCH_NONE


def _from_general_name(name: GeneralName) -> Identity | None:
    if name.kind == "dns":
        return Identity(IdType.FQDN, name.value)
    if name.kind == "email":
        return Identity(IdType.RFC822_ADDR, name.value)
    if name.kind == "ip":
        return Identity(IdType.IPV4_ADDR if len(name.value) == 4 else IdType.IPV6_ADDR, name.value)
    if name.kind == "dn":
        return Identity(IdType.DER_ASN1_DN, name.value)
    return None


def cert_identities(cert: Certificate) -> list[Identity]:
    """The identities a certificate confirms: its subject DN, then its subjectAltNames."""
    out = [Identity(IdType.DER_ASN1_DN, cert.subject_der)]
    out += [i for n in cert.alt_names if (i := _from_general_name(n)) is not None]
    return out


def _key_ids(cert: Certificate) -> tuple[bytes, ...]:
    serial = cert.serial.to_bytes(max(1, (cert.serial.bit_length() + 8) // 8), "big")
    ids = [
        hashlib.sha1(cert.der).digest(),
        cert.public_key.spki_sha1,
        cert.public_key.pubkey_sha1,
        serial,
    ]
    if cert.subject_key_id:
        ids.append(cert.subject_key_id)
    return tuple(ids)


def cert_match(cert: Certificate, identity: Identity) -> int:
    """How well ``identity`` (possibly with wildcards) fits the certificate; 0 = not."""
    if identity.id_type == IdType.KEY_ID and identity.data in _key_ids(cert):
        return MATCH_PERFECT
    return max((id_match(have, identity) for have in cert_identities(cert)), default=MATCH_NONE)
