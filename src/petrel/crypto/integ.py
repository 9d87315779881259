"""Integrity transforms (IKEv2 Transform Type 3): truncated MACs.

HMAC-SHA1-96 (RFC 2404), AES-XCBC-MAC-96 (RFC 3566), AES-CMAC-96 (RFC 4494) and
HMAC-SHA2-256-128 / -384-192 / -512-256 (RFC 4868).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import constant_time, hmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from petrel.crypto._mac import Xcbc, hash_algorithm
from petrel.crypto.errors import CryptoError, UnsupportedAlgorithm
from petrel.wire.registry import IntegId


@dataclass(frozen=True, slots=True)
class IntegSpec:
    """Key and ICV sizes (octets) of one integrity transform."""

    id: int
    key_size: int
    icv_size: int

    def keyed(self, key: bytes) -> Integrity:
        """Bind ``key`` (exactly ``key_size`` octets, RFC 7296 §2.14)."""
        if len(key) != self.key_size:
            raise CryptoError(f"integrity key must be {self.key_size} octets, got {len(key)}")
        return Integrity(self, _MAC_FACTORIES[self.id](bytes(key)))


class Integrity:
    """A keyed integrity transform: :meth:`compute` and constant-time :meth:`verify`."""

    __slots__ = ("_mac", "spec")

    def __init__(self, spec: IntegSpec, mac: Callable[[bytes], bytes]) -> None:
        self.spec = spec
        self._mac = mac

    def compute(self, data: bytes) -> bytes:
        """The truncated ICV of ``data``."""
        return self._mac(data)[: self.spec.icv_size]

    def verify(self, data: bytes, icv: bytes) -> bool:
        """True when ``icv`` is the ICV of ``data`` (compared in constant time)."""
        if len(icv) != self.spec.icv_size:
            return False
        return constant_time.bytes_eq(self.compute(data), bytes(icv))


def _hmac_factory(hash_name: str) -> Callable[[bytes], Callable[[bytes], bytes]]:
    def make(key: bytes) -> Callable[[bytes], bytes]:
        base = hmac.HMAC(key, hash_algorithm(hash_name))

        def mac(data: bytes) -> bytes:
            ctx = base.copy()
            ctx.update(data)
            return ctx.finalize()

        return mac

    return make


def _cmac_factory(key: bytes) -> Callable[[bytes], bytes]:
    base = CMAC(algorithms.AES(key))

    def mac(data: bytes) -> bytes:
        ctx = base.copy()
        ctx.update(data)
        return ctx.finalize()

    return mac


def _xcbc_factory(key: bytes) -> Callable[[bytes], bytes]:
    return Xcbc(key).digest


_MAC_FACTORIES: dict[int, Callable[[bytes], Callable[[bytes], bytes]]] = {
    IntegId.HMAC_SHA1_96: _hmac_factory("sha1"),
    IntegId.AES_XCBC_96: _xcbc_factory,
    IntegId.AES_CMAC_96: _cmac_factory,
    IntegId.HMAC_SHA2_256_128: _hmac_factory("sha256"),
    IntegId.HMAC_SHA2_384_192: _hmac_factory("sha384"),
    IntegId.HMAC_SHA2_512_256: _hmac_factory("sha512"),
}

_SPECS: dict[int, IntegSpec] = {
    IntegId.HMAC_SHA1_96: IntegSpec(IntegId.HMAC_SHA1_96, 20, 12),
    IntegId.AES_XCBC_96: IntegSpec(IntegId.AES_XCBC_96, 16, 12),
    IntegId.AES_CMAC_96: IntegSpec(IntegId.AES_CMAC_96, 16, 12),
    IntegId.HMAC_SHA2_256_128: IntegSpec(IntegId.HMAC_SHA2_256_128, 32, 16),
    IntegId.HMAC_SHA2_384_192: IntegSpec(IntegId.HMAC_SHA2_384_192, 48, 24),
    IntegId.HMAC_SHA2_512_256: IntegSpec(IntegId.HMAC_SHA2_512_256, 64, 32),
}


def integ_spec(integ_id: int) -> IntegSpec:
    """The :class:`IntegSpec` for ``integ_id``; :class:`UnsupportedAlgorithm` otherwise."""
    spec = _SPECS.get(int(integ_id))
    if spec is None:
        raise UnsupportedAlgorithm(f"integrity transform {int(integ_id)} is not supported")
    return spec
