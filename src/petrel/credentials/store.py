"""The credential store: trust anchors, certificates, private keys, CRLs, raw public keys and
shared secrets, with the lookups IKE authentication makes (strongSwan's credential manager,
reduced to what Petrel uses).

- :meth:`CredentialStore.select_local`: our certificate and key for a local identity,
  preferring one that chains to a CA the peer asked for in CERTREQ (RFC 7296 §3.7), with the
  intermediate certificates to send;
- :meth:`CredentialStore.ca_keyids`: the key IDs of our trust anchors, for our CERTREQ;
- :meth:`CredentialStore.peer_candidates`: locally stored certificates and raw public keys
  that may authenticate a peer identity (when it sends no certificate);
- :meth:`CredentialStore.shared_secret`: the PSK for a pair of identities, ranked by
  strongSwan's match levels (the peer's identity first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from petrel.credentials.identities import (
    MATCH_NONE,
    MATCH_PERFECT,
    cert_match,
    id_match,
)
from petrel.crypto.keys import PrivateKey, PublicKey
from petrel.crypto.validation import issuer_chain
from petrel.crypto.x509 import Certificate, Crl
from petrel.policy.identity import Identity
from petrel.wire.registry import IdType

__all__ = ["CredentialStore", "LocalCredential", "SharedSecret", "TrustedKey"]


@dataclass(frozen=True, slots=True)
class SharedSecret:
    """A pre-shared key and the identities it belongs to (none: anyone)."""

    secret: bytes = field(repr=False)
    owners: tuple[Identity, ...] = ()

    def owner_match(self, identity: Identity | None) -> int:
        if identity is None:
            return MATCH_NONE
        if not self.owners:
            return id_match(identity, Identity.any())
        return max(id_match(identity, owner) for owner in self.owners)


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A raw public key trusted for some identities (swanctl ``pubkey/``, RFC 7670 style)."""

    key: PublicKey
    identities: tuple[Identity, ...] = ()

    def match(self, identity: Identity) -> int:
        if identity.id_type == IdType.KEY_ID and identity.data in (
            self.key.spki_sha1,
            self.key.pubkey_sha1,
        ):
            return MATCH_PERFECT
        return max((id_match(own, identity) for own in self.identities), default=MATCH_NONE)


@dataclass(frozen=True, slots=True)
class LocalCredential:
    """What we authenticate with: our key, and our certificate with its intermediates to
    send (none for a raw public key)."""

    key: PrivateKey
    certificate: Certificate | None = None
    intermediates: tuple[Certificate, ...] = ()

    @property
    def to_send(self) -> tuple[Certificate, ...]:
        """CERT payloads, end entity first (RFC 7296 §3.6)."""
        return (self.certificate, *self.intermediates) if self.certificate else ()


MAX_FETCHED_CRLS = 64  # CRLs fetched from distribution points, kept by URI


