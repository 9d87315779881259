"""X.509 certificates and CRLs (RFC 5280) as small frozen values.

:func:`load_certificate` / :func:`load_crl` take PEM or DER and return a
:class:`Certificate` / :class:`Crl` holding everything path validation, identity matching
and CERTREQ need, already decoded: names, validity, key, signature scheme, the extensions
Petrel acts on, and the OIDs of critical extensions it does not understand. Malformed input
is a :class:`CredentialError`, never a library exception.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from cryptography import x509 as _x509
from cryptography.exceptions import UnsupportedAlgorithm as _LibUnsupported
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from petrel.crypto import der
from petrel.crypto.dn import DistinguishedName
from petrel.crypto.keys import PublicKey, public_key_from_library
from petrel.crypto.pki_errors import CredentialError, MalformedInput, UnsupportedSignature
from petrel.crypto.sigschemes import SignatureScheme, parse_algorithm_identifier

__all__ = [
    "Certificate",
    "Crl",
    "GeneralName",
    "RevokedEntry",
    "load_certificate",
    "load_certificates",
    "load_crl",
]

# Extensions whose meaning Petrel applies (or which carry no constraint on path validation
# when unprocessed, RFC 5280 §4.2): a critical one of any other kind rejects the certificate.
_HANDLED = frozenset(
    e.dotted_string
    for e in (
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.CERTIFICATE_POLICIES,
    )
)
_KEY_USAGE_BITS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
# What the library raises on hostile DER besides ValueError (checked by fuzzing).
_LIBRARY_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    MalformedInput,
    _LibUnsupported,
    _x509.InvalidVersion,
    _x509.DuplicateExtension,
    _x509.UnsupportedGeneralNameType,
)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)


@dataclass(frozen=True, slots=True)
class GeneralName:
    """A subjectAltName entry: ``dns``, ``email``, ``ip`` (packed), ``dn`` (DER) or ``uri``."""

    kind: str
    value: bytes

    def __str__(self) -> str:
        if self.kind == "ip":
            return str(IPv4Address(self.value) if len(self.value) == 4 else IPv6Address(self.value))
        if self.kind == "dn":
            return str(DistinguishedName.from_der(self.value))
        return self.value.decode("ascii", "backslashreplace")


@dataclass(frozen=True, slots=True)
class Certificate:
    """An X.509 certificate, decoded once."""

    der: bytes
    version: int
    serial: int
    subject: DistinguishedName
    subject_der: bytes
    issuer: DistinguishedName
    issuer_der: bytes
    not_before: datetime
    not_after: datetime
    public_key: PublicKey
    scheme: SignatureScheme | None
    scheme_error: str
    tbs: bytes
    signature: bytes
    is_ca: bool | None
    path_len: int | None
    key_usage: frozenset[str] | None
    ext_key_usage: frozenset[str] | None
    alt_names: tuple[GeneralName, ...]
    subject_key_id: bytes | None
    authority_key_id: bytes | None
    crl_uris: tuple[str, ...]
    unhandled_critical: tuple[str, ...]

    @property
    def subject_str(self) -> str:
        return str(self.subject)

    @property
    def issuer_str(self) -> str:
        return str(self.issuer)

    @property
    def keyid(self) -> bytes:
        """SHA-1 of the SubjectPublicKeyInfo: this CA's key ID in CERTREQ (RFC 7296 §3.7)."""
        return self.public_key.spki_sha1

    @property
    def fingerprint_sha1(self) -> bytes:
        return hashlib.sha1(self.der).digest()

    @property
    def is_self_issued(self) -> bool:
        return self.subject.equals(self.issuer)

    def pem(self) -> bytes:
        return _x509.load_der_x509_certificate(self.der).public_bytes(Encoding.PEM)

    def __repr__(self) -> str:
        return f"Certificate({self.subject_str!r}, serial={self.serial:x})"


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    date: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class Crl:
    """A CRL (RFC 5280 §5): issuer, update times, revoked serials, signature."""

    der: bytes
    issuer: DistinguishedName
    issuer_der: bytes
    this_update: datetime
    next_update: datetime | None
    number: int | None
    is_delta: bool
    authority_key_id: bytes | None
    revoked: tuple[RevokedEntry, ...]
    scheme: SignatureScheme | None
    scheme_error: str
    tbs: bytes
    signature: bytes

    def entry(self, serial: int) -> RevokedEntry | None:
        for item in self.revoked:
            if item.serial == serial:
                return item
        return None

    def __repr__(self) -> str:
        return f"Crl({str(self.issuer)!r}, {len(self.revoked)} revoked)"


