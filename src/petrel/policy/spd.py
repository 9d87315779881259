"""A small Security Policy Database (RFC 4301 §4.4.1) for the userspace data path.

Entries pair local and remote selectors with an opaque, hashable *handle* (the Child SA, or
whatever the caller installs).  Outbound lookup returns the handle of the first entry (in
order) whose selectors cover the packet; inbound, a decrypted packet must fall under the
selectors of the SA it arrived on (RFC 4301 §5.2, step 4).

Every packet goes through here, so addresses stay packed ``bytes`` (big-endian bytes of one
length compare exactly like the integers they encode) and each selector is precomputed into a
flat tuple.  :func:`packet_selector_fields` extracts the fields from a raw IP packet.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from .selectors import Selector

__all__ = ["Spd", "SpdEntry", "packet_selector_fields"]

# (low address, high address, protocol or 0, low port, high port); OPAQUE becomes 0..0 because
# packet_selector_fields reports "no port information" as port 0.
_Rule = tuple[bytes, bytes, int, int, int]

_PORT_PROTOCOLS = frozenset((6, 17, 33, 132, 136))  # TCP, UDP, DCCP, SCTP, UDP-Lite
_ICMP_PROTOCOLS = frozenset((1, 58))
_IPV6_SKIPPABLE = frozenset((0, 43, 60))  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_MAX_EXTENSION_HEADERS = 8
_PORTS = struct.Struct("!HH")
_IPV4_FIELDS = struct.Struct("!6xHxB2x4s4s")  # flags+fragment offset, protocol, source, dest


def _rule(sel: Selector) -> _Rule:
    if sel.dynamic:
        raise ValueError("resolve dynamic selectors before installing them in the SPD")
    low, high = (0, 0) if sel.is_opaque else (sel.start_port, sel.end_port)
    return (sel.start.packed, sel.end.packed, sel.protocol, low, high)


def _to_packed(addr: bytes | IPv4Address | IPv6Address | str) -> bytes:
    if type(addr) is bytes:
        return addr
    if isinstance(addr, str):
        return ip_address(addr).packed
    if isinstance(addr, IPv4Address | IPv6Address):
        return addr.packed
    return bytes(addr)


def _hit(rules: tuple[_Rule, ...], addr: bytes, proto: int, port: int) -> bool:
    size = len(addr)
    for low, high, rule_proto, port_low, port_high in rules:
        if (
            len(low) == size
            and low <= addr <= high
            and (rule_proto == 0 or rule_proto == proto)
            and port_low <= port <= port_high
        ):
            return True
    return False


@dataclass(frozen=True, slots=True)
class SpdEntry:
    """One policy: traffic from ``local`` to ``remote`` is protected by ``handle``."""

    local: tuple[Selector, ...]
    remote: tuple[Selector, ...]
    handle: Hashable
    local_rules: tuple[_Rule, ...]
    remote_rules: tuple[_Rule, ...]


class Spd:
    """An ordered list of :class:`SpdEntry`; first match wins."""

    def __init__(self) -> None:
        self._entries: list[SpdEntry] = []
        self._by_handle: dict[Hashable, SpdEntry] = {}

    def add(
        self,
        local: Iterable[Selector],
        remote: Iterable[Selector],
        handle: Hashable,
        *,
        index: int | None = None,
    ) -> SpdEntry:
        """Install a policy (appended, or inserted at ``index``); replaces one with the same
        handle.  Raises ValueError for unresolved ``dynamic`` selectors."""
        local_t, remote_t = tuple(local), tuple(remote)
        entry = SpdEntry(
            local_t,
            remote_t,
            handle,
            tuple(_rule(s) for s in local_t),
            tuple(_rule(s) for s in remote_t),
        )
        self.remove(handle)
        if index is None:
            self._entries.append(entry)
        else:
            self._entries.insert(index, entry)
        self._by_handle[handle] = entry
        return entry

    def remove(self, handle: Hashable) -> bool:
        entry = self._by_handle.pop(handle, None)
        if entry is None:
            return False
        self._entries.remove(entry)
        return True

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> Sequence[SpdEntry]:
        return tuple(self._entries)

    def lookup_outbound(
        self,
        src: bytes | IPv4Address | IPv6Address | str,
        dst: bytes | IPv4Address | IPv6Address | str,
        proto: int,
        sport: int,
        dport: int,
    ) -> Hashable | None:
        """The handle protecting a packet from ``src`` (local) to ``dst`` (remote), or None."""
        src_p, dst_p = _to_packed(src), _to_packed(dst)
        for entry in self._entries:
            if _hit(entry.local_rules, src_p, proto, sport) and _hit(
                entry.remote_rules, dst_p, proto, dport
            ):
                return entry.handle
        return None

    def check_inbound(
        self,
        handle: Hashable,
        src: bytes | IPv4Address | IPv6Address | str,
        dst: bytes | IPv4Address | IPv6Address | str,
        proto: int,
        sport: int,
        dport: int,
    ) -> bool:
        """Is a packet from ``src`` (remote) to ``dst`` (local) that arrived on ``handle``'s SA
        within that SA's selectors?  False for an unknown handle."""
        entry = self._by_handle.get(handle)
        if entry is None:
            return False
        return _hit(entry.remote_rules, _to_packed(src), proto, sport) and _hit(
            entry.local_rules, _to_packed(dst), proto, dport
        )


