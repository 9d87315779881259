"""IKEv2 key derivation: SKEYSEED and SK_* (RFC 7296 §2.14), Child SA KEYMAT (§2.17) and
the SKEYSEED of a rekeyed IKE SA (§2.18)."""

from __future__ import annotations

from dataclasses import dataclass

from petrel.crypto.errors import CryptoError
from petrel.crypto.prf import PrfSpec, prf_plus
from petrel.crypto.secrets import zeroize


@dataclass(frozen=True, slots=True, repr=False)
class IkeKeys:
    """The seven IKE SA keys of §2.14 (repr hides them: never log key material), each in
    its own buffer so that :meth:`wipe` can zero it when the IKE SA ends."""

    sk_d: bytearray
    sk_ai: bytearray
    sk_ar: bytearray
    sk_ei: bytearray
    sk_er: bytearray
    sk_pi: bytearray
    sk_pr: bytearray

    def __repr__(self) -> str:
        return f"IkeKeys(<{len(self.sk_d)}/{len(self.sk_ai)}/{len(self.sk_ei)} octets>)"

    def wipe(self) -> None:
        """Zero every key in place (see :mod:`petrel.crypto.secrets` for what stays)."""
        zeroize(self.sk_d, self.sk_ai, self.sk_ar, self.sk_ei, self.sk_er, self.sk_pi, self.sk_pr)


def _nonce_key(prf: PrfSpec, ni: bytes, nr: bytes) -> bytes:
    """§2.14: the AES PRFs take the first 64 bits of Ni and of Nr as their key."""
    if prf.fixed_key_prf:
        if len(ni) < 8 or len(nr) < 8:
            raise CryptoError("nonces must be at least 8 octets")
        return bytes(ni[:8]) + bytes(nr[:8])
    return bytes(ni) + bytes(nr)


def skeyseed(prf: PrfSpec, ni: bytes, nr: bytes, shared: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) (§2.14)."""
    return prf.compute(_nonce_key(prf, ni, nr), shared)


def derive_ike_keys(
    prf: PrfSpec,
    skeyseed: bytes,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
    encr_key_size: int,
    integ_key_size: int,
) -> IkeKeys:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni|Nr|SPIi|SPIr).

    SK_d, SK_pi and SK_pr have the PRF's preferred key length; ``integ_key_size`` is 0 for AEADs.
    """
    d = prf.key_size
    sizes = (d, integ_key_size, integ_key_size, encr_key_size, encr_key_size, d, d)
    seed = bytes(ni) + bytes(nr) + bytes(spi_i) + bytes(spi_r)
    stream = bytearray(prf_plus(prf, skeyseed, seed, sum(sizes)))
    parts = []
    offset = 0
    for size in sizes:
        parts.append(stream[offset : offset + size])  # a bytearray of its own
        offset += size
    zeroize(stream)
    return IkeKeys(*parts)


def rekey_skeyseed(prf: PrfSpec, old_sk_d: bytes, shared: bytes, ni: bytes, nr: bytes) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (§2.18)."""
    return prf.compute(old_sk_d, bytes(shared) + bytes(ni) + bytes(nr))


def child_keymat(
    prf: PrfSpec, sk_d: bytes, ni: bytes, nr: bytes, length: int, shared: bytes = b""
) -> bytes:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (§2.17); ``shared`` empty without PFS."""
    return prf_plus(prf, sk_d, bytes(shared) + bytes(ni) + bytes(nr), length)


def split_child_keymat(
    keymat: bytes, encr_key_size: int, integ_key_size: int
) -> tuple[bytes, bytes, bytes, bytes]:
    """(encr_i, integ_i, encr_r, integ_r): initiator→responder keys first, encryption first
    (§2.17)."""
    one_way = encr_key_size + integ_key_size
    if len(keymat) != 2 * one_way:
        raise CryptoError(f"KEYMAT must be {2 * one_way} octets, got {len(keymat)}")
    e, i = encr_key_size, integ_key_size
    return (
        keymat[:e],
        keymat[e:one_way],
        keymat[one_way : one_way + e],
        keymat[one_way + e : one_way + e + i],
    )
