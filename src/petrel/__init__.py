"""Petrel: an IKEv2 key-management daemon (RFC 7296) with an ESP data plane (RFC 4303)."""

__version__ = "0.1.0"
