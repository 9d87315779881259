"""ESP Security Associations: per-packet encapsulation and decapsulation (RFC 4303, tunnel mode).

Packet layout (§2)::

    SPI (4) | Seq (4) | IV | ciphertext of (payload | padding | pad len | next hdr) | ICV

Two transform shapes (§3.3.2, §3.4.4):

* **AEAD** (AES-GCM/CCM RFC 4106/4309, ChaCha20-Poly1305 RFC 7634, GMAC RFC 4543): the AAD is
  SPI | Seq, or SPI | Seq-high | Seq-low with ESN (RFC 4106 §5); the tag is the ICV.
* **cipher + integrity** (AES-CBC/CTR, NULL with HMAC): the ICV covers SPI | Seq | IV |
  ciphertext, with the ESN high 32 bits appended for the computation only (§3.3.2.2); the
  receiver verifies it before decrypting (§3.4.4.1).

All keyed transform objects come from :mod:`petrel.crypto` and are built once per SA.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from petrel.crypto.encr import EncrSpec
from petrel.crypto.errors import CryptoError
from petrel.crypto.integ import IntegSpec
from petrel.esp.counters import DropCounters, TrafficCounters
from petrel.esp.packet import NH_DUMMY, NH_IPV4, NH_IPV6, inner_length, next_header_for
from petrel.esp.replay import ReplayWindow
from petrel.wire.registry import EncrId

__all__ = ["EspSa", "InboundSa", "OutboundSa", "SequenceOverflow"]

_HDR = struct.Struct(">II")  # SPI, Seq (low 32 bits)
_HDR_IV = struct.Struct(">IIQ")  # SPI, Seq, 8-octet counter IV (the 64-bit sequence number)
_AAD_ESN = struct.Struct(">III")  # SPI, Seq-high, Seq-low (RFC 4106 §5)
_U32 = struct.Struct(">I")
_MASK32 = 0xFFFFFFFF
_PADS = tuple(bytes(range(1, n + 1)) for n in range(256))
"""Monotonic padding octets 1, 2, 3, … (§2.4), indexed by pad length."""

_COUNTER_IV = frozenset(
    {
        EncrId.AES_CTR,
        EncrId.AES_CCM_8,
        EncrId.AES_CCM_12,
        EncrId.AES_CCM_16,
        EncrId.AES_GCM_8,
        EncrId.AES_GCM_12,
        EncrId.AES_GCM_16,
        EncrId.NULL_AUTH_AES_GMAC,
        EncrId.CAMELLIA_CTR,
        EncrId.CAMELLIA_CCM_8,
        EncrId.CAMELLIA_CCM_12,
        EncrId.CAMELLIA_CCM_16,
        EncrId.CHACHA20_POLY1305,
    }
)
"""Transforms whose IV need only be unique, not unpredictable: the sequence number serves
(RFC 3686 §3, RFC 4106 §3.1, RFC 4309 §3.1, RFC 4543 §3.1, RFC 7634 §2)."""


class SequenceOverflow(Exception):
    """The sender's sequence counter would cycle (RFC 4303 §3.3.3): the SA must be rekeyed."""


