"""IKE identities (RFC 7296 §3.5) and strongSwan's text form of them.

Text rules, as strongSwan reads ``id = …``:

- ``%any``, ``%any6``, ``*``, ``0.0.0.0``, ``::`` or empty: any identity (type 0, matches all);
- a prefix picks the type: ``ipv4:`` ``ipv6:`` ``rfc822:`` ``email:`` ``userfqdn:`` ``fqdn:``
  ``dns:`` ``keyid:`` (``keyid:#hex`` for binary key IDs);
- otherwise an IPv4/IPv6 literal is an address; text with ``=`` is a distinguished name (not
  supported yet); text with ``@`` is an RFC 822 address unless it starts with ``@``: ``@host``
  is the FQDN ``host``, ``@#hex`` a key ID and ``@@user`` the RFC 822 address ``user``;
- anything else is an FQDN.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from petrel.wire.registry import IdType

__all__ = ["ID_ANY", "Identity", "UnsupportedIdentity"]

ID_ANY = 0
_ANY_TEXTS = frozenset(("", "%any", "%any6", "*", "0.0.0.0", "::", "0::0"))
_PREFIXES: dict[str, IdType] = {
    "ipv4:": IdType.IPV4_ADDR,
    "ipv6:": IdType.IPV6_ADDR,
    "rfc822:": IdType.RFC822_ADDR,
    "email:": IdType.RFC822_ADDR,
    "userfqdn:": IdType.RFC822_ADDR,
    "fqdn:": IdType.FQDN,
    "dns:": IdType.FQDN,
    "keyid:": IdType.KEY_ID,
}
_UNSUPPORTED_PREFIXES = ("asn1dn:", "asn1gn:", "md5:", "sha1:", "ldap:")


class UnsupportedIdentity(ValueError):
    """The identity is valid strongSwan syntax of a kind Petrel does not handle yet."""


def _ipv4(text: str) -> bytes | None:
    try:
        return IPv4Address(text).packed
    except ValueError:
        return None


def _ipv6(text: str) -> bytes | None:
    try:
        return IPv6Address(text).packed
    except ValueError:
        return None


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"invalid hex key ID '{text}'") from None


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity as carried in IDi/IDr: ID type and identification data."""

    id_type: IdType | int
    data: bytes

    @classmethod
    def any(cls) -> Identity:
        return cls(ID_ANY, b"")

    @property
    def is_any(self) -> bool:
        return self.id_type == ID_ANY

    @classmethod
    def parse(cls, text: str) -> Identity:
        """Parse strongSwan identity text; ValueError (or UnsupportedIdentity) if unusable."""
        text = text.strip()
        lowered = text.lower()
        for prefix, id_type in _PREFIXES.items():
            if lowered.startswith(prefix):
                return cls._typed(id_type, text[len(prefix) :])
        if lowered.startswith(_UNSUPPORTED_PREFIXES):
            raise UnsupportedIdentity(f"identity '{text}': this type is not supported yet")
        if text in _ANY_TEXTS:
            return cls.any()
        if "=" in text:
            raise UnsupportedIdentity(f"distinguished name '{text}' is not supported yet")
        if "@" not in text:
            packed = _ipv4(text) if ":" not in text else _ipv6(text)
            if packed is not None:
                return cls(IdType.IPV4_ADDR if len(packed) == 4 else IdType.IPV6_ADDR, packed)
            return cls(IdType.FQDN, text.encode())
        if text.startswith("@#"):
            return cls._typed(IdType.KEY_ID, text[1:])
        if text.startswith("@@"):
            return cls._typed(IdType.RFC822_ADDR, text[2:])
        if text.startswith("@"):
            return cls._typed(IdType.FQDN, text[1:])
        return cls(IdType.RFC822_ADDR, text.encode())

    @classmethod
    def _typed(cls, id_type: IdType, value: str) -> Identity:
        if id_type == IdType.IPV4_ADDR:
            packed = _ipv4(value)
            if packed is None:
                raise ValueError(f"invalid IPv4 address '{value}'")
            return cls(id_type, packed)
        if id_type == IdType.IPV6_ADDR:
            packed = _ipv6(value)
            if packed is None:
                raise ValueError(f"invalid IPv6 address '{value}'")
            return cls(id_type, packed)
        if id_type == IdType.KEY_ID:
            data = _hex(value[1:]) if value.startswith("#") else value.encode()
        else:
            data = value.encode()
        if not data:
            raise ValueError("empty identity")
        return cls(id_type, data)

    def __str__(self) -> str:
        kind, data = self.id_type, self.data
        if kind == ID_ANY:
            return "%any"
        if kind == IdType.IPV4_ADDR and len(data) == 4:
            return str(IPv4Address(data))
        if kind == IdType.IPV6_ADDR and len(data) == 16:
            return str(IPv6Address(data))
        if kind == IdType.KEY_ID:
            return "@#" + data.hex()
        if kind in (IdType.FQDN, IdType.RFC822_ADDR):
            text = data.decode("utf-8", "backslashreplace")
            if Identity._reparses(kind, text):
                return text
            return ("fqdn:" if kind == IdType.FQDN else "rfc822:") + text
        return f"{int(kind)}:#{data.hex()}"

    @staticmethod
    def _reparses(kind: IdType | int, text: str) -> bool:
        try:
            return Identity.parse(text) == Identity(kind, text.encode())
        except ValueError:
            return False

    def matches(self, other: Identity | None) -> bool:
        """Does ``other`` (a peer's identity) satisfy ``self`` (a configured identity)?

        ``%any`` matches everything; ``*.example`` / ``*@example`` match by suffix; otherwise
        type and data must be equal.
        """
        if self.id_type == ID_ANY:
            return True
        if other is None or other.id_type != self.id_type:
            return False
        if self.id_type in (IdType.FQDN, IdType.RFC822_ADDR) and self.data.startswith(b"*"):
            return other.data.endswith(self.data[1:])
        return other.data == self.data
