"""Builders for decode tests: link-layer frames, capture files and SK / SKF messages."""

from __future__ import annotations

import io
import ipaddress
import struct
from pathlib import Path

import dpkt

from petrel.crypto.sk import SkCipher
from petrel.wire.codec import encode_header, encode_payloads, sk_generic_header, skf_header
from petrel.wire.payloads import IKE_HEADER_LEN, IkeHeader, Payload
from petrel.wire.registry import PayloadType

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SAMPLE_PCAP = SAMPLES / "ikev2-psk.pcap"
SAMPLE_IKE_KEYS = SAMPLES / "ikev2_decryption_table"
SAMPLE_ESP_KEYS = SAMPLES / "esp_sa"


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(src: str, dst: str, proto: int, body: bytes, frag: int = 0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        1,
        frag,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + body


def ipv6(src: str, dst: str, proto: int, body: bytes, hop_by_hop: bool = False) -> bytes:
    nxt = proto
    if hop_by_hop:
        body = bytes([proto, 0]) + bytes(6) + body  # 8-octet Hop-by-Hop header, PadN-free
        nxt = 0
    return (
        struct.pack("!IHBB", 6 << 28, len(body), nxt, 64)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + body
    )


def ethernet(packet: bytes, vlan: int | None = None) -> bytes:
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    head = bytes.fromhex("020000000002020000000001")
    if vlan is not None:
        head += struct.pack("!HH", 0x8100, vlan)
    return head + struct.pack("!H", ethertype) + packet


def sll(packet: bytes) -> bytes:
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), ethertype) + packet


def sll2(packet: bytes) -> bytes:
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 0, 6, bytes(8)) + packet


def pcap_bytes(frames: list[bytes], linktype: int) -> bytes:
    buf = io.BytesIO()
    writer = dpkt.pcap.Writer(buf, linktype=linktype)
    for index, frame in enumerate(frames):
        writer.writepkt(frame, ts=1000.0 + index)
    return buf.getvalue()


def pcapng_bytes(frames: list[bytes], linktype: int) -> bytes:
    buf = io.BytesIO()
    writer = dpkt.pcapng.Writer(buf, linktype=linktype)
    for index, frame in enumerate(frames):
        writer.writepkt(frame, ts=1000.0 + index)
    return buf.getvalue()


def sk_message(
    cipher: SkCipher,
    spi_i: bytes,
    spi_r: bytes,
    exchange: int,
    message_id: int,
    flags: int,
    inner: list[Payload],
) -> bytes:
    """A message whose only payload is SK around ``inner`` (RFC 7296 §3.14)."""
    first, chain = encode_payloads(inner)
    body_len = cipher.body_length(len(chain))
    header = IkeHeader(
        spi_i, spi_r, PayloadType.SK, exchange, message_id, flags,
        length=IKE_HEADER_LEN + 4 + body_len,
    )  # fmt: skip
    aad = encode_header(header) + sk_generic_header(first, body_len)
    return aad + cipher.seal(aad, chain)


def skf_messages(
    cipher: SkCipher,
    spi_i: bytes,
    spi_r: bytes,
    exchange: int,
    message_id: int,
    flags: int,
    inner: list[Payload],
    total: int,
) -> list[bytes]:
    """The inner chain cut into ``total`` SKF fragments, each sealed on its own (RFC 7383)."""
    first, chain = encode_payloads(inner)
    size = -(-len(chain) // total)
    pieces = [chain[i * size : (i + 1) * size] for i in range(total)]
    out = []
    for number, piece in enumerate(pieces, start=1):
        body_len = cipher.body_length(len(piece))
        header = IkeHeader(
            spi_i, spi_r, PayloadType.SKF, exchange, message_id, flags,
            length=IKE_HEADER_LEN + 8 + body_len,
        )  # fmt: skip
        aad = encode_header(header) + skf_header(
            first if number == 1 else 0, number, total, body_len
        )
        out.append(aad + cipher.seal(aad, piece))
    return out
