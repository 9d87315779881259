"""TCP MSS clamping: option rewrite and RFC 1624 incremental checksum."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from petrel.dataplane.mss import clamp_mss, mss_for_mtu

SRC4, DST4 = ipaddress.ip_address("198.51.100.1"), ipaddress.ip_address("203.0.113.1")
SRC6, DST6 = ipaddress.ip_address("2001:db8:1::1"), ipaddress.ip_address("2001:db8:2::1")


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _pseudo(src, dst, length: int) -> bytes:
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, 6, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, 6)


def _tcp(src, dst, flags: int, options: bytes, payload: bytes = b"") -> bytes:
    options += b"\0" * (-len(options) % 4)
    doff = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", 40000, 443, 1, 0, doff << 4, flags, 65535, 0, 0)
    seg = hdr + options + payload
    csum = ~_sum16(_pseudo(src, dst, len(seg)) + seg) & 0xFFFF
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def _ipv4(seg: bytes, frag: int = 0) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, frag, 64, 6, 0, SRC4.packed, DST4.packed
        )
        + seg
    )


def _ipv6(seg: bytes, ext: bytes = b"") -> bytes:
    nxt = 0 if ext else 6
    return (
        struct.pack("!IHBB16s16s", 6 << 28, len(ext) + len(seg), nxt, 64, SRC6.packed, DST6.packed)
        + ext
        + seg
    )


def _checksum_ok(packet: bytes, tcp: int, src, dst) -> bool:
    seg = packet[tcp:]
    return _sum16(_pseudo(src, dst, len(seg)) + seg) == 0xFFFF


def _mss_of(packet: bytes, tcp: int) -> int | None:
    end = tcp + (packet[tcp + 12] >> 4) * 4
    i = tcp + 20
    while i < end:
        kind = packet[i]
        if kind == 0:
            return None
        if kind == 1:
            i += 1
            continue
        if kind == 2:
            return struct.unpack_from("!H", packet, i + 2)[0]
        i += packet[i + 1]
    return None


MSS1460 = b"\x02\x04\x05\xb4"


def test_mss_for_mtu() -> None:
    assert mss_for_mtu(1400, 4) == 1360
    assert mss_for_mtu(1400, 6) == 1340


def test_ipv4_syn_clamped_and_checksum_valid() -> None:
    pkt = _ipv4(_tcp(SRC4, DST4, 0x02, MSS1460 + b"\x01\x03\x03\x07"))
    out = clamp_mss(pkt, 1400)
    assert out != pkt
    assert _mss_of(out, 20) == 1360
    assert _checksum_ok(out, 20, SRC4, DST4)
    assert len(out) == len(pkt)


def test_ipv4_syn_ack_clamped() -> None:
    pkt = _ipv4(_tcp(SRC4, DST4, 0x12, MSS1460))
    out = clamp_mss(pkt, 1300)
    assert _mss_of(out, 20) == 1260
    assert _checksum_ok(out, 20, SRC4, DST4)


def test_odd_aligned_option_checksum_valid() -> None:
    pkt = _ipv4(_tcp(SRC4, DST4, 0x02, b"\x01" + MSS1460))
    out = clamp_mss(pkt, 1400)
    assert _mss_of(out, 20) == 1360
    assert _checksum_ok(out, 20, SRC4, DST4)


def test_ipv6_with_extension_header() -> None:
    hop_by_hop = bytes([6, 0]) + b"\x01\x04\0\0\0\0"  # next=TCP, len 8, PadN
    pkt = _ipv6(_tcp(SRC6, DST6, 0x02, MSS1460), hop_by_hop)
    out = clamp_mss(pkt, 1400)
    assert _mss_of(out, 48) == 1340
    assert _checksum_ok(out, 48, SRC6, DST6)


def test_untouched_cases() -> None:
    small = _ipv4(_tcp(SRC4, DST4, 0x02, b"\x02\x04\x02\x00"))  # MSS 512 already fits
    ack = _ipv4(_tcp(SRC4, DST4, 0x10, MSS1460))  # not a SYN
    later_fragment = _ipv4(_tcp(SRC4, DST4, 0x02, MSS1460), frag=0x0010)
    no_option = _ipv4(_tcp(SRC4, DST4, 0x02, b""))
    udp = bytearray(_ipv4(_tcp(SRC4, DST4, 0x02, MSS1460)))
    udp[9] = 17
    for pkt in (small, ack, later_fragment, no_option, bytes(udp)):
        assert clamp_mss(pkt, 1400) is pkt


def test_truncated_packets_untouched() -> None:
    pkt = _ipv4(_tcp(SRC4, DST4, 0x02, b"\x01\x01\x01" + MSS1460))
    for cut in range(len(pkt)):
        prefix = pkt[:cut]
        assert clamp_mss(prefix, 1400) is prefix


@given(st.binary(max_size=120), st.integers(min_value=0, max_value=9000))
def test_never_raises_on_garbage(data: bytes, mtu: int) -> None:
    out = clamp_mss(data, mtu)
    assert len(out) == len(data)


@given(
    mss=st.integers(min_value=0, max_value=65535),
    mtu=st.integers(min_value=100, max_value=9000),
    nops=st.integers(min_value=0, max_value=7),
    v6=st.booleans(),
    payload=st.binary(max_size=33),
)
def test_clamp_property(mss: int, mtu: int, nops: int, v6: bool, payload: bytes) -> None:
    opts = b"\x01" * nops + b"\x02\x04" + struct.pack("!H", mss) + b"\x04\x02"
    src, dst = (SRC6, DST6) if v6 else (SRC4, DST4)
    seg = _tcp(src, dst, 0x02, opts, payload)
    pkt = _ipv6(seg) if v6 else _ipv4(seg)
    tcp = 40 if v6 else 20
    out = clamp_mss(pkt, mtu)
    assert _mss_of(out, tcp) == min(mss, mss_for_mtu(mtu, 6 if v6 else 4))
    assert _checksum_ok(out, tcp, src, dst)
    assert out[tcp + 20 + nops + 4 :] == pkt[tcp + 20 + nops + 4 :]
