"""Public-key authentication: RFC 7427 digital signatures (method 14) and the classic RSA
(1) and ECDSA (9-11) methods, with certificates (RFC 4945 profile) or raw public keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ...credentials.authenticate import sign_local, verify_peer
from ...credentials.constraints import AuthConstraint
from ...credentials.identities import format_identity
from ...credentials.store import CredentialStore
from ...wire.payloads import AUTH, CERT, Payload
from ...wire.registry import CertEncoding
from .base import AuthFailure, OwnAuth, PeerAuth


class PubkeyAuthenticator:
    def __init__(self, store: CredentialStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def build(self, own: OwnAuth) -> list[Payload]:
        local = sign_local(
            self.store,
            identity=own.identity,
            octets=own.octets,
            peer_hashes=own.peer_hashes,
            constraint=AuthConstraint.parse(own.config.auth),
            certreq_keyids=own.certreq or (),
        )
        send = own.send_cert == "always" or (own.send_cert == "ifasked" and own.certreq is not None)
        certs: list[Payload] = (
            [CERT(CertEncoding.X509_SIGNATURE, c.der) for c in local.certificates] if send else []
        )
        if local.raw_key and own.peer_raw_keys and own.send_cert != "never":
            # RFC 7670 §3: our raw key as a SubjectPublicKeyInfo, to a peer that asked for it.
            certs = [CERT(CertEncoding.RAW_PUBLIC_KEY, local.raw_key)]
        return [*certs, AUTH(local.method, local.data)]

    def verify(self, peer: PeerAuth) -> str:
        store = self._anchored(peer.config.cacerts)
        result = verify_peer(
            store,
            method=int(peer.auth.method),
            auth_data=peer.auth.data,
            octets=peer.octets,
            peer_id=peer.identity,
            now=self.clock(),
            remote_id=peer.config.id,
            constraint=AuthConstraint.parse(peer.config.auth),
            certificates=list(peer.certificates),
            raw_keys=list(peer.raw_keys),
            revocation=peer.config.revocation,
            tried_crl_uris=peer.tried_crl_uris,
        )
        key = result.public_key
        how = f"{key.key_type.value.upper()}-{key.bits} signature ({result.scheme.name})"
        if result.path is not None:
            anchor = result.path.chain[-1]
            return f"{how}, certificate chain to CA '{anchor.subject_str}'"
        return f"{how}, trusted public key for '{format_identity(peer.identity)}'"

    def _anchored(self, cacerts: tuple) -> CredentialStore:  # type: ignore[type-arg]
        """The store, with trust restricted to ``remote.cacerts`` when the round names some."""
        if not cacerts:
            return self.store
        restricted = CredentialStore()
        for ca in cacerts:
            restricted.add_ca(ca)
        for cert in self.store.certificates:
            restricted.add_certificate(cert)
        for crl in self.store.crls:
            restricted.add_crl(crl)
        for uri, fetched in self.store.fetched_crls.items():
            restricted.add_fetched_crl(uri, fetched)
        if not restricted.cas:
            raise AuthFailure("no trusted CA")
        return restricted
