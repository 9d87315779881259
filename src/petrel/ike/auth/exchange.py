"""What IKE_AUTH needs from authentication, in one place the engine calls (RFC 7296 §2.15,
§3.6-3.8; RFC 7427 §4): signed octets, our identity, our CERT/AUTH payloads, the check of
the peer's, and the CERTREQ/SIGNATURE_HASH_ALGORITHMS bookkeeping of IKE_SA_INIT."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from ...credentials.identities import format_identity, id_match
from ...credentials.store import CredentialStore
from ...crypto import auth as ikeauth
from ...policy.connection import AuthConfig, Connection, SharedSecret
from ...policy.identity import Identity
from ...wire.payloads import AUTH, CERT, CERTREQ, IDi, IDr, Notify, Payload
from ...wire.registry import CertEncoding, HashAlgorithm, IdType, NotifyType
from ..sa import IkeSa
from .base import AuthFailure, OwnAuth, PeerAuth
from .factory import authenticator_for

__all__ = ["AuthFailure", "IkeAuth", "signature_hash_notify"]

_KEYID_SIZE = 20  # SHA-1 of a CA's SubjectPublicKeyInfo (§3.7)
_HASH = struct.Struct("!H")
OUR_HASHES = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,  # EdDSA (RFC 8420)
)


def signature_hash_notify() -> Notify:
    """SIGNATURE_HASH_ALGORITHMS with the hashes we verify (RFC 7427 §4)."""
    return Notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, b"".join(_HASH.pack(a) for a in OUR_HASHES))


class IkeAuth:
    """Credentials and authenticators of one engine."""

    def __init__(
        self,
        connections: Iterable[Connection],
        secrets: Sequence[SharedSecret],
        store: CredentialStore | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.secrets = tuple(secrets)
        self.store = store if store is not None else CredentialStore()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.fetch_crls = False  # the host fetches CRLs from distribution points
        for conn in connections:  # what a connection names joins the store's pools
            for cert in conn.local.certs:
                self.store.add_certificate(cert)
            for side in (conn.local, conn.remote):  # raw public keys speak for the round's id
                for key in side.pubkeys:
                    self.store.add_public_key(key, (side.id,) if side.id else ())

    # ---------------------------------------------------------------- identities

    def local_identity(self, conn: Connection, local_address: str) -> Identity:
        """``local.id``, else the certificate's subject, ID_NULL for NULL auth, or the
        address (strongSwan's defaults)."""
        if conn.local.id is not None:
            return conn.local.id
        if conn.local.certs:
            return Identity(IdType.DER_ASN1_DN, conn.local.certs[0].subject_der)
        if conn.local.method == "null":
            return Identity(IdType.NULL, b"")
        return Identity.parse(local_address)

    # ---------------------------------------------------------------- IKE_SA_INIT

    @staticmethod
    def note_peer_offers(sa: IkeSa, payloads: Iterable[Payload]) -> None:
        """Remember the peer's SIGNATURE_HASH_ALGORITHMS and CERTREQ key ids."""
        for payload in payloads:
            if (
                isinstance(payload, Notify)
                and payload.notify_type == NotifyType.SIGNATURE_HASH_ALGORITHMS
            ):
                data = payload.data
                sa.peer_hashes = tuple(
                    _HASH.unpack_from(data, i)[0] for i in range(0, len(data) - 1, 2)
                )
            elif isinstance(payload, CERTREQ) and payload.encoding == CertEncoding.RAW_PUBLIC_KEY:
                sa.peer_raw_keys = True  # RFC 7670 §3: it accepts raw public keys in CERT
            elif isinstance(payload, CERTREQ) and payload.encoding == CertEncoding.X509_SIGNATURE:
                data = payload.data[: len(payload.data) - len(payload.data) % _KEYID_SIZE]
                ids = tuple(data[i : i + _KEYID_SIZE] for i in range(0, len(data), _KEYID_SIZE))
                sa.peer_certreq = (*(sa.peer_certreq or ()), *ids)

    def certreq(self, conns: Iterable[Connection]) -> list[Payload]:
        """Our CERTREQ (the key ids of our CAs) when one of ``conns`` checks the peer's
        signature and asks for certificates (``send_certreq``); and a CERTREQ for raw public
        keys, with an empty Certification Authority field, when one of them trusts a raw
        public key for the peer (``remote.pubkeys``, RFC 7670 §3)."""
        wanted = [c for c in conns if c.remote.method == "pubkey" and c.send_certreq]
        if not wanted:
            return []
        keyids = list(self.store.ca_keyids())
        for conn in wanted:
            keyids += [ca.public_key.spki_sha1 for ca in conn.remote.cacerts]
        unique = list(dict.fromkeys(keyids))
        out: list[Payload] = (
            [CERTREQ(CertEncoding.X509_SIGNATURE, b"".join(unique))] if unique else []
        )
        if any(c.remote.pubkeys for c in wanted):
            out.append(CERTREQ(CertEncoding.RAW_PUBLIC_KEY, b""))
        return out

    # ---------------------------------------------------------------- IKE_AUTH

    def own_payloads(
        self, sa: IkeSa, conn: Connection, identity: Identity, id_payload: IDi | IDr
    ) -> list[Payload]:
        """Our CERT payloads (if any) and AUTH; :class:`AuthFailure` when we cannot."""
        octets, sk_p = _octets(sa, id_payload, ours=True)
        assert sa.algorithms is not None and sa.algorithms.prf is not None
        own = OwnAuth(
            octets=octets,
            prf=sa.algorithms.prf,
            sk_p=sk_p,
            identity=identity,
            peer=conn.remote.id,
            config=conn.local,
            peer_hashes=sa.peer_hashes,
            certreq=sa.peer_certreq,
            send_cert=conn.send_cert,
            peer_raw_keys=sa.peer_raw_keys,
        )
        return self._authenticator(conn.local).build(own)

    def verify_peer(
        self,
        sa: IkeSa,
        conn: Connection,
        ours: Identity,
        id_payload: IDi | IDr,
        payloads: Sequence[Payload],
    ) -> str:
        """Check the peer's AUTH (and certificates) against ``conn.remote``; how it
        authenticated, or :class:`AuthFailure` saying why not."""
        auth = next((p for p in payloads if isinstance(p, AUTH)), None)
        if auth is None:
            raise AuthFailure("no AUTH payload")
        peer = Identity(id_payload.id_type, id_payload.data)
        expected = conn.remote.id
        if expected is not None and conn.remote.method != "pubkey" and not id_match(peer, expected):
            raise AuthFailure(
                f"identity '{format_identity(peer)}' is not the configured "
                f"'{format_identity(expected)}'"
            )
        octets, sk_p = _octets(sa, id_payload, ours=False)
        assert sa.algorithms is not None and sa.algorithms.prf is not None
        check = PeerAuth(
            octets=octets,
            prf=sa.algorithms.prf,
            sk_p=sk_p,
            identity=peer,
            ours=ours,
            config=conn.remote,
            auth=auth,
            certificates=tuple(
                p.data
                for p in payloads
                if isinstance(p, CERT) and p.encoding == CertEncoding.X509_SIGNATURE
            ),
            raw_keys=tuple(
                p.data
                for p in payloads
                if isinstance(p, CERT) and p.encoding == CertEncoding.RAW_PUBLIC_KEY
            ),
            tried_crl_uris=sa.crl_tried if self.fetch_crls else None,
        )
        return self._authenticator(conn.remote).verify(check)

    def _authenticator(self, config: AuthConfig):  # type: ignore[no-untyped-def]
        return authenticator_for(config, self.secrets, self.store, self.clock)


def method_fits(config: AuthConfig, method: int) -> bool:
    """Can an AUTH payload of ``method`` satisfy this round at all (PAD selection)?"""
    kinds = {2: "psk", 13: "null"}
    return kinds.get(int(method), "pubkey") == config.method


def _octets(sa: IkeSa, id_payload: IDi | IDr, ours: bool) -> tuple[bytes, bytes]:
    """<SignedOctets> of our side or the peer's, and that side's SK_p (§2.15)."""
    assert sa.keys is not None and sa.algorithms is not None and sa.algorithms.prf
    initiator_side = sa.initiator == ours
    message = sa.init_request if initiator_side else sa.init_response
    nonce = sa.nr if initiator_side else sa.ni
    sk_p = sa.keys.sk_pi if initiator_side else sa.keys.sk_pr
    id_body = bytes([int(id_payload.id_type), 0, 0, 0]) + id_payload.data
    return ikeauth.signed_octets(message, nonce, sa.algorithms.prf, sk_p, id_body), sk_p
