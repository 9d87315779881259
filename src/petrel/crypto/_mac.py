"""MAC building blocks shared by :mod:`integ` and :mod:`prf`.

AES-XCBC-MAC (RFC 3566 §4) is composed from AES block operations of the ``cryptography``
package, which has no XCBC primitive; AES-CMAC (RFC 4493) and HMAC come straight from it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

_BLOCK = 16
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """A fresh ``cryptography`` hash object for ``name`` (sha1, sha224, … sha512)."""
    return _HASHES[name]()


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) of ``data`` under ``key``."""
    mac = hmac.HMAC(key, hash_algorithm(hash_name))
    mac.update(data)
    return mac.finalize()


def cmac_digest(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (RFC 4493) of ``data`` under a 16/24/32-octet AES key."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


class Xcbc:
    """AES-XCBC-MAC (RFC 3566 §4) under a 16-octet key, full 128-bit output."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _BLOCK:
            raise ValueError("AES-XCBC-MAC takes a 16-octet key")
        ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        derived = ecb.update(b"\x01" * _BLOCK + b"\x02" * _BLOCK + b"\x03" * _BLOCK)
        self._k1 = derived[:_BLOCK]
        self._k2 = int.from_bytes(derived[_BLOCK : 2 * _BLOCK], "big")
        self._k3 = int.from_bytes(derived[2 * _BLOCK :], "big")
        self._aes = algorithms.AES(self._k1)

    def digest(self, data: bytes) -> bytes:
        """The 16-octet MAC of ``data`` (§4 steps 1-3)."""
        data = bytes(data)
        if data and len(data) % _BLOCK == 0:
            head, last, subkey = data[:-_BLOCK], data[-_BLOCK:], self._k2
        else:
            cut = len(data) - len(data) % _BLOCK
            head, tail = data[:cut], data[cut:]
            last = tail + b"\x80" + bytes(_BLOCK - len(tail) - 1)
            subkey = self._k3
        chain = 0
        if head:
            # CBC with a zero IV over all but the last block: the last output block is E[n-1].
            cbc = Cipher(self._aes, modes.CBC(bytes(_BLOCK))).encryptor()
            chain = int.from_bytes((cbc.update(head) + cbc.finalize())[-_BLOCK:], "big")
        block = (int.from_bytes(last, "big") ^ chain ^ subkey).to_bytes(_BLOCK, "big")
        ecb = Cipher(self._aes, modes.ECB()).encryptor()
        return ecb.update(block) + ecb.finalize()


def xcbc_digest(key: bytes, data: bytes) -> bytes:
    """AES-XCBC-MAC (RFC 3566) of ``data`` under a 16-octet key."""
    return Xcbc(key).digest(data)
