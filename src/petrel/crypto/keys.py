"""Public and private keys for IKE authentication: RSA, ECDSA (P-256/384/521), Ed25519, Ed448.

Keys are loaded from PEM or DER: private keys as PKCS#1 (RSA), SEC1 (EC), PKCS#8 or encrypted
PKCS#8 (RFC 5958) or legacy encrypted PEM; public keys as SubjectPublicKeyInfo (RFC 5280
§4.1.2.7) or PKCS#1 RSAPublicKey. The rest of Petrel sees :class:`PublicKey` and
:class:`PrivateKey`, small frozen values; the library objects stay inside this package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm as _LibUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from petrel.crypto import der
from petrel.crypto.pki_errors import CredentialError, PassphraseError

__all__ = [
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "generate_private_key",
    "load_private_key",
    "load_public_key",
]

_PEM = serialization.Encoding.PEM
_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


class KeyType(StrEnum):
    """Key types as strongSwan names them in ``auth`` constraints and ``pki --type``."""

    RSA = "rsa"
    ECDSA = "ecdsa"
    ED25519 = "ed25519"
    ED448 = "ed448"


_CURVES: dict[str, tuple[int, str]] = {
    "secp256r1": (256, "P-256"),
    "secp384r1": (384, "P-384"),
    "secp521r1": (521, "P-521"),
}
_CURVE_BY_BITS = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}


def _describe(key: Any) -> tuple[KeyType, int, str | None]:
    """Key type, strength in bits (as strongSwan counts it) and curve name."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return KeyType.RSA, key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        known = _CURVES.get(key.curve.name)
        if known is None:
            raise CredentialError(f"unsupported elliptic curve {key.curve.name}")
        return KeyType.ECDSA, known[0], known[1]
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return KeyType.ED25519, 256, None
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return KeyType.ED448, 456, None
    raise CredentialError(f"unsupported key type {type(key).__name__}")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key: type, size, curve and its SubjectPublicKeyInfo DER (identity of the key)."""

    key_type: KeyType
    bits: int
    curve: str | None
    spki: bytes
    _key: Any = field(repr=False, compare=False, hash=False)

    @classmethod
    def _wrap(cls, key: Any) -> PublicKey:
        key_type, bits, curve = _describe(key)
        return cls(key_type, bits, curve, key.public_bytes(_DER, _SPKI), key)

    @property
    def spki_sha1(self) -> bytes:
        """SHA-1 of the whole SubjectPublicKeyInfo: the CERTREQ key ID (RFC 7296 §3.7)."""
        return hashlib.sha1(self.spki).digest()

    @property
    def pubkey_sha1(self) -> bytes:
        """SHA-1 of the subjectPublicKey BIT STRING value (RFC 5280 §4.2.1.2 method 1)."""
        bits = der.read_one(self.spki).children()[1].expect(der.BIT_STRING, "subjectPublicKey")
        return hashlib.sha1(bits.value[1:]).digest()

    def pem(self) -> bytes:
        return self._key.public_bytes(_PEM, _SPKI)

    def describe(self) -> str:
        """``RSA 3072 bits``, ``ECDSA 256 bits (P-256)``, ``ED25519 256 bits``."""
        text = f"{self.key_type.value.upper()} {self.bits} bits"
        return f"{text} ({self.curve})" if self.curve else text


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A private key and its public half."""

    key_type: KeyType
    bits: int
    public: PublicKey
    _key: Any = field(repr=False, compare=False, hash=False)

    @classmethod
    def _wrap(cls, key: Any) -> PrivateKey:
        key_type, bits, _ = _describe(key)
        return cls(key_type, bits, PublicKey._wrap(key.public_key()), key)

    def pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted with the library's best scheme if a passphrase is given."""
        return self._encode(_PEM, passphrase)

    def der(self, passphrase: bytes | None = None) -> bytes:
        return self._encode(_DER, passphrase)

    def _encode(self, encoding: serialization.Encoding, passphrase: bytes | None) -> bytes:
        algorithm: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, algorithm)

    def __repr__(self) -> str:
        return f"PrivateKey({self.public.describe()})"


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data[:4096]


