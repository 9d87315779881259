"""Capture reading for ``petrel decode``: pcap, pcapng or hex lines → IKE / ESP / keepalive.

Link layers: Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1 and v2, raw IP, BSD
loopback.  IPv4 and IPv6 (extension headers walked; fragments are not reassembled).  IP
protocol 50 is ESP.  UDP 500 carries IKE; UDP 4500 carries IKE behind the 4-octet non-ESP
marker, ESP otherwise, or a 1-octet 0xFF NAT keepalive (RFC 3948 §2.2-§2.3).  Every header is
bounds-checked: a packet that does not parse is skipped, never raised.
"""

from __future__ import annotations

import io
import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

import dpkt

IKE_PORT = 500
NAT_T_PORT = 4500
NON_ESP_MARKER = b"\x00\x00\x00\x00"

Kind = Literal["ike", "esp", "keepalive"]

# LINKTYPE_* values as stored in files (tcpdump.org link-layer header types).
_LT_NULL = 0
_LT_ETHERNET = 1
_LT_RAW = (101, 12, 14)
_LT_LOOP = 108
_LT_SLL = 113
_LT_IPV4 = 228
_LT_IPV6 = 229
_LT_SLL2 = 276

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = (0x8100, 0x88A8, 0x9100)

_IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options
_IPV6_FRAG = 44
_UDP = 17
_ESP = 50


class CaptureError(Exception):
    """The capture file as a whole cannot be read (unknown format, truncated header)."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """One IKE message, ESP packet or keepalive found in a capture.

    ``data`` is the IKE message without the non-ESP marker, or the ESP packet (SPI onwards).
    Address fields are None for hex input, which carries no lower layers.
    """

    frame: int
    time: float | None
    src: str | None
    dst: str | None
    sport: int | None
    dport: int | None
    kind: Kind
    data: bytes
    note: str = ""


def classify_udp(sport: int | None, dport: int | None, payload: bytes) -> tuple[Kind, bytes] | None:
    """Sort a UDP payload into IKE / ESP / keepalive by port and first octets, or None."""
    ports = {sport, dport}
    if NAT_T_PORT in ports:
        if payload == b"\xff":
            return "keepalive", payload
        if payload.startswith(NON_ESP_MARKER):
            return "ike", payload[4:]
        if len(payload) >= 8:
            return "esp", payload
        return None
    if IKE_PORT in ports:
        return "ike", payload
    return None


def _ipv4(buf: bytes) -> tuple[str, str, int, bytes] | None:
    if len(buf) < 20 or buf[0] >> 4 != 4:
        return None
    ihl = (buf[0] & 0x0F) * 4
    total = struct.unpack_from("!H", buf, 2)[0]
    flags_frag = struct.unpack_from("!H", buf, 6)[0]
    if ihl < 20 or total < ihl or len(buf) < ihl:
        return None
    if flags_frag & 0x3FFF:  # a fragment (MF set or non-zero offset): not reassembled
        return None
    end = min(total, len(buf))
    src = str(ipaddress.IPv4Address(buf[12:16]))
    dst = str(ipaddress.IPv4Address(buf[16:20]))
    return src, dst, buf[9], buf[ihl:end]


def _ipv6(buf: bytes) -> tuple[str, str, int, bytes] | None:
    if len(buf) < 40 or buf[0] >> 4 != 6:
        return None
    plen = struct.unpack_from("!H", buf, 4)[0]
    nxt = buf[6]
    src = str(ipaddress.IPv6Address(buf[8:24]))
    dst = str(ipaddress.IPv6Address(buf[24:40]))
    body = buf[40 : 40 + plen]
    while nxt in _IPV6_EXT:
        if len(body) < 8:
            return None
        nxt, hlen = body[0], (body[1] + 1) * 8
        if len(body) < hlen:
            return None
        body = body[hlen:]
    if nxt == _IPV6_FRAG:
        return None
    return src, dst, nxt, body


def _ip(buf: bytes) -> tuple[str, str, int, bytes] | None:
    if not buf:
        return None
    version = buf[0] >> 4
    if version == 4:
        return _ipv4(buf)
    if version == 6:
        return _ipv6(buf)
    return None


def _l3(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet inside one link-layer frame, or None."""
    if linktype == _LT_ETHERNET:
        if len(frame) < 14:
            return None
        ethertype, off = struct.unpack_from("!H", frame, 12)[0], 14
        while ethertype in _ETH_VLAN:
            if len(frame) < off + 4:
                return None
            ethertype, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
        return frame[off:] if ethertype in (_ETH_IPV4, _ETH_IPV6) else None
    if linktype == _LT_SLL:
        if len(frame) < 16:
            return None
        proto = struct.unpack_from("!H", frame, 14)[0]
        return frame[16:] if proto in (_ETH_IPV4, _ETH_IPV6) else None
    if linktype == _LT_SLL2:
        if len(frame) < 20:
            return None
        proto = struct.unpack_from("!H", frame, 0)[0]
        return frame[20:] if proto in (_ETH_IPV4, _ETH_IPV6) else None
    if linktype in _LT_RAW or linktype in (_LT_IPV4, _LT_IPV6):
        return frame
    if linktype in (_LT_NULL, _LT_LOOP):
        return frame[4:] if len(frame) >= 4 else None
    return None


