"""The Encrypted payload body (RFC 7296 §3.14, RFC 5282 §3, RFC 7383 §2.5).

Body = IV | ciphertext | ICV, where the plaintext is payloads | padding | pad length.  With an
AEAD the ICV is the tag and the associated data is the IKE header plus the SK (or SKF) header;
with a cipher and an integrity transform the ICV covers that same header | IV | ciphertext and
is checked, in constant time, before anything is decrypted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import cast

from petrel.crypto.encr import AeadCipher, Cipher, EncrSpec
from petrel.crypto.errors import CryptoError, IntegrityError
from petrel.crypto.integ import Integrity, IntegSpec


class SkCipher:
    """Seal and open SK/SKF bodies with one direction's SK_e (and SK_a) keys."""

    __slots__ = ("_aead", "_cipher", "_icv_size", "_integ", "_random", "encr", "integ")

    def __init__(
        self,
        encr: EncrSpec,
        encr_key: bytes,
        integ: IntegSpec | None = None,
        integ_key: bytes = b"",
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``random`` supplies the IVs (the OS CSPRNG unless a test injects its own)."""
        self.encr = encr
        self._random = random
        self.integ = integ
        keyed = encr.keyed(encr_key)
        self._aead: AeadCipher | None = None
        self._cipher: Cipher | None = None
        self._integ: Integrity | None = None
        if encr.aead:
            if integ is not None:
                raise CryptoError("an AEAD transform takes no integrity transform (RFC 5282 §8)")
            self._aead = cast(AeadCipher, keyed)
            self._icv_size = encr.icv_size
        else:
            if integ is None:
                raise CryptoError("a non-AEAD cipher needs an integrity transform")
            self._cipher = cast(Cipher, keyed)
            self._integ = integ.keyed(integ_key)
            self._icv_size = integ.icv_size

    @property
    def icv_size(self) -> int:
        return self._icv_size

    def _padded_length(self, plaintext_len: int) -> int:
        block = self.encr.block_size
        return -(-(plaintext_len + 1) // block) * block

    def body_length(self, plaintext_len: int) -> int:
        """Octets of the body that :meth:`seal` returns for ``plaintext_len`` octets."""
        return self.encr.iv_size + self._padded_length(plaintext_len) + self._icv_size

    def seal(self, aad: bytes, plaintext: bytes, iv: bytes | None = None) -> bytes:
        """Encrypt ``plaintext`` (the inner payload chain) into IV | ciphertext | ICV.

        ``aad`` is the IKE header plus SK/SKF header, already carrying the final lengths.
        Padding is minimal and zero-filled; the IV is fresh from the injected random source
        unless given.
        """
        if iv is None:
            iv = self._random(self.encr.iv_size)
        elif len(iv) != self.encr.iv_size:
            raise CryptoError(f"IV must be {self.encr.iv_size} octets")
        pad_len = self._padded_length(len(plaintext)) - len(plaintext) - 1
        padded = bytes(plaintext) + bytes(pad_len) + bytes([pad_len])
        if self._aead is not None:
            return bytes(iv) + self._aead.seal(iv, padded, aad)
        assert self._cipher is not None and self._integ is not None
        ciphertext = self._cipher.encrypt(iv, padded)
        icv = self._integ.compute(bytes(aad) + bytes(iv) + ciphertext)
        return bytes(iv) + ciphertext + icv

    def open(self, aad: bytes, body: bytes) -> bytes:
        """Verify and decrypt a body; return the payload chain without padding.

        Raises :class:`IntegrityError` for a bad ICV/tag and :class:`CryptoError` for a body
        whose length or padding is impossible.
        """
        body = bytes(body)
        iv_size, icv_size = self.encr.iv_size, self._icv_size
        if len(body) < iv_size + icv_size + 1:
            raise CryptoError("encrypted payload too short")
        iv = body[:iv_size]
        if self._aead is not None:
            padded = self._aead.open(iv, body[iv_size:], aad)
        else:
            assert self._cipher is not None and self._integ is not None
            cut = len(body) - icv_size
            ciphertext = body[iv_size:cut]
            if not self._integ.verify(bytes(aad) + body[:cut], body[cut:]):
                raise IntegrityError("SK payload ICV mismatch")
            padded = self._cipher.decrypt(iv, ciphertext)
        if not padded:
            raise CryptoError("empty plaintext: no pad length octet")
        pad_len = padded[-1]
        if pad_len + 1 > len(padded):
            raise CryptoError("pad length exceeds the decrypted data")
        return padded[: len(padded) - pad_len - 1]
