"""What an authenticator is given and what it answers (RFC 7296 §2.15)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ...credentials.authenticate import AuthFailure
from ...crypto.prf import PrfSpec
from ...policy.connection import AuthConfig
from ...policy.identity import Identity
from ...wire.payloads import AUTH, Payload

__all__ = ["AuthFailure", "Authenticator", "OwnAuth", "PeerAuth"]


@dataclass(frozen=True, slots=True)
class OwnAuth:
    """Authenticate ourselves: our <SignedOctets> and what the peer told us it accepts."""

    octets: bytes = field(repr=False)
    prf: PrfSpec
    sk_p: bytes = field(repr=False)  # our SK_pi or SK_pr (NULL authentication, RFC 7619)
    identity: Identity  # ours, as sent in IDi/IDr
    peer: Identity | None  # the peer's identity, as configured or received
    config: AuthConfig  # our ``local`` round
    peer_hashes: tuple[int, ...] | None  # its SIGNATURE_HASH_ALGORITHMS; None: not sent
    certreq: tuple[bytes, ...] | None  # CA key ids of its CERTREQ; None: none received
    send_cert: str = "ifasked"  # always, ifasked or never (swanctl.conf)
    peer_raw_keys: bool = False  # it asked for raw public keys in CERTREQ (RFC 7670 §3)


@dataclass(frozen=True, slots=True)
class PeerAuth:
    """Check the peer: its <SignedOctets>, AUTH payload, certificates and identity."""

    octets: bytes = field(repr=False)
    prf: PrfSpec
    sk_p: bytes = field(repr=False)  # the peer's SK_pi or SK_pr
    identity: Identity  # the peer's, from its IDi/IDr
    ours: Identity  # our identity in this IKE SA
    config: AuthConfig  # our ``remote`` round
    auth: AUTH
    certificates: Sequence[bytes] = ()  # its CERT payloads (X.509 DER), end entity first
    raw_keys: Sequence[bytes] = ()  # its CERT payloads of RFC 7670 raw public keys (SPKI DER)
    # CRL distribution points already fetched for this check; None: no fetching (the host
    # does not fetch), only the CRLs at hand count.
    tried_crl_uris: frozenset[str] | None = None


class Authenticator(Protocol):
    """One authentication method: PSK, public-key signatures or NULL (later EAP)."""

    def build(self, own: OwnAuth) -> list[Payload]:
        """Our CERT payloads (if any) and our AUTH payload, last; AuthFailure if we cannot."""
        ...

    def verify(self, peer: PeerAuth) -> str:
        """How the peer authenticated (for the log); AuthFailure saying why it did not."""
        ...
