"""Inner IP packet checks for tunnel-mode ESP (RFC 4303 §2.6, §2.7, RFC 4301 §5.1).

The decrypted payload of a tunnel-mode SA is a whole IP packet, possibly followed by TFC
padding (§2.7) that the receiver removes using the inner packet's own length field.
"""

from __future__ import annotations

__all__ = [
    "NH_DUMMY",
    "NH_IPV4",
    "NH_IPV6",
    "inner_length",
    "next_header_for",
]

NH_IPV4 = 4
"""Next Header value for an IPv4 inner packet (IP-in-IP)."""
NH_IPV6 = 41
"""Next Header value for an IPv6 inner packet."""
NH_DUMMY = 59
"""Next Header of a dummy packet (RFC 4303 §2.6): "no next header", discarded on receipt."""

_IPV4_MIN = 20
_IPV6_HDR = 40


def next_header_for(packet: bytes | memoryview) -> int | None:
    """The ESP Next Header for an inner IP packet, from its version nibble (None if neither)."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        return NH_IPV4
    if version == 6:
        return NH_IPV6
    return None


def inner_length(
    packet: bytes | memoryview, next_header: int, available: int | None = None
) -> int | None:
    """Length of the inner IP packet per its own header, or ``None`` if it is malformed.

    Checks that the version nibble matches ``next_header`` and that the header's length field
    fits in the first ``available`` octets of ``packet`` (default: all of it); any octets
    beyond that length are TFC padding to be trimmed.
    IPv6 jumbograms (payload length 0, RFC 2675) are not supported and read as 40 octets.
    """
    n = len(packet) if available is None else min(available, len(packet))
    if next_header == NH_IPV4:
        if n < _IPV4_MIN or packet[0] >> 4 != 4:
            return None
        ihl = (packet[0] & 0x0F) * 4
        total = (packet[2] << 8) | packet[3]
        if ihl < _IPV4_MIN or total < ihl or total > n:
            return None
        return total
    if next_header == NH_IPV6:
        if n < _IPV6_HDR or packet[0] >> 4 != 6:
            return None
        total = _IPV6_HDR + ((packet[4] << 8) | packet[5])
        if total > n:
            return None
        return total
    return None