def _blocks(data: bytes, labels: tuple[bytes, ...]) -> list[bytes]:
    return [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) in labels]


def _outer_scheme(data: bytes, what: str) -> tuple[SignatureScheme | None, str]:
    """Signature scheme of a signed structure; the inner and outer AlgorithmIdentifier must
    agree (RFC 5280 §4.1.1.2, §5.1.1.2)."""
    tbs, outer, _ = der.read_one(data).expect(der.SEQUENCE, what).children()
    fields = tbs.expect(der.SEQUENCE, what).children()
    fields = [f for f in fields if f.tag != der.context(0)]  # certificate version [0]
    inner = next((f for f in fields if f.tag == der.SEQUENCE), None)
    if inner is None or inner.raw != outer.raw:
        raise CredentialError(f"{what}: signature algorithms do not agree")
    try:
        return parse_algorithm_identifier(outer.raw), ""
    except UnsupportedSignature as exc:
        return None, str(exc)


def _general_name(name: Any) -> GeneralName | None:
    if isinstance(name, _x509.DNSName):
        return GeneralName("dns", name.value.encode("ascii", "replace"))
    if isinstance(name, _x509.RFC822Name):
        return GeneralName("email", name.value.encode("ascii", "replace"))
    if isinstance(name, _x509.IPAddress):
        if isinstance(name.value, IPv4Network | IPv6Network):
            return None
        return GeneralName("ip", name.value.packed)
    if isinstance(name, _x509.DirectoryName):
        return GeneralName("dn", name.value.public_bytes())
    if isinstance(name, _x509.UniformResourceIdentifier):
        return GeneralName("uri", name.value.encode("ascii", "replace"))
    return None


def _extension(exts: _x509.Extensions, cls: type[Any]) -> Any:
    try:
        return exts.get_extension_for_class(cls).value
    except _x509.ExtensionNotFound:
        return None


