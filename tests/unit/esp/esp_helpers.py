"""Shared helpers for the ESP tests: transforms, SA pairs, inner packets, a reference encoder."""

from __future__ import annotations

import ipaddress
import os
import struct
from dataclasses import dataclass

from petrel.crypto.encr import EncrSpec, encr_spec
from petrel.crypto.integ import IntegSpec, integ_spec
from petrel.esp.sa import InboundSa, OutboundSa
from petrel.wire.registry import EncrId, IntegId

SPI = 0xC0FFEE01


@dataclass(frozen=True)
class Suite:
    name: str
    encr: EncrSpec
    integ: IntegSpec | None


SUITES = [
    Suite("aes128gcm16", encr_spec(EncrId.AES_GCM_16, 128), None),
    Suite("aes256gcm16", encr_spec(EncrId.AES_GCM_16, 256), None),
    Suite("aes128gcm8", encr_spec(EncrId.AES_GCM_8, 128), None),
    Suite("aes128-sha256", encr_spec(EncrId.AES_CBC, 128), integ_spec(IntegId.HMAC_SHA2_256_128)),
    Suite("aes256ctr-sha1", encr_spec(EncrId.AES_CTR, 256), integ_spec(IntegId.HMAC_SHA1_96)),
    Suite("chacha20poly1305", encr_spec(EncrId.CHACHA20_POLY1305), None),
    Suite("aes256ccm16", encr_spec(EncrId.AES_CCM_16, 256), None),
    Suite("aes128ccm8", encr_spec(EncrId.AES_CCM_8, 128), None),
    Suite("null-sha256", encr_spec(EncrId.NULL), integ_spec(IntegId.HMAC_SHA2_256_128)),
    Suite("aes128gmac", encr_spec(EncrId.NULL_AUTH_AES_GMAC, 128), None),
]
SUITE_IDS = [s.name for s in SUITES]


@dataclass
class Keys:
    encr: bytes
    integ: bytes


def keys_for(suite: Suite) -> Keys:
    return Keys(
        os.urandom(suite.encr.key_size), os.urandom(suite.integ.key_size if suite.integ else 0)
    )


def sa_pair(
    suite: Suite, esn: bool = False, window: int = 32, spi: int = SPI
) -> tuple[OutboundSa, InboundSa, Keys]:
    k = keys_for(suite)
    out = OutboundSa(spi, suite.encr, k.encr, suite.integ, k.integ, esn)
    inb = InboundSa(spi, suite.encr, k.encr, suite.integ, k.integ, esn, window)
    return out, inb, k


def ipv4(payload: bytes = b"hello", proto: int = 17) -> bytes:
    total = 20 + len(payload)
    src = ipaddress.IPv4Address("10.0.0.1").packed
    dst = ipaddress.IPv4Address("10.0.1.1").packed
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, proto, 0, src, dst) + payload


def ipv6(payload: bytes = b"hello", proto: int = 17) -> bytes:
    src = ipaddress.IPv6Address("fd00::1").packed
    dst = ipaddress.IPv6Address("fd00:1::1").packed
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), proto, 64, src, dst) + payload


def reference_packet(
    suite: Suite, keys: Keys, seq: int, plaintext: bytes, esn: bool, spi: int = SPI
) -> bytes:
    """Independent ESP encoder (RFC 4303 §2, §3.3.2.2; RFC 4106 §5) over a caller-made plaintext
    (payload, padding, pad length and next header already appended), with a random IV."""
    encr = suite.encr
    iv = os.urandom(encr.iv_size)
    head = struct.pack(">II", spi, seq & 0xFFFFFFFF) + iv
    cipher = encr.keyed(keys.encr)
    if encr.aead:
        aad = struct.pack(">III", spi, seq >> 32, seq & 0xFFFFFFFF) if esn else head[:8]
        return head + cipher.seal(iv, plaintext, aad)  # type: ignore[union-attr]
    assert suite.integ is not None
    body = head + cipher.encrypt(iv, plaintext)  # type: ignore[union-attr]
    hi = struct.pack(">I", seq >> 32) if esn else b""
    return body + suite.integ.keyed(keys.integ).compute(body + hi)


def trailer(payload_len: int, next_header: int, align: int) -> bytes:
    """Correct RFC 4303 §2.4 padding for a payload of ``payload_len`` octets."""
    pad = -(payload_len + 2) % align
    return bytes(range(1, pad + 1)) + bytes((pad, next_header))
