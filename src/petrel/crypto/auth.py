"""AUTH payload inputs (RFC 7296 §2.15): the signed octets and the shared-key AUTH value."""

from __future__ import annotations

from petrel.crypto.prf import PrfSpec

KEY_PAD = b"Key Pad for IKEv2"


def signed_octets(
    message: bytes, peer_nonce: bytes, prf: PrfSpec, sk_p: bytes, id_payload_body: bytes
) -> bytes:
    """<Signed Octets> = RealMessage | Nonce(peer) | prf(SK_p, RestOfID) (§2.15).

    ``message`` is this side's first message as sent, ``sk_p`` its SK_pi or SK_pr, and
    ``id_payload_body`` its ID payload without the generic header (type, 3 reserved, data).
    """
    return bytes(message) + bytes(peer_nonce) + prf.compute(sk_p, id_payload_body)


def psk_auth(prf: PrfSpec, secret: bytes, octets: bytes) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <Signed Octets>) (§2.15)."""
    return prf.compute(prf.compute(secret, KEY_PAD), octets)
