"""Pre-shared key authentication (RFC 7296 §2.15): AUTH = prf(prf(PSK, "Key Pad for
IKEv2"), <SignedOctets>), compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from ...crypto.auth import psk_auth
from ...policy.connection import SharedSecret, best_psk
from ...wire.payloads import AUTH, Payload
from ...wire.registry import AuthMethod
from .base import AuthFailure, OwnAuth, PeerAuth


class PskAuthenticator:
    def __init__(self, secrets: Sequence[SharedSecret]) -> None:
        self.secrets = tuple(secrets)

    def build(self, own: OwnAuth) -> list[Payload]:
        secret = best_psk(self.secrets, own.identity, own.peer)
        if secret is None:
            raise AuthFailure("no shared secret found for these identities")
        return [AUTH(AuthMethod.PSK, psk_auth(own.prf, secret, own.octets))]

    def verify(self, peer: PeerAuth) -> str:
        if peer.auth.method != AuthMethod.PSK:
            raise AuthFailure(f"AUTH method {int(peer.auth.method)} where a PSK was expected")
        secret = best_psk(self.secrets, peer.ours, peer.identity)
        if secret is None:
            raise AuthFailure("no shared secret found for these identities")
        expected = psk_auth(peer.prf, secret, peer.octets)
        if not hmac.compare_digest(expected, peer.auth.data):
            raise AuthFailure("pre-shared key AUTH does not match (a different secret?)")
        return "pre-shared key"