def _from_library(cert: _x509.Certificate, data: bytes) -> Certificate:
    exts = cert.extensions
    basic = _extension(exts, _x509.BasicConstraints)
    usage = _extension(exts, _x509.KeyUsage)
    eku = _extension(exts, _x509.ExtendedKeyUsage)
    san = _extension(exts, _x509.SubjectAlternativeName)
    ski = _extension(exts, _x509.SubjectKeyIdentifier)
    aki = _extension(exts, _x509.AuthorityKeyIdentifier)
    cdp = _extension(exts, _x509.CRLDistributionPoints)
    uris: list[str] = []
    for point in cdp or ():
        for name in point.full_name or ():
            if isinstance(name, _x509.UniformResourceIdentifier):
                uris.append(name.value)
    names = [_general_name(n) for n in san] if san is not None else []
    scheme, scheme_error = _outer_scheme(data, "certificate")
    return Certificate(
        der=data,
        version=cert.version.value + 1,
        serial=cert.serial_number,
        subject=DistinguishedName.from_der(cert.subject.public_bytes()),
        subject_der=cert.subject.public_bytes(),
        issuer=DistinguishedName.from_der(cert.issuer.public_bytes()),
        issuer_der=cert.issuer.public_bytes(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        public_key=public_key_from_library(cert.public_key()),
        scheme=scheme,
        scheme_error=scheme_error,
        tbs=cert.tbs_certificate_bytes,
        signature=cert.signature,
        is_ca=None if basic is None else basic.ca,
        path_len=None if basic is None else basic.path_length,
        key_usage=None
        if usage is None
        else frozenset(name for attr, name in _KEY_USAGE_BITS if getattr(usage, attr)),
        ext_key_usage=None if eku is None else frozenset(o.dotted_string for o in eku),
        alt_names=tuple(n for n in names if n is not None),
        subject_key_id=None if ski is None else ski.digest,
        authority_key_id=None if aki is None else aki.key_identifier,
        crl_uris=tuple(uris),
        unhandled_critical=tuple(
            e.oid.dotted_string for e in exts if e.critical and e.oid.dotted_string not in _HANDLED
        ),
    )


def load_certificate(data: bytes) -> Certificate:
    """One certificate from PEM (the first CERTIFICATE block) or DER."""
    data = bytes(data)
    if b"-----BEGIN" in data:
        blocks = _blocks(data, (b"CERTIFICATE", b"X509 CERTIFICATE"))
        if not blocks:
            raise CredentialError("no CERTIFICATE block in PEM data")
        return load_certificates(blocks[0])[0]
    try:
        with warnings.catch_warnings():  # hostile input must not reach the log as warnings
            warnings.simplefilter("ignore")
            cert = _x509.load_der_x509_certificate(data)
            return _from_library(cert, cert.public_bytes(Encoding.DER))
    except CredentialError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise CredentialError(f"not a usable X.509 certificate: {exc}") from None


def load_certificates(data: bytes) -> list[Certificate]:
    """Every certificate in PEM data (a bundle), or the one DER certificate."""
    data = bytes(data)
    if b"-----BEGIN" not in data:
        return [load_certificate(data)]
    out: list[Certificate] = []
    for block in _blocks(data, (b"CERTIFICATE", b"X509 CERTIFICATE")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                der_form = _x509.load_pem_x509_certificate(block).public_bytes(Encoding.DER)
        except _LIBRARY_ERRORS as exc:
            raise CredentialError(f"not a usable PEM certificate: {exc}") from None
        out.append(load_certificate(der_form))
    if not out:
        raise CredentialError("no CERTIFICATE block in PEM data")
    return out


def _crl_reason(entry: _x509.RevokedCertificate) -> str | None:
    try:
        reason = entry.extensions.get_extension_for_class(_x509.CRLReason).value.reason
    except _x509.ExtensionNotFound:
        return None
    return str(reason.value)


def load_crl(data: bytes) -> Crl:
    """A CRL from PEM or DER."""
    data = bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _crl_from_library(data)
    except CredentialError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise CredentialError(f"not a usable CRL: {exc}") from None


def _crl_from_library(data: bytes) -> Crl:
    pem_form = b"-----BEGIN" in data
    crl = _x509.load_pem_x509_crl(data) if pem_form else _x509.load_der_x509_crl(data)
    encoded = crl.public_bytes(Encoding.DER)
    exts = crl.extensions
    number = _extension(exts, _x509.CRLNumber)
    aki = _extension(exts, _x509.AuthorityKeyIdentifier)
    scheme, scheme_error = _outer_scheme(encoded, "CRL")
    return Crl(
        der=encoded,
        issuer=DistinguishedName.from_der(crl.issuer.public_bytes()),
        issuer_der=crl.issuer.public_bytes(),
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        number=None if number is None else number.crl_number,
        is_delta=_extension(exts, _x509.DeltaCRLIndicator) is not None,
        authority_key_id=None if aki is None else aki.key_identifier,
        revoked=tuple(
            RevokedEntry(e.serial_number, e.revocation_date_utc, _crl_reason(e)) for e in crl
        ),
        scheme=scheme,
        scheme_error=scheme_error,
        tbs=crl.tbs_certlist_bytes,
        signature=crl.signature,
    )
