"""Encryption transforms (IKEv2 Transform Type 1) for the SK payload and ESP.

Key material for the counter-based and AEAD modes carries a salt after the cipher key, as the
IKEv2/ESP specifications lay it out:

- AES-CTR (RFC 3686, RFC 5930): key | 4-octet nonce; counter block = nonce | IV | counter,
  the counter starting at 1.
- AES-GCM (RFC 4106, RFC 5282): key | 4-octet salt; nonce = salt | IV (8).
- AES-CCM (RFC 4309, RFC 5282): key | 3-octet salt; nonce = salt | IV (8), 11 octets.
- ChaCha20-Poly1305 (RFC 7634): 32-octet key | 4-octet salt; nonce = salt | IV (8).
- AES-GMAC (RFC 4543, ESP only): key | 4-octet salt; nothing is encrypted and the tag covers
  aad | IV | plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher as _LibCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from petrel.crypto.errors import CryptoError, IntegrityError, UnsupportedAlgorithm
from petrel.wire.registry import EncrId

_AES_BITS = (128, 192, 256)


class AeadCipher(Protocol):
    """A keyed combined-mode transform (RFC 5282)."""

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Return ciphertext || ICV."""
        ...

    def open(self, iv: bytes, data: bytes, aad: bytes) -> bytes:
        """Return the plaintext of ciphertext || ICV; raise :class:`IntegrityError`."""
        ...


class Cipher(Protocol):
    """A keyed encryption-only transform; integrity comes from a separate transform."""

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes: ...

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class EncrSpec:
    """Sizes of one encryption transform. ``key_size`` includes the salt (``salt_size``)."""

    id: int
    key_bits: int | None
    key_size: int
    iv_size: int
    icv_size: int
    block_size: int
    aead: bool
    salt_size: int = 0

    def keyed(self, key: bytes) -> AeadCipher | Cipher:
        """Bind ``key`` (cipher key followed by any salt) to this transform."""
        if len(key) != self.key_size:
            raise CryptoError(f"encryption key must be {self.key_size} octets, got {len(key)}")
        return _FACTORIES[self.id](self, bytes(key))


def encr_spec(encr_id: int, key_bits: int | None = None) -> EncrSpec:
    """The :class:`EncrSpec` for ``encr_id`` (AES ids need ``key_bits`` 128/192/256)."""
    eid = int(encr_id)
    if eid == EncrId.NULL:
        if key_bits not in (None, 0):
            raise UnsupportedAlgorithm(f"ENCR_NULL takes no key length, got {key_bits}")
        return EncrSpec(eid, None, 0, 0, 0, 4, False)
    if eid == EncrId.CHACHA20_POLY1305:
        if key_bits not in (None, 256):
            raise UnsupportedAlgorithm(f"ChaCha20-Poly1305 takes no key length, got {key_bits}")
        return EncrSpec(eid, None, 36, 8, 16, 4, True, 4)
    layout = _AES_LAYOUT.get(eid)
    if layout is None:
        raise UnsupportedAlgorithm(f"encryption transform {eid} is not supported")
    if key_bits not in _AES_BITS:
        raise UnsupportedAlgorithm(f"AES key length must be 128, 192 or 256 bits, got {key_bits}")
    salt, iv, icv, block, aead = layout
    return EncrSpec(eid, key_bits, key_bits // 8 + salt, iv, icv, block, aead, salt)


# id -> (salt_size, iv_size, icv_size, block_size, aead)
_AES_LAYOUT: dict[int, tuple[int, int, int, int, bool]] = {
    EncrId.AES_CBC: (0, 16, 0, 16, False),
    EncrId.AES_CTR: (4, 8, 0, 4, False),
    EncrId.AES_CCM_8: (3, 8, 8, 4, True),
    EncrId.AES_CCM_12: (3, 8, 12, 4, True),
    EncrId.AES_CCM_16: (3, 8, 16, 4, True),
    EncrId.AES_GCM_8: (4, 8, 8, 4, True),
    EncrId.AES_GCM_12: (4, 8, 12, 4, True),
    EncrId.AES_GCM_16: (4, 8, 16, 4, True),
    EncrId.NULL_AUTH_AES_GMAC: (4, 8, 16, 4, True),
}


def _check_iv(spec: EncrSpec, iv: bytes) -> None:
    if len(iv) != spec.iv_size:
        raise CryptoError(f"IV must be {spec.iv_size} octets, got {len(iv)}")


def _split_tag(spec: EncrSpec, data: bytes) -> tuple[bytes, bytes]:
    if len(data) < spec.icv_size:
        raise IntegrityError("data shorter than the ICV")
    cut = len(data) - spec.icv_size
    return data[:cut], data[cut:]


class _Null:
    """ENCR_NULL (RFC 2410): the identity transform."""

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        self.spec = spec

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        _check_iv(self.spec, iv)
        return bytes(plaintext)

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        _check_iv(self.spec, iv)
        return bytes(ciphertext)


class _AesCbc:
    """ENCR_AES_CBC (RFC 3602); the caller pads to the 16-octet block."""

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        self.spec = spec
        self._alg = algorithms.AES(key)

    def _cipher(self, iv: bytes) -> _LibCipher[modes.CBC]:
        _check_iv(self.spec, iv)
        return _LibCipher(self._alg, modes.CBC(iv))

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        if len(plaintext) % 16:
            raise CryptoError("AES-CBC plaintext is not a multiple of 16 octets")
        enc = self._cipher(iv).encryptor()
        return enc.update(plaintext) + enc.finalize()

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) % 16:
            raise CryptoError("AES-CBC ciphertext is not a multiple of 16 octets")
        dec = self._cipher(iv).decryptor()
        return dec.update(ciphertext) + dec.finalize()