def load_private_key(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """A private key from PEM or DER (PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 or PEM)."""
    data = bytes(data)
    loader = (
        serialization.load_pem_private_key if _is_pem(data) else serialization.load_der_private_key
    )
    try:
        key = loader(data, password=passphrase or None)
    except TypeError as exc:
        if "encrypted" in str(exc).lower() or "password" in str(exc).lower():
            raise PassphraseError("private key is encrypted: a passphrase is needed") from None
        raise CredentialError(f"unusable private key: {exc}") from None
    except ValueError as exc:
        # A wrong passphrase usually fails the padding check, but now and then decrypts to
        # garbage that then fails to parse: for an encrypted key both mean the passphrase.
        if passphrase and (
            "decrypt" in str(exc).lower()
            or "password" in str(exc).lower()
            or _is_encrypted(loader, data)
        ):
            raise PassphraseError("wrong passphrase for encrypted private key") from None
        raise CredentialError("not a private key in PEM or DER form") from None
    except _LibUnsupported as exc:
        raise CredentialError(f"unsupported private key: {exc}") from None
    return PrivateKey._wrap(key)


def _is_encrypted(loader: Any, data: bytes) -> bool:
    """Does ``data`` hold an encrypted private key (one that needs a passphrase)?"""
    try:
        loader(data, password=None)
    except TypeError:
        return True  # "Password was not given but private key is encrypted"
    except (ValueError, _LibUnsupported):
        return False
    return False


def load_public_key(data: bytes) -> PublicKey:
    """A public key from PEM or DER (SubjectPublicKeyInfo or PKCS#1 RSAPublicKey)."""
    data = bytes(data)
    try:
        if _is_pem(data):
            key = serialization.load_pem_public_key(data)
        else:
            try:
                key = serialization.load_der_public_key(data)
            except ValueError:
                key = serialization.load_der_public_key(_pkcs1_to_spki(data))
    except (ValueError, TypeError, _LibUnsupported, CredentialError):
        raise CredentialError("not a public key in PEM or DER form") from None
    return PublicKey._wrap(key)


def _pkcs1_to_spki(data: bytes) -> bytes:
    """Wrap a DER RSAPublicKey (RFC 8017 §A.1.1) into a SubjectPublicKeyInfo."""
    try:
        der.read_one(data).expect(der.SEQUENCE)
    except ValueError:
        raise CredentialError("not a public key") from None
    algorithm = der.tlv(
        der.SEQUENCE, der.encode_oid("1.2.840.113549.1.1.1") + der.tlv(der.NULL, b"")
    )
    return der.tlv(der.SEQUENCE, algorithm + der.tlv(der.BIT_STRING, b"\x00" + data))


def public_key_from_library(key: Any) -> PublicKey:
    """Wrap a library public key (for petrel.crypto's own modules only)."""
    return PublicKey._wrap(key)


def generate_private_key(key_type: KeyType | str, bits: int | None = None) -> PrivateKey:
    """A new key: RSA (default 2048 bits, at least 2048), ECDSA (256/384/521, default 384,
    as ``pki --gen``), Ed25519 or Ed448 (no size)."""
    key_type = KeyType(key_type)
    if key_type is KeyType.RSA:
        size = bits or 2048
        if size < 2048 or size > 16384:
            raise CredentialError(f"RSA key size {size} out of range (2048..16384)")
        return PrivateKey._wrap(rsa.generate_private_key(public_exponent=65537, key_size=size))
    if key_type is KeyType.ECDSA:
        curve = _CURVE_BY_BITS.get(bits or 384)
        if curve is None:
            raise CredentialError(f"ECDSA key size {bits} not supported (256, 384 or 521)")
        return PrivateKey._wrap(ec.generate_private_key(curve()))
    if bits:
        raise CredentialError(f"{key_type.value} keys have a fixed size")
    if key_type is KeyType.ED25519:
        return PrivateKey._wrap(ed25519.Ed25519PrivateKey.generate())
    return PrivateKey._wrap(ed448.Ed448PrivateKey.generate())