class _Sa:
    """Transform state shared by both directions."""

    __slots__ = (
        "_aead",
        "_align",
        "_cipher",
        "_icv_len",
        "_iv_len",
        "_mac",
        "counters",
        "encr",
        "esn",
        "integ",
        "spi",
    )

    def __init__(
        self,
        spi: int,
        encr: EncrSpec,
        encr_key: bytes,
        integ: IntegSpec | None,
        integ_key: bytes,
        esn: bool,
    ) -> None:
        if not 256 <= spi <= _MASK32:
            raise ValueError(f"ESP SPI {spi:#x} is reserved or out of range (RFC 4303 §2.1)")
        if integ is not None and integ.id == 0:
            integ = None
        if encr.aead and integ is not None:
            raise ValueError("an AEAD transform must not be combined with an integrity transform")
        if not encr.aead and integ is None:
            raise ValueError("ESP without integrity protection is not supported (RFC 8221 §5)")
        if len(encr_key) != encr.key_size:
            raise ValueError(f"encryption key is {len(encr_key)} octets, need {encr.key_size}")
        self.spi = spi
        self.encr = encr
        self.integ = integ
        self.esn = esn
        self._aead = encr.aead
        self._cipher = encr.keyed(encr_key)
        if integ is not None:
            if len(integ_key) != integ.key_size:
                raise ValueError(f"integrity key is {len(integ_key)} octets, need {integ.key_size}")
            self._mac = integ.keyed(integ_key)
            self._icv_len = integ.icv_size
        else:
            self._mac = None
            self._icv_len = encr.icv_size
        self._iv_len = encr.iv_size
        self._align = max(encr.block_size, 4)
        self.counters = TrafficCounters()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spi={self.spi:#010x}, encr={self.encr.id}, esn={self.esn})"


class OutboundSa(_Sa):
    """Sending side of an ESP SA: :meth:`encapsulate` turns inner IP packets into ESP packets."""

    __slots__ = ("_counter_iv", "_random", "_seq_max", "_trailers", "seq")

    def __init__(
        self,
        spi: int,
        encr: EncrSpec,
        encr_key: bytes,
        integ: IntegSpec | None,
        integ_key: bytes,
        esn: bool,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``random`` supplies the IVs of block ciphers (the OS CSPRNG unless a test injects
        its own); counter-mode and AEAD transforms use the sequence number (RFC 4106 §3.1)."""
        super().__init__(spi, encr, encr_key, integ, integ_key, esn)
        self._random = random
        self.seq = 0
        """Sequence number of the last packet sent (the first packet carries 1, §3.3.3)."""
        self._seq_max = (1 << 64) - 1 if esn else _MASK32
        self._counter_iv = encr.id in _COUNTER_IV
        self._trailers: dict[int, bytes] = {}

    def _trailer(self, pad_len: int, next_header: int) -> bytes:
        key = (next_header << 8) | pad_len
        trailer = self._trailers.get(key)
        if trailer is None:
            trailer = _PADS[pad_len] + bytes((pad_len, next_header))
            self._trailers[key] = trailer
        return trailer

    def encapsulate(
        self,
        inner: bytes | bytearray | memoryview,
        next_header: int | None = None,
        now: float | None = None,
    ) -> bytes:
        """Build the ESP packet for ``inner`` (an IP packet in tunnel mode).

        ``next_header`` defaults to 4 or 41 from the inner IP version. Raises
        :class:`SequenceOverflow` instead of letting the counter cycle, and ``ValueError`` if
        the next header cannot be derived.
        """
        if next_header is None:
            next_header = next_header_for(inner)
            if next_header is None:
                raise ValueError("inner packet is neither IPv4 nor IPv6")
        seq = self.seq + 1
        if seq > self._seq_max:
            raise SequenceOverflow(f"ESP SA {self.spi:#010x}: sequence number exhausted")
        self.seq = seq
        lo = seq & _MASK32
        size = len(inner)
        pad_len = -(size + 2) % self._align
        trailer = self._trailers.get((next_header << 8) | pad_len) or self._trailer(
            pad_len, next_header
        )
        plaintext = b"".join((inner, trailer))

        if self._counter_iv:
            head = _HDR_IV.pack(self.spi, lo, seq)
            iv = head[8:]
        else:
            iv = self._random(self._iv_len) if self._iv_len else b""
            head = _HDR.pack(self.spi, lo) + iv

        if self._aead:
            aad = _AAD_ESN.pack(self.spi, seq >> 32, lo) if self.esn else head[:8]
            packet = head + self._cipher.seal(iv, plaintext, aad)
        else:
            body = head + self._cipher.encrypt(iv, plaintext)
            signed = body + _U32.pack(seq >> 32) if self.esn else body
            packet = body + self._mac.compute(signed)  # type: ignore[union-attr]

        counters = self.counters
        counters.packets += 1
        counters.octets += size
        if now is not None:
            counters.last_use = now
        return packet

    def dummy(self, length: int = 0, now: float | None = None) -> bytes:
        """A dummy packet (Next Header 59, RFC 4303 §2.6) with ``length`` payload octets, for
        traffic-flow confidentiality; the receiver discards it."""
        return self.encapsulate(bytes(length), NH_DUMMY, now)


class InboundSa(_Sa):
    """Receiving side of an ESP SA: :meth:`decapsulate` checks and opens ESP packets."""

    __slots__ = ("_block", "_min_len", "drops", "replay")

    def __init__(
        self,
        spi: int,
        encr: EncrSpec,
        encr_key: bytes,
        integ: IntegSpec | None,
        integ_key: bytes,
        esn: bool,
        replay_window: int = 32,
    ) -> None:
        super().__init__(spi, encr, encr_key, integ, integ_key, esn)
        self.replay = ReplayWindow(replay_window, esn)
        self.drops = DropCounters()
        # A real block cipher (CBC) needs whole blocks; stream modes need only the trailer.
        self._block = encr.block_size if encr.block_size > 4 else 1
        min_ct = max(self._block, 2)
        self._min_len = 8 + self._iv_len + min_ct + self._icv_len

    def decapsulate(
        self, packet: bytes | bytearray | memoryview, now: float | None = None
    ) -> tuple[int, bytes] | None:
        """Return ``(next_header, inner_packet)`` or ``None`` after counting the drop reason.

        Order of checks (§3.4): length, SPI, replay window, ICV/tag, then (now authentic)
        window update, padding, next header, inner IP length (TFC padding trimmed, §2.7).
        Never raises on hostile input.
        """
        # The crypto layer takes bytes; slicing bytes copies no more than bytes(memoryview).
        data = packet if type(packet) is bytes else bytes(packet)
        n = len(data)
        drops = self.drops
        if n < self._min_len:
            drops.truncated += 1
            return None
        spi, lo = _HDR.unpack_from(data)
        if spi != self.spi:
            drops.bad_spi += 1
            return None
        seq = self.replay.check(lo)
        if seq is None:
            drops.replay += 1
            return None
        ct_start = 8 + self._iv_len
        icv_start = n - self._icv_len
        if (icv_start - ct_start) % self._block:
            drops.bad_length += 1
            return None
        iv = data[8:ct_start]

        if self._aead:
            aad = _AAD_ESN.pack(self.spi, seq >> 32, lo) if self.esn else data[:8]
            try:
                plaintext = self._cipher.open(iv, data[ct_start:], aad)
            except CryptoError:
                drops.integrity += 1
                return None
        else:
            signed = data[:icv_start]
            if self.esn:
                signed += _U32.pack(seq >> 32)
            if not self._mac.verify(signed, data[icv_start:]):  # type: ignore[union-attr]
                drops.integrity += 1
                return None
            plaintext = self._cipher.decrypt(iv, data[ct_start:icv_start])

        # Authentic from here on: move the window even if the content is then rejected.
        if not self.replay.update(seq):
            drops.replay += 1
            return None
        m = len(plaintext)
        pad_len = plaintext[m - 2]
        next_header = plaintext[m - 1]
        end = m - 2 - pad_len
        if end < 0 or not plaintext.startswith(_PADS[pad_len], end):
            drops.bad_padding += 1
            return None
        if next_header != NH_IPV4 and next_header != NH_IPV6:
            if next_header == NH_DUMMY:
                drops.dummy += 1
            else:
                drops.bad_next_header += 1
            return None
        length = inner_length(plaintext, next_header, end)
        if length is None:
            drops.bad_inner += 1
            return None

        counters = self.counters
        counters.packets += 1
        counters.octets += length
        if now is not None:
            counters.last_use = now
        return next_header, bytes(plaintext[:length])


EspSa = OutboundSa | InboundSa
"""Either direction of an ESP SA (the name used in docs/internal-api.md)."""