def packet_selector_fields(
    packet: bytes | bytearray | memoryview,
) -> tuple[bytes, bytes, int, int, int]:
    """``(src, dst, protocol, sport, dport)`` of a raw IPv4 or IPv6 packet.

    Addresses are packed bytes (4 or 16 octets).  Ports come from TCP, UDP, DCCP, SCTP and
    UDP-Lite; for ICMP/ICMPv6 both "ports" are ``type << 8 | code`` (RFC 7296 §3.13.1); other
    protocols and non-first fragments give ports 0.  IPv6 hop-by-hop, routing, destination
    options and fragment headers are skipped.  Raises ValueError (only) for a packet that is
    not IPv4/IPv6, or is truncated before the fields needed.
    """
    size = len(packet)
    if size < 1:
        raise ValueError("empty packet")
    version = packet[0] >> 4
    if version == 4:
        if size < 20:
            raise ValueError("truncated IPv4 header")
        offset = (packet[0] & 0x0F) * 4
        if offset < 20 or offset > size:
            raise ValueError("bad IPv4 header length")
        fragment, proto, src, dst = _IPV4_FIELDS.unpack_from(packet)
        if fragment & 0x1FFF:  # non-first fragment: no transport header
            return src, dst, proto, 0, 0
    elif version == 6:
        if size < 40:
            raise ValueError("truncated IPv6 header")
        src, dst = bytes(packet[8:24]), bytes(packet[24:40])
        proto = packet[6]
        offset = 40
        for _ in range(_MAX_EXTENSION_HEADERS):
            if proto in _IPV6_SKIPPABLE:
                if offset + 2 > size:
                    raise ValueError("truncated IPv6 extension header")
                proto, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
            elif proto == _IPV6_FRAGMENT:
                if offset + 8 > size:
                    raise ValueError("truncated IPv6 fragment header")
                proto = packet[offset]
                if (packet[offset + 2] << 8 | packet[offset + 3]) & 0xFFF8:
                    return src, dst, proto, 0, 0
                offset += 8
            else:
                break
        else:
            raise ValueError("too many IPv6 extension headers")
    else:
        raise ValueError(f"not an IP packet (version {version})")
    if proto in _PORT_PROTOCOLS:
        if offset + 4 > size:
            raise ValueError("truncated transport header")
        sport, dport = _PORTS.unpack_from(packet, offset)
        return src, dst, proto, sport, dport
    if proto in _ICMP_PROTOCOLS:
        if offset + 2 > size:
            raise ValueError("truncated ICMP header")
        type_code = packet[offset] << 8 | packet[offset + 1]
        return src, dst, proto, type_code, type_code
    return src, dst, proto, 0, 0
