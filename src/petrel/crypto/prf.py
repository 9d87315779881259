"""Pseudorandom functions (IKEv2 Transform Type 2) and prf+ (RFC 7296 §2.13).

HMAC-SHA1 (RFC 2104), HMAC-SHA2-256/384/512 (RFC 4868), AES128-XCBC (RFC 4434) and
AES128-CMAC (RFC 4615).  The AES PRFs take keys of any length: a 16-octet key is used as is,
otherwise AES128-XCBC pads a shorter key with zeros and reduces a longer one to
XCBC(0^128, key) (RFC 4434 §2), while AES128-CMAC reduces every other length to
CMAC(0^128, key) (RFC 4615 §3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from petrel.crypto._mac import cmac_digest, hmac_digest, xcbc_digest
from petrel.crypto.errors import CryptoError, UnsupportedAlgorithm
from petrel.wire.registry import PrfId


@dataclass(frozen=True, slots=True)
class PrfSpec:
    """A PRF: ``key_size`` is its preferred key length, ``output_size`` its output length.

    ``algorithm`` is ``"hmac-<hash>"`` (sha1, sha224, sha256, sha384, sha512), ``"aes-xcbc"`` or
    ``"aes-cmac"``; :func:`prf_spec` fills it in from the transform ID.
    """

    id: int
    key_size: int
    output_size: int
    algorithm: str = ""

    @property
    def fixed_key_prf(self) -> bool:
        """True for the AES PRFs (RFC 7296 §2.14: they take 8 octets of each nonce)."""
        return self.algorithm in ("aes-xcbc", "aes-cmac")

    def compute(self, key: bytes, data: bytes) -> bytes:
        """prf(key, data)."""
        key, data = bytes(key), bytes(data)
        if self.algorithm.startswith("hmac-"):
            return hmac_digest(self.algorithm[5:], key, data)
        if self.algorithm == "aes-xcbc":
            if len(key) < 16:
                key = key + bytes(16 - len(key))
            return xcbc_digest(_aes_prf_key(key, xcbc_digest), data)
        if self.algorithm == "aes-cmac":
            return cmac_digest(_aes_prf_key(key, cmac_digest), data)
        raise UnsupportedAlgorithm(f"PRF algorithm {self.algorithm!r} is not supported")


def _aes_prf_key(key: bytes, mac: Callable[[bytes, bytes], bytes]) -> bytes:
    """A 16-octet key is used as is; any other is reduced to MAC(0^128, key)."""
    if len(key) == 16:
        return key
    return mac(bytes(16), key)


_SPECS: dict[int, PrfSpec] = {
    PrfId.HMAC_SHA1: PrfSpec(PrfId.HMAC_SHA1, 20, 20, "hmac-sha1"),
    PrfId.AES128_XCBC: PrfSpec(PrfId.AES128_XCBC, 16, 16, "aes-xcbc"),
    PrfId.HMAC_SHA2_256: PrfSpec(PrfId.HMAC_SHA2_256, 32, 32, "hmac-sha256"),
    PrfId.HMAC_SHA2_384: PrfSpec(PrfId.HMAC_SHA2_384, 48, 48, "hmac-sha384"),
    PrfId.HMAC_SHA2_512: PrfSpec(PrfId.HMAC_SHA2_512, 64, 64, "hmac-sha512"),
    PrfId.AES128_CMAC: PrfSpec(PrfId.AES128_CMAC, 16, 16, "aes-cmac"),
}


def prf_spec(prf_id: int) -> PrfSpec:
    """The :class:`PrfSpec` for ``prf_id``; :class:`UnsupportedAlgorithm` otherwise."""
    spec = _SPECS.get(int(prf_id))
    if spec is None:
        raise UnsupportedAlgorithm(f"PRF transform {int(prf_id)} is not supported")
    return spec


def prf_plus(prf: PrfSpec, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+ (RFC 7296 §2.13): T1 | T2 | …, Tn = prf(K, Tn-1 | S | n), cut to ``length``."""
    if length < 0:
        raise CryptoError("prf+ length must not be negative")
    blocks = -(-length // prf.output_size)
    if blocks > 255:
        raise CryptoError(f"prf+ cannot produce {length} octets with this PRF (255 blocks max)")
    out = bytearray()
    previous = b""
    for n in range(1, blocks + 1):
        previous = prf.compute(key, previous + bytes(seed) + bytes([n]))
        out += previous
    return bytes(out[:length])
