"""Exceptions raised by :mod:`petrel.crypto`.

Every failure caused by peer input maps to one of these, never to an exception of the
underlying library, so the IKE and ESP engines can answer as the RFCs prescribe.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class: a cryptographic operation failed (bad length, bad padding, …)."""


class IntegrityError(CryptoError):
    """An ICV or AEAD tag did not verify (RFC 7296 §3.14: the message must be dropped)."""


class InvalidPublicValue(CryptoError):
    """A peer's key-exchange value failed validation (RFC 6989, RFC 7296 §3.4)."""


class UnsupportedAlgorithm(CryptoError):
    """A transform ID, key length or group this implementation does not provide."""


class ProposalError(CryptoError, ValueError):
    """A proposal string could not be parsed; ``keyword`` names the offending part."""

    def __init__(self, keyword: str, detail: str = "") -> None:
        self.keyword = keyword
        self.detail = detail
        super().__init__(f"{detail or 'invalid proposal keyword'}: {keyword!r}")