def parse_frame(frame_no: int, ts: float | None, linktype: int, frame: bytes) -> Datagram | None:
    """Dissect one captured frame down to UDP and classify it (None when not IKE/ESP/NAT-T)."""
    packet = _l3(linktype, frame)
    if packet is None:
        return None
    ip = _ip(packet)
    if ip is None:
        return None
    src, dst, proto, l4 = ip
    if proto == _ESP and len(l4) >= 8:
        return Datagram(frame_no, ts, src, dst, None, None, "esp", l4)
    if proto != _UDP or len(l4) < 8:
        return None
    sport, dport, ulen = struct.unpack_from("!HHH", l4, 0)
    payload = l4[8:ulen] if 8 <= ulen <= len(l4) else l4[8:]
    found = classify_udp(sport, dport, payload)
    if found is None:
        return None
    kind, data = found
    return Datagram(frame_no, ts, src, dst, sport, dport, kind, data)


def _records(fileobj: BinaryIO) -> Iterator[tuple[float, int, bytes]]:
    """(timestamp, linktype, frame) for every record of a pcap or pcapng stream."""
    magic = fileobj.read(4)
    fileobj.seek(0)
    try:
        if magic == b"\x0a\x0d\x0d\x0a":
            reader: dpkt.pcapng.Reader | dpkt.pcap.Reader = dpkt.pcapng.Reader(fileobj)
        else:
            reader = dpkt.pcap.Reader(fileobj)
        linktype = reader.datalink()
    except (ValueError, dpkt.dpkt.Error, struct.error, EOFError) as exc:
        raise CaptureError(f"not a pcap or pcapng file ({exc})") from None
    iterator = iter(reader)
    while True:
        try:
            ts, buf = next(iterator)
        except StopIteration:
            return
        except (ValueError, dpkt.dpkt.Error, struct.error, EOFError):
            return  # truncated trailing record: stop quietly, as tcpdump does
        yield float(ts), linktype, bytes(buf)


def read_capture(fileobj: BinaryIO) -> Iterator[Datagram]:
    """Every IKE / ESP / keepalive datagram of a pcap or pcapng capture, with frame numbers."""
    for frame_no, (ts, linktype, frame) in enumerate(_records(fileobj), start=1):
        found = parse_frame(frame_no, ts, linktype, frame)
        if found is not None:
            yield found


def read_capture_bytes(data: bytes) -> Iterator[Datagram]:
    """:func:`read_capture` over an in-memory file."""
    return read_capture(io.BytesIO(data))


def read_hex(lines: Iterable[str]) -> Iterator[Datagram]:
    """Hex input: one UDP payload per line (whitespace ignored, ``#`` comments, blanks skipped).

    A leading non-ESP marker is stripped (an IKE SPIi is never zero, RFC 7296 §3.1); a lone
    ``ff`` is a keepalive.  A line that is not hex yields an IKE datagram with empty data, so
    the caller reports it as malformed under its line number (``note`` says why).
    """
    for line_no, line in enumerate(lines, start=1):
        text = "".join(line.split("#", 1)[0].split())
        if not text:
            continue
        try:
            payload = bytes.fromhex(text)
        except ValueError:
            yield Datagram(line_no, None, None, None, None, None, "ike", b"", "line is not hex")
            continue
        if payload == b"\xff":
            yield Datagram(line_no, None, None, None, None, None, "keepalive", payload)
        elif payload.startswith(NON_ESP_MARKER):
            yield Datagram(line_no, None, None, None, None, None, "ike", payload[4:])
        else:
            yield Datagram(line_no, None, None, None, None, None, "ike", payload)
