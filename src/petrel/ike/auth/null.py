"""NULL authentication (RFC 7619): the peer proves nothing but possession of the IKE SA's
keys; the identity is ID_NULL.  Logged as a warning on every use."""

from __future__ import annotations

import hmac
import logging

from ...credentials.authenticate import null_auth
from ...wire.payloads import AUTH, Payload
from ...wire.registry import AuthMethod
from .base import AuthFailure, OwnAuth, PeerAuth

log = logging.getLogger("petrel.ike")


class NullAuthenticator:
    def build(self, own: OwnAuth) -> list[Payload]:
        return [AUTH(AuthMethod.NULL, null_auth(own.prf, own.sk_p, own.octets))]

    def verify(self, peer: PeerAuth) -> str:
        if peer.auth.method != AuthMethod.NULL:
            raise AuthFailure(f"AUTH method {int(peer.auth.method)} where NULL was expected")
        expected = null_auth(peer.prf, peer.sk_p, peer.octets)
        if not hmac.compare_digest(expected, peer.auth.data):
            raise AuthFailure("NULL authentication AUTH does not match")
        log.warning("peer authenticated with NULL authentication: it is UNAUTHENTICATED")
        return "NULL authentication (unauthenticated peer)"