class _AesCtr:
    """ENCR_AES_CTR (RFC 3686 §4, RFC 5930): counter block = nonce | IV | 0x00000001."""

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        self.spec = spec
        self._alg = algorithms.AES(key[: -spec.salt_size])
        self._nonce = key[-spec.salt_size :]

    def _apply(self, iv: bytes, data: bytes) -> bytes:
        _check_iv(self.spec, iv)
        if len(data) > 16 * 0xFFFFFFFF:
            raise CryptoError("AES-CTR message too long for a 32-bit block counter")
        block = self._nonce + bytes(iv) + b"\x00\x00\x00\x01"
        ctx = _LibCipher(self._alg, modes.CTR(block)).encryptor()
        return ctx.update(data) + ctx.finalize()

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        return self._apply(iv, plaintext)

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        return self._apply(iv, ciphertext)


class _SaltedAead:
    """Shared nonce handling for GCM, CCM and ChaCha20-Poly1305: nonce = salt | IV."""

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        self.spec = spec
        self._salt = key[-spec.salt_size :]
        self._key = key[: -spec.salt_size]

    def _nonce(self, iv: bytes) -> bytes:
        _check_iv(self.spec, iv)
        return self._salt + bytes(iv)


class _LibAead(_SaltedAead):
    """AEADs whose library object takes the full tag length directly."""

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        super().__init__(spec, key)
        if spec.id == EncrId.CHACHA20_POLY1305:
            self._aead: AESGCM | AESCCM | ChaCha20Poly1305 = ChaCha20Poly1305(self._key)
        elif spec.id == EncrId.AES_GCM_16:
            self._aead = AESGCM(self._key)
        else:
            self._aead = AESCCM(self._key, tag_length=spec.icv_size)

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(self._nonce(iv), plaintext, aad)

    def open(self, iv: bytes, data: bytes, aad: bytes) -> bytes:
        nonce = self._nonce(iv)
        if len(data) < self.spec.icv_size:
            raise IntegrityError("data shorter than the ICV")
        try:
            return self._aead.decrypt(nonce, data, aad)
        except InvalidTag:
            raise IntegrityError("AEAD tag mismatch") from None


class _AesGcmShort(_SaltedAead):
    """AES-GCM with an 8- or 12-octet ICV (RFC 4106 §5): the truncated GCM tag."""

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        super().__init__(spec, key)
        self._aead = AESGCM(self._key)
        self._alg = algorithms.AES(self._key)

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        full = self._aead.encrypt(self._nonce(iv), plaintext, aad)
        return full[: len(full) - 16 + self.spec.icv_size]

    def open(self, iv: bytes, data: bytes, aad: bytes) -> bytes:
        nonce = self._nonce(iv)
        ciphertext, tag = _split_tag(self.spec, data)
        mode = modes.GCM(nonce, tag, min_tag_length=self.spec.icv_size)
        dec = _LibCipher(self._alg, mode).decryptor()
        dec.authenticate_additional_data(aad)
        out = dec.update(ciphertext)
        try:
            return out + dec.finalize()
        except InvalidTag:
            raise IntegrityError("AES-GCM tag mismatch") from None


class _Gmac(_SaltedAead):
    """ENCR_NULL_AUTH_AES_GMAC (RFC 4543 §3): authenticate aad | IV | plaintext, encrypt nothing."""

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        super().__init__(spec, key)
        self._aead = AESGCM(self._key)

    def seal(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        tag = self._aead.encrypt(self._nonce(iv), b"", bytes(aad) + bytes(iv) + bytes(plaintext))
        return bytes(plaintext) + tag

    def open(self, iv: bytes, data: bytes, aad: bytes) -> bytes:
        nonce = self._nonce(iv)
        plaintext, tag = _split_tag(self.spec, data)
        try:
            self._aead.decrypt(nonce, tag, bytes(aad) + bytes(iv) + plaintext)
        except InvalidTag:
            raise IntegrityError("AES-GMAC tag mismatch") from None
        return plaintext


_FACTORIES = {
    EncrId.NULL: _Null,
    EncrId.AES_CBC: _AesCbc,
    EncrId.AES_CTR: _AesCtr,
    EncrId.AES_CCM_8: _LibAead,
    EncrId.AES_CCM_12: _LibAead,
    EncrId.AES_CCM_16: _LibAead,
    EncrId.AES_GCM_8: _AesGcmShort,
    EncrId.AES_GCM_12: _AesGcmShort,
    EncrId.AES_GCM_16: _LibAead,
    EncrId.NULL_AUTH_AES_GMAC: _Gmac,
    EncrId.CHACHA20_POLY1305: _LibAead,
}