class CredentialStore:
    """Credentials in memory; fill with the ``add_*`` methods or :mod:`.folders`."""

    def __init__(self) -> None:
        # CRLs fetched from distribution points, one per URI, least recently fetched first;
        # bounded: the oldest is forgotten past MAX_FETCHED_CRLS (charon's CRL cache).
        self._fetched: OrderedDict[str, Crl] = OrderedDict()
        self._cas: list[Certificate] = []
        self._certs: list[Certificate] = []
        self._keys: list[PrivateKey] = []
        self._crls: list[Crl] = []
        self._pubkeys: list[TrustedKey] = []
        self._secrets: list[SharedSecret] = []

    # -- filling ----------------------------------------------------------------------------

    def add_ca(self, cert: Certificate) -> None:
        """A trust anchor (swanctl ``x509ca/``)."""
        if all(c.der != cert.der for c in self._cas):
            self._cas.append(cert)

    def add_certificate(self, cert: Certificate) -> None:
        """An end-entity or intermediate certificate (swanctl ``x509/``), ours or a peer's."""
        if all(c.der != cert.der for c in self._certs):
            self._certs.append(cert)

    def add_private_key(self, key: PrivateKey) -> None:
        if all(k.public != key.public for k in self._keys):
            self._keys.append(key)

    def add_crl(self, crl: Crl) -> None:
        if all(c.der != crl.der for c in self._crls):
            self._crls.append(crl)

    def add_fetched_crl(self, uri: str, crl: Crl) -> None:
        """The CRL fetched from ``uri`` (replaces the one fetched from there before)."""
        self._fetched.pop(uri, None)
        self._fetched[uri] = crl
        while len(self._fetched) > MAX_FETCHED_CRLS:
            self._fetched.popitem(last=False)

    def add_public_key(self, key: PublicKey, identities: tuple[Identity, ...] = ()) -> None:
        """A raw public key trusted for ``identities`` (and for its KEY_ID identities)."""
        self._pubkeys.append(TrustedKey(key, tuple(identities)))

    def add_shared_secret(self, secret: bytes, owners: tuple[Identity, ...] = ()) -> None:
        if not secret:
            raise ValueError("empty shared secret")
        self._secrets.append(SharedSecret(bytes(secret), tuple(owners)))

    # -- contents ---------------------------------------------------------------------------

    @property
    def cas(self) -> tuple[Certificate, ...]:
        return tuple(self._cas)

    @property
    def certificates(self) -> tuple[Certificate, ...]:
        return tuple(self._certs)

    @property
    def private_keys(self) -> tuple[PrivateKey, ...]:
        return tuple(self._keys)

    @property
    def crls(self) -> tuple[Crl, ...]:
        """Loaded CRLs (``x509crl/``, VICI)."""
        return tuple(self._crls)

    @property
    def usable_crls(self) -> tuple[Crl, ...]:
        """Loaded CRLs and those fetched from distribution points."""
        return (*self._crls, *self._fetched.values())

    @property
    def fetched_crls(self) -> dict[str, Crl]:
        return dict(self._fetched)

    @property
    def public_keys(self) -> tuple[TrustedKey, ...]:
        return tuple(self._pubkeys)

    # -- queries ----------------------------------------------------------------------------

    def private_key_for(self, item: Certificate | PublicKey) -> PrivateKey | None:
        """The private key whose public half is the certificate's (or this) key."""
        public = item.public_key if isinstance(item, Certificate) else item
        return next((k for k in self._keys if k.public == public), None)

    def ca_keyids(self) -> list[bytes]:
        """CERTREQ Certification Authority data: SHA-1 of each anchor's SubjectPublicKeyInfo."""
        return [ca.keyid for ca in self._cas]

    def find_ca(self, keyid: bytes) -> Certificate | None:
        """The trust anchor a CERTREQ key ID names."""
        return next((ca for ca in self._cas if ca.keyid == keyid), None)

    def local_certificates(self, identity: Identity) -> list[Certificate]:
        """Our certificates (those we hold the key of) confirming ``identity``, best first."""
        scored = [
            (cert_match(c, identity), i, c)
            for i, c in enumerate(self._certs)
            if self.private_key_for(c) is not None
        ]
        return [c for score, _, c in sorted(scored, key=lambda t: (-t[0], t[1])) if score]

    def chain_of(self, cert: Certificate) -> list[Certificate]:
        """Issuers of ``cert`` among our certificates and anchors, nearest first."""
        return issuer_chain(cert, [*self._certs, *self._cas])

    def select_local(
        self, identity: Identity, certreq_keyids: tuple[bytes, ...] | list[bytes] = ()
    ) -> LocalCredential | None:
        """Certificate and key for ``identity``; one chaining to a CA named in the peer's
        CERTREQ first (else the best match). Raw keys bound to ``identity`` come last."""
        wanted = set(certreq_keyids)
        first: LocalCredential | None = None
        for cert in self.local_certificates(identity):
            chain = self.chain_of(cert)
            key = self.private_key_for(cert)
            assert key is not None
            to_send = tuple(c for c in chain if not c.is_self_issued)
            credential = LocalCredential(key, cert, to_send)
            if not wanted or any(c.keyid in wanted for c in chain):
                return credential
            first = first or credential
        if first is not None:
            return first
        for trusted in self._pubkeys:
            key = self.private_key_for(trusted.key)
            if key is not None and trusted.match(identity):
                return LocalCredential(key)
        return None

    def peer_candidates(self, identity: Identity) -> tuple[list[Certificate], list[PublicKey]]:
        """Stored certificates and raw public keys that may speak for ``identity``."""
        certs = [c for c in self._certs if cert_match(c, identity) and not c.is_ca]
        keys = [t.key for t in self._pubkeys if t.match(identity)]
        return certs, keys

    def shared_secret(self, me: Identity | None, other: Identity | None) -> bytes | None:
        """The PSK fitting both identities best, the peer's match weighing first
        (strongSwan's get_shared); owner-less secrets fit anyone at the lowest level."""
        best: SharedSecret | None = None
        best_score = (MATCH_NONE, MATCH_NONE)
        for secret in self._secrets:
            mine, theirs = secret.owner_match(me), secret.owner_match(other)
            if not mine and not theirs:
                continue
            if (theirs, mine) > best_score:
                best, best_score = secret, (theirs, mine)
        return best.secret if best is not None else None
