"""UDP encapsulation of ESP and IKE on port 4500 (RFC 3948).

A UDP/4500 payload is one of (RFC 3948 §2.2, §2.3):

* a NAT-keepalive: the single octet ``0xFF``;
* an IKE message, prefixed with the four-octet non-ESP marker (all zero), which is stripped;
* an ESP packet, whose first four octets are its (never zero) SPI.

Anything else (one to three octets, a marker with nothing after it, an "ESP" packet shorter
than SPI and sequence number) is :attr:`UdpKind.INVALID` and must be dropped.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "ESP_MIN_LEN",
    "IKE_MARKER",
    "KEEPALIVE",
    "UdpKind",
    "classify",
    "frame_ike",
    "keepalive",
]

IKE_MARKER = b"\0\0\0\0"
"""Non-ESP marker that precedes IKE messages on port 4500 (RFC 3948 §2.2)."""
KEEPALIVE = b"\xff"
"""NAT-keepalive payload (RFC 3948 §2.3)."""
ESP_MIN_LEN = 8
"""SPI and sequence number: the shortest payload that can be ESP."""


class UdpKind(Enum):
    """What a UDP/4500 payload carries."""

    KEEPALIVE = "keepalive"
    IKE = "ike"
    ESP = "esp"
    INVALID = "invalid"


def classify(payload: bytes | memoryview) -> tuple[UdpKind, memoryview]:
    """Classify a UDP/4500 payload; return its kind and the data for the next layer.

    For IKE the non-ESP marker is stripped; for ESP the payload is returned whole (SPI first).
    """
    view = memoryview(payload)
    n = len(view)
    if n == 1 and view[0] == 0xFF:
        return UdpKind.KEEPALIVE, view[:0]
    if n < 4:
        return UdpKind.INVALID, view
    if view[:4] == IKE_MARKER:
        if n == 4:
            return UdpKind.INVALID, view
        return UdpKind.IKE, view[4:]
    if n < ESP_MIN_LEN:
        return UdpKind.INVALID, view
    return UdpKind.ESP, view


def frame_ike(message: bytes) -> bytes:
    """Prefix an IKE message with the non-ESP marker for sending on port 4500."""
    return IKE_MARKER + message


def keepalive() -> bytes:
    """The NAT-keepalive payload to send every ~20 s from behind a NAT (RFC 3948 §4)."""
    return KEEPALIVE
