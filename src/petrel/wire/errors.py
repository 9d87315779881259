"""The one exception the wire decoder raises (RFC 7296 §2.21: errors answered with a notify)."""

from __future__ import annotations

from .registry import NotifyType, name_of


class DecodeError(Exception):
    """A message or payload chain that cannot be decoded.

    ``notify`` is the error notify RFC 7296 prescribes for it (INVALID_SYNTAX,
    UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION).  ``payload_type`` names the payload the
    problem was found in: for UNSUPPORTED_CRITICAL_PAYLOAD it is the unknown type that goes into
    the notify's data (§3.10.1); for other errors it is diagnostic only and may be None.
    """

    def __init__(self, notify: NotifyType, detail: str, payload_type: int | None = None) -> None:
        super().__init__(notify, detail, payload_type)
        self.notify = notify
        self.detail = detail
        self.payload_type = payload_type

    def __str__(self) -> str:
        where = "" if self.payload_type is None else f" (payload type {self.payload_type})"
        return f"{name_of(self.notify, NotifyType)}: {self.detail}{where}"
