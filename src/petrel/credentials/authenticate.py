"""The calls an IKE_AUTH authenticator makes for public-key authentication (RFC 7296 §2.15,
RFC 7427), and the NULL authentication value (RFC 7619).

:func:`sign_local`: signed octets in, AUTH method + data + CERT payloads out.
:func:`verify_peer`: a peer's AUTH, its CERT payloads and its ID in, a verified
:class:`PeerAuth` out — or :class:`AuthFailure` with the reason to log before answering
AUTHENTICATION_FAILED (RFC 7296 §2.21.2). The signed octets themselves come from
:func:`petrel.crypto.auth.signed_octets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from petrel.credentials.constraints import AuthClass, AuthConstraint, select_schemes
from petrel.credentials.identities import cert_match, format_identity, id_match
from petrel.credentials.store import CredentialStore, LocalCredential
from petrel.crypto.auth import psk_auth
from petrel.crypto.errors import CryptoError
from petrel.crypto.keys import PublicKey
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.prf import PrfSpec
from petrel.crypto.signatures import build_auth, classic_method, parse_auth, verify_auth
from petrel.crypto.sigschemes import SignatureScheme
from petrel.crypto.validation import (
    EkuPolicy,
    PathValidationError,
    Revocation,
    ValidatedPath,
    crls_to_fetch,
    enforce_revocation,
    validate_path,
)
from petrel.crypto.x509 import Certificate, load_certificate
from petrel.policy.identity import Identity
from petrel.wire.registry import AuthMethod

__all__ = [
    "AuthFailure",
    "CrlsNeeded",
    "LocalAuth",
    "PeerAuth",
    "null_auth",
    "sign_local",
    "verify_peer",
]


class AuthFailure(Exception):
    """Authentication failed; the message says why (for the log, not for the peer)."""


class CrlsNeeded(Exception):
    """The peer's signature verified, but its revocation status needs these CRLs fetched
    from their distribution points first; verify again once each fetch has ended."""

    def __init__(self, uris: tuple[str, ...]) -> None:
        super().__init__(", ".join(uris))
        self.uris = uris


@dataclass(frozen=True, slots=True)
class LocalAuth:
    """Our AUTH payload (method and data) and the certificates to send as CERT payloads."""

    method: AuthMethod
    data: bytes
    scheme: SignatureScheme
    certificates: tuple[Certificate, ...] = ()
    raw_key: bytes = b""  # our SubjectPublicKeyInfo when we hold no certificate (RFC 7670)


@dataclass(frozen=True, slots=True)
class PeerAuth:
    """A verified peer: who, with what key and scheme, through which chain (None: raw key)."""

    identity: Identity
    method: int
    scheme: SignatureScheme
    public_key: PublicKey
    path: ValidatedPath | None


def sign_local(
    store: CredentialStore,
    *,
    identity: Identity,
    octets: bytes,
    peer_hashes: Sequence[int] | None,
    constraint: AuthConstraint | None = None,
    certreq_keyids: Sequence[bytes] = (),
    rsa_pss: bool = False,
) -> LocalAuth:
    """Sign our <Signed Octets>. ``peer_hashes``: the peer's SIGNATURE_HASH_ALGORITHMS, or
    None if it sent none (then the classic method of the key: 1 for RSA, 9-11 for ECDSA)."""
    credential = store.select_local(identity, tuple(certreq_keyids))
    if credential is None:
        raise AuthFailure(f"no private key found for '{format_identity(identity)}'")
    key = credential.key
    if peer_hashes is None:
        try:
            method = classic_method(key)
        except CryptoError:
            raise AuthFailure(
                f"{key.key_type.value} keys need RFC 7427 signature authentication, "
                "which the peer did not announce"
            ) from None
        data = build_auth(key, method, octets)
        scheme, _ = parse_auth(method, data)
        return LocalAuth(method, data, scheme, credential.to_send, _raw(credential))
    schemes = select_schemes(constraint, key, peer_hashes, rsa_pss=rsa_pss)
    if not schemes:
        raise AuthFailure(
            f"no common hash algorithm found to create signature with {key.key_type.value} key"
        )
    data = build_auth(key, AuthMethod.DIGITAL_SIGNATURE, octets, schemes[0])
    return LocalAuth(
        AuthMethod.DIGITAL_SIGNATURE, data, schemes[0], credential.to_send, _raw(credential)
    )


def _raw(credential: LocalCredential) -> bytes:
    return credential.key.public.spki if credential.certificate is None else b""


def _load_all(certificates: Sequence[bytes | Certificate]) -> list[Certificate]:
    out: list[Certificate] = []
    for item in certificates:
        try:
            out.append(item if isinstance(item, Certificate) else load_certificate(item))
        except CredentialError as exc:
            raise AuthFailure(f"received an unusable certificate: {exc}") from None
    return out


def verify_peer(
    store: CredentialStore,
    *,
    method: int,
    auth_data: bytes,
    octets: bytes,
    peer_id: Identity,
    now: datetime,
    remote_id: Identity | None = None,
    constraint: AuthConstraint | None = None,
    certificates: Sequence[bytes | Certificate] = (),
    revocation: Revocation | str = Revocation.RELAXED,
    eku: EkuPolicy | str = EkuPolicy.IKE,
    tried_crl_uris: frozenset[str] | None = None,
    raw_keys: Sequence[bytes] = (),
) -> PeerAuth:
    """Verify the peer's AUTH over ``octets``.

    ``peer_id`` is the identity in its IDi/IDr payload; ``remote_id`` the configured
    ``remote.id`` (may hold wildcards; None or %any accepts any). ``certificates``: its CERT
    payloads (X.509 DER, end entity first); without them, certificates and raw public keys
    in the store that confirm ``peer_id`` are tried. The end-entity certificate must confirm
    ``peer_id`` (subject DN or subjectAltName), its path must validate, the signature must
    verify, and the result must comply with ``constraint``.

    ``raw_keys``: its RFC 7670 CERT payloads (SubjectPublicKeyInfo DER), used when it sends
    no certificate: the key must be one of the raw public keys trusted for ``peer_id``
    (a raw key is never trusted for being sent).

    ``tried_crl_uris`` enables CRL fetching (None: only the CRLs in ``store``): once the
    signature verified, a certificate without a current CRL whose distribution points are not
    in this set raises :class:`CrlsNeeded`; ``revocation`` is applied after the fetches.
    """
    fetching = tried_crl_uris is not None
    constraint = constraint or AuthConstraint(AuthClass.PUBKEY, "pubkey")
    who = format_identity(peer_id)
    if constraint.auth_class is not AuthClass.PUBKEY:
        raise AuthFailure(f"peer used a signature, but auth = {constraint.text}")
    if remote_id is not None and not id_match(peer_id, remote_id):
        raise AuthFailure(
            f"identity '{who}' does not match the configured '{format_identity(remote_id)}'"
        )
    received = _load_all(certificates)
    if received:
        end_entity, sent_intermediates = received[0], received[1:]
        if not cert_match(end_entity, peer_id):
            raise AuthFailure(f"certificate '{end_entity.subject_str}' does not confirm '{who}'")
        candidates: list[Certificate | PublicKey] = [end_entity]
    elif raw_keys:
        _, keys = store.peer_candidates(peer_id)
        sent_intermediates, candidates = [], [k for k in keys if k.spki in raw_keys]
        if not candidates:
            raise AuthFailure(f"the raw public key '{who}' sent is not trusted for it")
    else:
        stored, keys = store.peer_candidates(peer_id)
        sent_intermediates, candidates = [], [*stored, *keys]
        if not candidates:
            raise AuthFailure(f"no trusted public key found for '{who}'")
    failure = ""
    for candidate in candidates:
        path: ValidatedPath | None = None
        if isinstance(candidate, Certificate):
            try:
                path = validate_path(
                    candidate,
                    [*sent_intermediates, *store.certificates],
                    store.cas,
                    now=now,
                    crls=store.usable_crls,
                    revocation=Revocation.RELAXED if fetching else revocation,
                    eku=eku,
                )
            except PathValidationError as exc:
                failure = str(exc)
                continue
            public = candidate.public_key
        else:
            public = candidate
        try:
            scheme = verify_auth(public, method, auth_data, octets)
        except CryptoError as exc:
            failure = f"signature of '{who}' invalid: {exc}"
            continue
        strengths = path.key_strengths if path else ((public.key_type, public.bits),)
        problem = constraint.check(
            key_strengths=strengths,
            chain_schemes=path.schemes if path else (),
            ike_scheme=scheme,
        )
        if problem:
            raise AuthFailure(f"constraint check failed: {problem}")
        if path is not None and tried_crl_uris is not None:
            needed = crls_to_fetch(path, tried_crl_uris)
            if needed:
                raise CrlsNeeded(needed)
            try:
                enforce_revocation(path, revocation)
            except PathValidationError as exc:
                raise AuthFailure(str(exc)) from None
        return PeerAuth(peer_id, method, scheme, public, path)
    raise AuthFailure(failure or f"no trusted public key found for '{who}'")


def null_auth(prf: PrfSpec, sk_p: bytes, octets: bytes) -> bytes:
    """NULL authentication (RFC 7619): the shared-key AUTH of RFC 7296 §2.15 with SK_pi
    (initiator) or SK_pr (responder) as the shared secret."""
    return psk_auth(prf, sk_p, octets)
