"""Exceptions of the public-key side of :mod:`petrel.crypto` (signatures, keys, certificates).

Every failure caused by peer or file input is one of these, never an exception of the
underlying library, so an IKE_AUTH authenticator can answer AUTHENTICATION_FAILED
(RFC 7296 §2.21.2) with a reason it can log.
"""

from __future__ import annotations

from petrel.crypto.errors import CryptoError, UnsupportedAlgorithm


class MalformedInput(CryptoError, ValueError):
    """Bytes that are not a valid encoding: bad DER, bad lengths, truncated AUTH data."""


class UnsupportedSignature(UnsupportedAlgorithm):
    """A signature algorithm, hash, curve or AUTH method Petrel does not implement."""


class KeyMismatch(CryptoError):
    """The key cannot make or check this kind of signature (wrong key type or curve)."""


class BadSignature(CryptoError):
    """The signature does not verify with the given key over the given octets."""


class CredentialError(CryptoError, ValueError):
    """A certificate, key or CRL could not be loaded or is not usable."""


class PassphraseError(CredentialError):
    """An encrypted private key needs a passphrase, or the one given is wrong."""
