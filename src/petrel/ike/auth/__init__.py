"""IKE_AUTH authenticators (RFC 7296 §2.15): one small class per method, behind one seam.

The IKE_AUTH exchange computes the signed octets and hands each authenticator what it needs
(:class:`OwnAuth` to authenticate ourselves, :class:`PeerAuth` to check the peer); the
authenticator answers with payloads, or raises :class:`AuthFailure` with the reason to log.
"""

from .base import Authenticator, AuthFailure, OwnAuth, PeerAuth
from .factory import authenticator_for

__all__ = ["AuthFailure", "Authenticator", "OwnAuth", "PeerAuth", "authenticator_for"]
