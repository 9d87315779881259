"""Certification path validation for IKE (RFC 5280 §6 subset, profiled by RFC 4945 §5).

:func:`validate_path` builds a chain from an end-entity certificate through untrusted
intermediates to a trust anchor and checks, at the ``now`` it is given: validity periods
(trust anchor included, as strongSwan does), signatures, basicConstraints CA:TRUE and
pathLenConstraint (§4.2.1.9), keyUsage keyCertSign on issuers (§4.2.1.3), unknown critical
extensions (§4.2), the end entity's keyUsage (digitalSignature or nonRepudiation when present,
RFC 4945 §5.1.3.2) and extendedKeyUsage (RFC 4945 §5.1.3.12, see :class:`EkuPolicy`), and
revocation against the CRLs it is given (§6.3), with strongSwan's ``revocation`` policies:

- ``strict``: every certificate must be known good (a current CRL from its issuer);
- ``ifuri``: fails only if revocation information should exist (a CRL distribution point)
  but none usable is at hand, or the CRL is stale;
- ``relaxed`` (default): fails only if a certificate is revoked.

Each failure is a :class:`PathValidationError` whose ``reason`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from petrel.crypto.errors import CryptoError
from petrel.crypto.keys import KeyType
from petrel.crypto.pki_errors import BadSignature, KeyMismatch
from petrel.crypto.signatures import verify
from petrel.crypto.sigschemes import SignatureScheme
from petrel.crypto.x509 import Certificate, Crl

__all__ = [
    "CertStatus",
    "EkuPolicy",
    "PathFailure",
    "PathValidationError",
    "Revocation",
    "ValidatedPath",
    "crl_status",
    "crls_to_fetch",
    "enforce_revocation",
    "issuer_chain",
    "validate_path",
]

MAX_PATH_LENGTH = 7  # intermediates, as strongSwan's MAX_TRUST_PATH_LEN

EKU_ANY = "2.5.29.37.0"
EKU_IPSEC_IKE = "1.3.6.1.5.5.7.3.17"
EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
EKU_IKE_INTERMEDIATE = "1.3.6.1.5.5.8.2.2"


class Revocation(StrEnum):
    """``remote.revocation`` in swanctl.conf."""

    STRICT = "strict"
    IFURI = "ifuri"
    RELAXED = "relaxed"


class EkuPolicy(StrEnum):
    """Which extendedKeyUsage an end-entity certificate may carry.

    ``rfc4945``: absent, anyExtendedKeyUsage or id-kp-ipsecIKE (RFC 4945 §5.1.3.12).
    ``ike`` (default): also serverAuth, clientAuth and ipsecIKEIntermediate, which strongSwan's
    documentation and Windows clients use for IKE. ``any``: not checked (strongSwan).
    """

    RFC4945 = "rfc4945"
    IKE = "ike"
    ANY = "any"


_EKU_ALLOWED = {
    EkuPolicy.RFC4945: frozenset({EKU_ANY, EKU_IPSEC_IKE}),
    EkuPolicy.IKE: frozenset(
        {EKU_ANY, EKU_IPSEC_IKE, EKU_SERVER_AUTH, EKU_CLIENT_AUTH, EKU_IKE_INTERMEDIATE}
    ),
}


class CertStatus(StrEnum):
    """Revocation status of one certificate (strongSwan's cert_validation_t)."""

    GOOD = "good"
    REVOKED = "revoked"
    ON_HOLD = "on hold"
    STALE = "stale"
    SKIPPED = "skipped"
    FAILED = "failed"


class PathFailure(StrEnum):
    EXPIRED = "certificate expired"
    NOT_YET_VALID = "certificate not yet valid"
    UNTRUSTED = "untrusted CA"
    SELF_SIGNED = "self-signed certificate not trusted"
    BAD_SIGNATURE = "certificate signature invalid"
    UNSUPPORTED = "unsupported signature algorithm"
    NOT_CA = "CA:FALSE used as issuer"
    NO_CERT_SIGN = "issuer keyUsage lacks keyCertSign"
    PATH_LENGTH = "path length exceeded"
    TOO_LONG = "certificate chain too long"
    KEY_USAGE = "keyUsage lacks digitalSignature and nonRepudiation"
    EXT_KEY_USAGE = "extendedKeyUsage does not allow IKE"
    CRITICAL_EXTENSION = "unsupported critical extension"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation status unknown"


class PathValidationError(CryptoError):
    """A certificate path was refused; ``reason`` says why, ``certificate`` where."""

    def __init__(self, reason: PathFailure, certificate: Certificate, detail: str = "") -> None:
        self.reason = reason
        self.certificate = certificate
        self.detail = detail
        extra = f" ({detail})" if detail else ""
        super().__init__(f'{reason.value}: "{certificate.subject_str}"{extra}')


@dataclass(frozen=True, slots=True)
class ValidatedPath:
    """A trusted chain: end entity first, trust anchor last.

    ``schemes[i]`` is the signature scheme ``chain[i]`` was signed with and ``statuses[i]``
    its revocation status, for every certificate below the anchor.
    """

    chain: tuple[Certificate, ...]
    schemes: tuple[SignatureScheme, ...]
    statuses: tuple[CertStatus, ...]

    @property
    def end_entity(self) -> Certificate:
        return self.chain[0]

    @property
    def anchor(self) -> Certificate:
        return self.chain[-1]

    @property
    def key_strengths(self) -> tuple[tuple[KeyType, int], ...]:
        """Type and size of every key in the chain (what strongSwan's constraints check)."""
        return tuple((c.public_key.key_type, c.public_key.bits) for c in self.chain)


def _utc(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _check_lifetime(cert: Certificate, now: datetime) -> None:
    if now < cert.not_before:
        raise PathValidationError(PathFailure.NOT_YET_VALID, cert, f"until {cert.not_before}")
    if now > cert.not_after:
        raise PathValidationError(PathFailure.EXPIRED, cert, f"since {cert.not_after}")


def _check_extensions(cert: Certificate) -> None:
    if cert.unhandled_critical:
        detail = ", ".join(cert.unhandled_critical)
        raise PathValidationError(PathFailure.CRITICAL_EXTENSION, cert, detail)


def _check_end_entity(cert: Certificate, eku: EkuPolicy) -> None:
    usage = cert.key_usage
    if usage is not None and not usage & {"digitalSignature", "nonRepudiation"}:
        raise PathValidationError(PathFailure.KEY_USAGE, cert)
    allowed = _EKU_ALLOWED.get(eku)
    ekus = cert.ext_key_usage
    if allowed is not None and ekus is not None and not ekus & allowed:
        raise PathValidationError(PathFailure.EXT_KEY_USAGE, cert, ", ".join(sorted(ekus)))


def _signed_by(subject: Certificate | Crl, issuer: Certificate) -> bool:
    if subject.scheme is None:
        return False
    try:
        verify(issuer.public_key, subject.scheme, subject.tbs, subject.signature)
    except (BadSignature, KeyMismatch):
        return False
    return True


def _names_issuer(cert: Certificate, candidate: Certificate) -> bool:
    """Could ``candidate`` have issued ``cert``: subject = issuer, and key IDs agree if both
    are present (RFC 5280 §4.2.1.1)."""
    if not candidate.subject.equals(cert.issuer):
        return False
    aki, ski = cert.authority_key_id, candidate.subject_key_id
    return aki is None or ski is None or aki == ski


def _is_ca(cert: Certificate, anchor: bool) -> bool:
    # A version 1 certificate has no extensions; only a configured trust anchor may be one.
    return bool(cert.is_ca) or (anchor and cert.version == 1)


def _find_issuer(
    cert: Certificate,
    anchors: Sequence[Certificate],
    intermediates: Sequence[Certificate],
    used: list[Certificate],
) -> tuple[Certificate, bool]:
    """The certificate that signed ``cert`` (anchors tried first) and whether it is an anchor."""
    failure: tuple[PathFailure, str] | None = None
    seen = {c.der for c in used}
    candidates = [(a, True) for a in anchors] + [(i, False) for i in intermediates]
    for candidate, is_anchor in candidates:
        if (candidate.der in seen and not is_anchor) or not _names_issuer(cert, candidate):
            continue
        if cert.scheme is None:
            failure = (PathFailure.UNSUPPORTED, cert.scheme_error)
            continue
        if not _signed_by(cert, candidate):
            failure = failure or (PathFailure.BAD_SIGNATURE, f"issuer {candidate.subject_str}")
            continue
        if not _is_ca(candidate, is_anchor):
            raise PathValidationError(PathFailure.NOT_CA, candidate)
        if candidate.key_usage is not None and "keyCertSign" not in candidate.key_usage:
            raise PathValidationError(PathFailure.NO_CERT_SIGN, candidate)
        return candidate, is_anchor
    if failure is not None:
        raise PathValidationError(failure[0], cert, failure[1])
    if cert.is_self_issued and _signed_by(cert, cert):
        if cert.der == used[0].der:
            raise PathValidationError(PathFailure.SELF_SIGNED, cert)
        raise PathValidationError(PathFailure.UNTRUSTED, cert, "root not trusted")
    raise PathValidationError(PathFailure.UNTRUSTED, cert, f"no issuer {cert.issuer_str}")


def crl_status(
    cert: Certificate, issuer: Certificate, crls: Sequence[Crl], now: datetime
) -> CertStatus:
    """Revocation status of ``cert`` from the CRLs ``issuer`` signed (strongSwan's rules:
    a listed serial is revoked even in a stale CRL; CRLs not yet valid are ignored; no
    usable CRL but a distribution point in the certificate is FAILED, none at all SKIPPED)."""
    now = _utc(now)
    best: Crl | None = None
    for crl in crls:
        if crl.is_delta or not crl.issuer.equals(issuer.subject):
            continue
        aki, ski = crl.authority_key_id, issuer.subject_key_id
        if aki and ski and aki != ski:
            continue
        if issuer.key_usage is not None and "cRLSign" not in issuer.key_usage:
            continue
        if crl.this_update > now or not _signed_by(crl, issuer):
            continue
        entry = crl.entry(cert.serial)
        if entry is not None:
            return CertStatus.ON_HOLD if entry.reason == "certificateHold" else CertStatus.REVOKED
        if best is None or (crl.number or 0, crl.this_update) > (
            best.number or 0,
            best.this_update,
        ):
            best = crl
    if best is not None:
        current = best.next_update is None or best.next_update >= now
        return CertStatus.GOOD if current else CertStatus.STALE
    return CertStatus.FAILED if cert.crl_uris else CertStatus.SKIPPED


def _check_revocation(cert: Certificate, status: CertStatus, policy: Revocation) -> None:
    if status in (CertStatus.REVOKED, CertStatus.ON_HOLD):
        raise PathValidationError(PathFailure.REVOKED, cert, status.value)
    ok = {
        Revocation.STRICT: (CertStatus.GOOD,),
        Revocation.IFURI: (CertStatus.GOOD, CertStatus.SKIPPED),
    }.get(policy)
    if ok is not None and status not in ok:
        detail = f"CRL {status.value}, revocation = {policy.value}"
        raise PathValidationError(PathFailure.REVOCATION_UNKNOWN, cert, detail)


def enforce_revocation(path: ValidatedPath, revocation: Revocation | str) -> None:
    """Apply ``revocation`` to the statuses of a path validated with ``relaxed`` (after any
    CRL fetching): :class:`PathValidationError` if the policy refuses it."""
    policy = Revocation(revocation)
    for cert, status in zip(path.chain, path.statuses, strict=False):
        _check_revocation(cert, status, policy)


FETCHABLE_SCHEMES = ("http://", "file://")
MAX_URIS_PER_CERT = 4


def crls_to_fetch(path: ValidatedPath, tried: frozenset[str]) -> tuple[str, ...]:
    """The CRL distribution points (RFC 5280 §4.2.1.13) still worth fetching for ``path``:
    those of each certificate whose status is neither good nor revoked (no usable CRL, or
    a stale one), as charon's revocation plugin fetches them, minus the URIs in ``tried``.
    Only ``http://`` and ``file://`` URIs, at most :data:`MAX_URIS_PER_CERT` a certificate."""
    wanted: list[str] = []
    for cert, status in zip(path.chain, path.statuses, strict=False):
        if status not in (CertStatus.FAILED, CertStatus.STALE):
            continue
        uris = [u for u in cert.crl_uris if u.lower().startswith(FETCHABLE_SCHEMES)]
        wanted += [u for u in uris[:MAX_URIS_PER_CERT] if u not in tried and u not in wanted]
    return tuple(wanted)


def validate_path(
    end_entity: Certificate,
    intermediates: Sequence[Certificate],
    anchors: Sequence[Certificate],
    *,
    now: datetime,
    crls: Sequence[Crl] = (),
    revocation: Revocation | str = Revocation.RELAXED,
    eku: EkuPolicy | str = EkuPolicy.IKE,
    ike: bool = True,
) -> ValidatedPath:
    """Validate ``end_entity`` up to one of ``anchors``; :class:`PathValidationError` if not.

    ``ike`` applies the end-entity checks of RFC 4945 (keyUsage, extendedKeyUsage). An end
    entity that is itself one of ``anchors`` is trusted as it is (a pinned peer certificate).
    """
    now, policy = _utc(now), Revocation(revocation)
    _check_extensions(end_entity)
    if ike:
        _check_end_entity(end_entity, EkuPolicy(eku))
    _check_lifetime(end_entity, now)
    if any(a.der == end_entity.der for a in anchors):
        return ValidatedPath((end_entity,), (), ())
    chain, schemes = [end_entity], []
    current = end_entity
    while True:
        if len(chain) > MAX_PATH_LENGTH + 1:
            raise PathValidationError(PathFailure.TOO_LONG, end_entity)
        issuer, is_anchor = _find_issuer(current, anchors, intermediates, chain)
        _check_extensions(issuer)
        _check_lifetime(issuer, now)
        below = len(chain) - 1  # intermediate CAs between this issuer and the end entity
        if issuer.path_len is not None and below > issuer.path_len:
            raise PathValidationError(
                PathFailure.PATH_LENGTH, issuer, f"{below} > pathlen {issuer.path_len}"
            )
        assert current.scheme is not None  # _find_issuer verified the signature with it
        schemes.append(current.scheme)
        chain.append(issuer)
        if is_anchor:
            break
        current = issuer
    statuses = tuple(crl_status(c, chain[i + 1], crls, now) for i, c in enumerate(chain[:-1]))
    path = ValidatedPath(tuple(chain), tuple(schemes), statuses)
    enforce_revocation(path, policy)
    return path


def issuer_chain(cert: Certificate, pool: Sequence[Certificate]) -> list[Certificate]:
    """The issuers of ``cert`` found in ``pool``, nearest first, linked by name, key ID and
    signature, without policy checks: to decide which certificates to send and which CAs a
    certificate chains to (CERTREQ). Stops at a self-signed certificate."""
    chain: list[Certificate] = []
    current, seen = cert, {cert.der}
    while len(chain) <= MAX_PATH_LENGTH:
        if current.is_self_issued and _signed_by(current, current):
            break
        issuer = next(
            (
                c
                for c in pool
                if c.der not in seen and _names_issuer(current, c) and _signed_by(current, c)
            ),
            None,
        )
        if issuer is None:
            break
        chain.append(issuer)
        seen.add(issuer.der)
        current = issuer
    return chain
