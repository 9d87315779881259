"""TCP MSS clamping for inner packets (pure, over bytes).

A TCP SYN or SYN-ACK entering the tunnel has its Maximum Segment Size option (RFC 9293 §3.7.1)
lowered to what fits the tunnel MTU, so TCP through the tunnel never needs fragmentation. The
TCP checksum is patched incrementally (RFC 1624 eqn. 3) rather than recomputed.

Malformed or unrelated packets are returned untouched: this is an optimisation, never a filter.
"""

from __future__ import annotations

IPV4_TCP_OVERHEAD = 40  # IPv4 header (20) + TCP header (20), both without options
IPV6_TCP_OVERHEAD = 60  # IPv6 header (40) + TCP header (20)
_TCP = 6
_SYN = 0x02
_OPT_END, _OPT_NOP, _OPT_MSS = 0, 1, 2
# IPv6 extension headers that may precede TCP and share the (next, hdr-ext-len) layout.
_IPV6_EXT = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_MAX_EXT_HEADERS = 8


def mss_for_mtu(mtu: int, version: int) -> int:
    """Largest MSS whose segments fit in ``mtu`` for an inner IP ``version`` (4 or 6)."""
    return mtu - (IPV4_TCP_OVERHEAD if version == 4 else IPV6_TCP_OVERHEAD)


def clamp_mss(packet: bytes | bytearray, mtu: int) -> bytes | bytearray:
    """Lower the MSS option of a TCP SYN/SYN-ACK in ``packet`` to fit ``mtu``.

    Returns ``packet`` itself when nothing changes, else a new ``bytes`` with the option and the
    TCP checksum rewritten.
    """
    tcp = _tcp_offset(packet)
    if tcp < 0:
        return packet
    n = len(packet)
    if tcp + 20 > n or not packet[tcp + 13] & _SYN:
        return packet
    end = tcp + (packet[tcp + 12] >> 4) * 4
    if end < tcp + 20 or end > n:
        return packet
    limit = mss_for_mtu(mtu, packet[0] >> 4)
    if limit <= 0:
        return packet
    i = tcp + 20
    while i < end:
        kind = packet[i]
        if kind == _OPT_END:
            break
        if kind == _OPT_NOP:
            i += 1
            continue
        if i + 1 >= end:
            break
        olen = packet[i + 1]
        if olen < 2 or i + olen > end:
            break
        if kind == _OPT_MSS and olen == 4:
            if (packet[i + 2] << 8 | packet[i + 3]) <= limit:
                return packet
            return _rewrite(packet, tcp, i + 2, limit)
        i += olen
    return packet


def _tcp_offset(p: bytes | bytearray) -> int:
    """Offset of the TCP header in an unfragmented IPv4/IPv6 packet, or -1."""
    n = len(p)
    if n < 20:
        return -1
    version = p[0] >> 4
    if version == 4:
        ihl = (p[0] & 0x0F) * 4
        # Protocol TCP, and first fragment only (offset 0): later ones carry no TCP header.
        if ihl < 20 or p[9] != _TCP or (p[6] & 0x1F) or p[7]:
            return -1
        return ihl
    if version == 6 and n >= 40:
        nxt, off = p[6], 40
        for _ in range(_MAX_EXT_HEADERS):
            if nxt == _TCP:
                return off
            if nxt not in _IPV6_EXT or off + 8 > n:
                return -1
            nxt, off = p[off], off + (p[off + 1] + 1) * 8
    return -1


def _rewrite(packet: bytes | bytearray, tcp: int, value_at: int, mss: int) -> bytes:
    """Write ``mss`` at ``value_at`` and patch the TCP checksum (RFC 1624 eqn. 3)."""
    out = bytearray(packet)
    # The checksum sums 16-bit words aligned to the TCP header (the pseudo-header is even), so
    # an MSS value at an odd offset straddles two words: patch each word it touches.
    first = tcp + ((value_at - tcp) & ~1)
    last = tcp + ((value_at + 2 - tcp + 1) & ~1)
    old_words = bytes(out[first:last])
    out[value_at] = mss >> 8
    out[value_at + 1] = mss & 0xFF
    csum = out[tcp + 16] << 8 | out[tcp + 17]
    for w in range(0, last - first, 2):
        old = old_words[w] << 8 | old_words[w + 1]
        new = out[first + w] << 8 | out[first + w + 1]
        csum = _csum_replace(csum, old, new)
    out[tcp + 16] = csum >> 8
    out[tcp + 17] = csum & 0xFF
    return bytes(out)


def _csum_replace(hc: int, old: int, new: int) -> int:
    """HC' = ~(~HC + ~m + m') in one's complement arithmetic (RFC 1624 §3)."""
    s = (~hc & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
