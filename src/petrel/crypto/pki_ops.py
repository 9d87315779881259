"""The certificate authority side of ``petrel pki`` (a small strongSwan ``pki`` equivalent).

Key generation, self-signed (CA) certificates, issuing certificates with subjectAltNames,
CA flag and pathLenConstraint, keyUsage, extendedKeyUsage flags and CRL distribution points
(RFC 5280 §4.2), signing CRLs with revoked serials (RFC 5280 §5), and a ``pki --print``-like
description. Names are strongSwan DN text (:mod:`petrel.crypto.dn`, the same parser the
identity matching uses) and are encoded the way strongSwan encodes them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

from cryptography import x509 as _x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from petrel.crypto.dn import DistinguishedName
from petrel.crypto.keys import KeyType, PrivateKey, PublicKey, generate_private_key
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.pki_print import describe
from petrel.crypto.x509 import Certificate, Crl, load_certificate, load_crl
from petrel.wire.registry import HashAlgorithm

__all__ = [
    "FLAGS",
    "REASONS",
    "CertSpec",
    "KeyType",
    "Revoke",
    "default_digest",
    "describe",
    "general_name",
    "generate_private_key",
    "issue",
    "pem",
    "self_signed",
    "sign_crl",
    "to_name",
]

FLAGS: dict[str, ObjectIdentifier | None] = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "ocspSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "ikeIntermediate": ObjectIdentifier("1.3.6.1.5.5.8.2.2"),
    "ipsecIKE": ObjectIdentifier("1.3.6.1.5.5.7.3.17"),
    "msSmartcardLogon": ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
    "crlSign": None,  # keyUsage cRLSign, not an extended key usage
}
REASONS = {
    "key-compromise": _x509.ReasonFlags.key_compromise,
    "ca-compromise": _x509.ReasonFlags.ca_compromise,
    "affiliation-changed": _x509.ReasonFlags.affiliation_changed,
    "superseded": _x509.ReasonFlags.superseded,
    "cessation-of-operation": _x509.ReasonFlags.cessation_of_operation,
    "certificate-hold": _x509.ReasonFlags.certificate_hold,
}
_DIGESTS = {
    HashAlgorithm.SHA1: hashes.SHA1,
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}
_DEFAULT_LIFETIME = timedelta(days=1095)  # pki --issue's default


@dataclass(frozen=True, slots=True)
class Revoke:
    """A CRL entry to write: serial, revocation date (default: this update), reason name."""

    serial: int
    date: datetime | None = None
    reason: str | None = None


def to_name(dn: str | DistinguishedName) -> _x509.Name:
    """A library Name from strongSwan DN text, one RDN per attribute, types as strongSwan."""
    parsed = DistinguishedName.parse(dn) if isinstance(dn, str) else dn
    try:
        return _x509.Name(
            [
                _x509.RelativeDistinguishedName(
                    [_x509.NameAttribute(ObjectIdentifier(r.oid), r.value, _ASN1Type(r.tag))]
                )
                for r in parsed.rdns
            ]
        )
    except ValueError as exc:
        raise CredentialError(f"invalid distinguished name {str(parsed)!r}: {exc}") from None


def general_name(text: str) -> _x509.GeneralName:
    """A subjectAltName from ``pki --san`` text: an IP address, ``user@host`` (email), a
    URI (``scheme://…``), a DN (``C=…, CN=…``), else a DNS name. Prefixes ``dns:``,
    ``email:``, ``ip:``, ``uri:`` force the type."""
    kind, _, rest = text.partition(":")
    forced = {"dns": "dns", "fqdn": "dns", "email": "email", "rfc822": "email", "ip": "ip"}
    if kind.lower() in forced and rest and "//" not in rest:
        kind, text = forced[kind.lower()], rest
    elif kind.lower() == "uri" and rest:
        return _x509.UniformResourceIdentifier(rest)
    else:
        kind = ""
    try:
        if kind == "ip" or (not kind and _is_ip(text)):
            return _x509.IPAddress(ip_address(text))
        if kind == "email" or (not kind and "@" in text):
            return _x509.RFC822Name(text)
        if not kind and "://" in text:
            return _x509.UniformResourceIdentifier(text)
        if not kind and "=" in text:
            return _x509.DirectoryName(to_name(text))
        return _x509.DNSName(text)
    except ValueError as exc:
        raise CredentialError(f"invalid subjectAltName {text!r}: {exc}") from None


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def default_digest(key: PrivateKey | PublicKey) -> HashAlgorithm:
    """``pki``'s key-specific default: SHA-256, or by ECDSA curve SHA-384 / SHA-512."""
    if key.key_type is KeyType.ECDSA:
        return {256: HashAlgorithm.SHA2_256, 384: HashAlgorithm.SHA2_384}.get(
            key.bits, HashAlgorithm.SHA2_512
        )
    return HashAlgorithm.SHA2_256


def _sign_args(
    key: PrivateKey, digest: HashAlgorithm | None, pss: bool
) -> tuple[hashes.HashAlgorithm | None, padding.AsymmetricPadding | None]:
    if key.key_type in (KeyType.ED25519, KeyType.ED448):
        return None, None
    algorithm = _DIGESTS[digest or default_digest(key)]()
    if pss and key.key_type is KeyType.RSA:
        return algorithm, padding.PSS(padding.MGF1(algorithm), padding.PSS.DIGEST_LENGTH)
    return algorithm, None


def _lifetime(
    now: datetime | None, not_before: datetime | None, not_after: datetime | None, days: int | None
) -> tuple[datetime, datetime]:
    start = not_before or (now or datetime.now(UTC)).replace(microsecond=0)
    end = not_after or start + (timedelta(days=days) if days else _DEFAULT_LIFETIME)
    if end <= start:
        raise CredentialError("certificate would end before it starts")
    return start, end


@dataclass(frozen=True, slots=True)
class CertSpec:
    """What to put in a certificate besides subject and key.

    ``sans``: ``pki --san`` texts; ``ca``/``path_len``: basicConstraints; ``flags``:
    serverAuth, clientAuth, ocspSigning, ikeIntermediate, ipsecIKE, msSmartcardLogon
    (extendedKeyUsage) or crlSign (keyUsage); ``crl_uris``: CRL distribution points;
    ``key_usage``: keyUsage names replacing the default (CA: keyCertSign, cRLSign; others:
    none); ``critical``: OIDs of opaque critical extensions (for tests); validity from
    ``not_before`` (default ``now``, default the clock) for ``lifetime_days`` (default 1095)
    or until ``not_after``; ``digest`` (default by key) and ``pss`` for RSA signatures.
    """

    sans: tuple[str, ...] = ()
    ca: bool = False
    path_len: int | None = None
    flags: tuple[str, ...] = ()
    crl_uris: tuple[str, ...] = ()
    key_usage: frozenset[str] | None = None
    critical: tuple[str, ...] = ()
    serial: int | None = None
    now: datetime | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    lifetime_days: int | None = None
    digest: HashAlgorithm | None = None
    pss: bool = False


def _build(
    subject: PublicKey,
    dn: str | DistinguishedName,
    issuer_name: _x509.Name,
    issuer_public: PublicKey,
    signer: PrivateKey,
    spec: CertSpec,
) -> Certificate:
    flags = spec.flags
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise CredentialError(f"unknown certificate flag {unknown[0]!r}")
    start, end = _lifetime(spec.now, spec.not_before, spec.not_after, spec.lifetime_days)
    builder = (
        _x509.CertificateBuilder()
        .subject_name(to_name(dn))
        .issuer_name(issuer_name)
        .public_key(subject._key)
        .serial_number(spec.serial or secrets.randbits(63) | 1 << 62)
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if spec.ca:
        ca = _x509.BasicConstraints(True, spec.path_len)
        builder = builder.add_extension(ca, critical=True)
    usage = (
        set(spec.key_usage)
        if spec.key_usage is not None
        else _default_usage(spec.ca, "crlSign" in flags)
    )
    if usage:
        builder = builder.add_extension(_key_usage(usage), critical=True)
    builder = builder.add_extension(_x509.SubjectKeyIdentifier(subject.pubkey_sha1), critical=False)
    if issuer_public.spki != subject.spki:
        aki = _x509.AuthorityKeyIdentifier(issuer_public.pubkey_sha1, None, None)
        builder = builder.add_extension(aki, critical=False)
    names = [general_name(s) for s in spec.sans]
    if names:
        builder = builder.add_extension(_x509.SubjectAlternativeName(names), critical=False)
    ekus = [oid for f in flags if (oid := FLAGS[f]) is not None]
    if ekus:
        builder = builder.add_extension(_x509.ExtendedKeyUsage(ekus), critical=False)
    uris = [_x509.UniformResourceIdentifier(u) for u in spec.crl_uris]
    if uris:
        point = _x509.DistributionPoint(uris, None, None, None)
        builder = builder.add_extension(_x509.CRLDistributionPoints([point]), critical=False)
    for oid in spec.critical:  # for tests: an extension nobody understands, marked critical
        ext = _x509.UnrecognizedExtension(ObjectIdentifier(oid), b"\x05\x00")
        builder = builder.add_extension(ext, critical=True)
    algorithm, rsa_padding = _sign_args(signer, spec.digest, spec.pss)
    try:
        cert = builder.sign(signer._key, algorithm, rsa_padding=rsa_padding)
    except (ValueError, TypeError) as exc:
        raise CredentialError(f"cannot sign certificate: {exc}") from None
    return load_certificate(cert.public_bytes(Encoding.DER))


def _default_usage(ca: bool, crl_sign: bool) -> set[str]:
    if ca:
        return {"keyCertSign", "cRLSign"}
    return {"digitalSignature", "cRLSign"} if crl_sign else set()


def _key_usage(names: set[str]) -> _x509.KeyUsage:
    known = {
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
    }
    if names - known:
        raise CredentialError(f"unknown keyUsage {sorted(names - known)[0]!r}")
    return _x509.KeyUsage(
        "digitalSignature" in names,
        "nonRepudiation" in names,
        "keyEncipherment" in names,
        "dataEncipherment" in names,
        "keyAgreement" in names,
        "keyCertSign" in names,
        "cRLSign" in names,
        False,
        False,
    )


def self_signed(
    key: PrivateKey, dn: str | DistinguishedName, spec: CertSpec | None = None
) -> Certificate:
    """A self-signed certificate (``pki --self``); ``CertSpec(ca=True)`` for a root CA."""
    return _build(key.public, dn, to_name(dn), key.public, key, spec or CertSpec())


def issue(
    public: PublicKey,
    dn: str | DistinguishedName,
    ca_cert: Certificate,
    ca_key: PrivateKey,
    spec: CertSpec | None = None,
) -> Certificate:
    """A certificate for ``public`` signed by ``ca_key`` (``pki --issue``)."""
    if ca_key.public.spki != ca_cert.public_key.spki:
        raise CredentialError("the CA key does not belong to the CA certificate")
    issuer = _x509.load_der_x509_certificate(ca_cert.der).subject
    return _build(public, dn, issuer, ca_cert.public_key, ca_key, spec or CertSpec())


def sign_crl(
    ca_cert: Certificate,
    ca_key: PrivateKey,
    revoked: Sequence[Revoke] = (),
    *,
    now: datetime | None = None,
    lifetime_days: int = 15,
    next_update: datetime | None = None,
    number: int | None = None,
    digest: HashAlgorithm | None = None,
    pss: bool = False,
) -> Crl:
    """A CRL listing ``revoked`` (``pki --signcrl``), valid ``lifetime_days`` from ``now``."""
    if ca_key.public.spki != ca_cert.public_key.spki:
        raise CredentialError("the CA key does not belong to the CA certificate")
    this_update = (now or datetime.now(UTC)).replace(microsecond=0)
    builder = (
        _x509.CertificateRevocationListBuilder()
        .issuer_name(_x509.load_der_x509_certificate(ca_cert.der).subject)
        .last_update(this_update)
        .next_update(next_update or this_update + timedelta(days=lifetime_days))
        .add_extension(_x509.CRLNumber(number or int(this_update.timestamp())), critical=False)
        .add_extension(
            _x509.AuthorityKeyIdentifier(ca_cert.public_key.pubkey_sha1, None, None),
            critical=False,
        )
    )
    for item in revoked:
        entry = (
            _x509.RevokedCertificateBuilder()
            .serial_number(item.serial)
            .revocation_date(item.date or this_update)
        )
        if item.reason is not None:
            flag = REASONS.get(item.reason)
            if flag is None:
                raise CredentialError(f"unknown revocation reason {item.reason!r}")
            entry = entry.add_extension(_x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    algorithm, rsa_padding = _sign_args(ca_key, digest, pss)
    try:
        crl = builder.sign(ca_key._key, algorithm, rsa_padding=rsa_padding)
    except (ValueError, TypeError) as exc:
        raise CredentialError(f"cannot sign CRL: {exc}") from None
    return load_crl(crl.public_bytes(Encoding.DER))


def pem(item: Certificate | Crl) -> bytes:
    """PEM text of a certificate or CRL."""
    if isinstance(item, Certificate):
        return item.pem()
    return _x509.load_der_x509_crl(item.der).public_bytes(Encoding.PEM)
