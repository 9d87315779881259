"""Stateful dissection of a capture: decode each IKE message, open SK / SKF with known keys.

RFC 7296 §3.14 (SK: the AAD / ICV input is everything from the IKE header up to the IV) and
RFC 7383 §2.5-§2.6 (SKF: each fragment is protected on its own; the decrypted contents are
concatenated in fragment-number order and parsed as one chain whose first payload type is the
Next Payload of fragment 1).  Nothing here raises on hostile input: every failure becomes the
record's ``error``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from petrel.crypto.encr import encr_spec
from petrel.crypto.errors import CryptoError, IntegrityError
from petrel.crypto.integ import integ_spec
from petrel.crypto.sk import SkCipher
from petrel.esp.sa import InboundSa
from petrel.wire.codec import decode_header, decode_message, decode_payloads
from petrel.wire.errors import DecodeError
from petrel.wire.payloads import SK, SKF, IkeHeader, Payload
from petrel.wire.registry import EncrId, IntegId, NotifyType, name_of

from .capture import Datagram
from .keys import EspSaKeys, IkeSaKeys, find_esp_sa
from .render import IP_PROTOCOLS

INTEGRITY_FAILED = "integrity check failed (wrong SK_a?)"
AEAD_FAILED = "integrity check failed (wrong SK_e? AEAD tag mismatch)"
# Fragments of one message are dropped when more than this many messages are incomplete.
MAX_PENDING_MESSAGES = 64


@dataclass(slots=True)
class Record:
    """What was learnt about one datagram of the capture."""

    dgram: Datagram
    header: IkeHeader | None = None
    payloads: tuple[Payload, ...] = ()
    inner: tuple[Payload, ...] | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    esp: dict[str, Any] | None = None


@dataclass(slots=True)
class _Pending:
    total: int
    first_inner: int | None = None
    parts: dict[int, bytes] = field(default_factory=dict)
    frames: dict[int, int] = field(default_factory=dict)


def decode_error_text(exc: DecodeError) -> str:
    """``INVALID_SYNTAX: payload length 3 below 4 (payload type 33)``."""
    where = "" if exc.payload_type is None else f" (payload type {exc.payload_type})"
    return f"{name_of(exc.notify, NotifyType)}: {exc.detail}{where}"


class Dissector:
    """Feed datagrams in capture order; get one :class:`Record` per datagram."""

    def __init__(
        self,
        ike_keys: Mapping[tuple[bytes, bytes], IkeSaKeys] | None = None,
        esp_keys: list[EspSaKeys] | None = None,
    ) -> None:
        self._ike_keys = dict(ike_keys or {})
        self._esp_keys = list(esp_keys or [])
        self._ciphers: dict[tuple[bytes, bytes, bool], SkCipher] = {}
        self._esp_sas: dict[int, InboundSa] = {}
        self._pending: dict[tuple[bytes, bytes, int, bool, bool], _Pending] = {}

    def run(self, datagrams: Iterable[Datagram]) -> Iterator[Record]:
        for dgram in datagrams:
            yield self.feed(dgram)

    def feed(self, dgram: Datagram) -> Record:
        record = Record(dgram)
        if dgram.kind == "keepalive":
            record.notes.append("NAT keepalive")
        elif dgram.kind == "esp":
            self._esp(record)
        else:
            self._ike(record)
        return record

    # -- IKE -----------------------------------------------------------------------------

    def _ike(self, record: Record) -> None:
        data = record.dgram.data
        if record.dgram.note:
            record.error = record.dgram.note
            return
        try:
            record.header = decode_header(data)
        except DecodeError as exc:
            record.error = decode_error_text(exc)
            if len(data) >= 28:  # still show what the header says, unchecked
                record.header = _loose_header(data)
            return
        try:
            msg = decode_message(data)
        except DecodeError as exc:
            record.error = decode_error_text(exc)
            return
        record.payloads = msg.payloads
        if not msg.payloads:
            return
        last = msg.payloads[-1]
        if isinstance(last, SK | SKF):
            self._open(record, data, last)

    def _cipher(self, keys: IkeSaKeys, from_initiator: bool) -> SkCipher:
        cache_key = (keys.spi_i, keys.spi_r, from_initiator)
        cipher = self._ciphers.get(cache_key)
        if cipher is None:
            encr = encr_spec(keys.encr, keys.key_bits)
            integ = None if encr.aead or keys.integ == 0 else integ_spec(keys.integ)
            sk_e = keys.sk_ei if from_initiator else keys.sk_er
            sk_a = keys.sk_ai if from_initiator else keys.sk_ar
            cipher = SkCipher(encr, sk_e, integ, sk_a if integ is not None else b"")
            self._ciphers[cache_key] = cipher
        return cipher

    def _open(self, record: Record, data: bytes, enc: SK | SKF) -> None:
        header = record.header
        assert header is not None
        keys = self._ike_keys.get((header.spi_i, header.spi_r))
        if keys is None:
            record.notes.append("encrypted (no keys for this IKE SA)")
            return
        aad = data[: len(data) - len(enc.body)]
        try:
            cipher = self._cipher(keys, header.is_initiator)
        except (CryptoError, ValueError) as exc:
            record.error = f"cannot use the keys for this IKE SA: {exc}"
            return
        try:
            plaintext = cipher.open(aad, enc.body)
        except IntegrityError:
            record.error = AEAD_FAILED if keys.aead else INTEGRITY_FAILED
            return
        except CryptoError as exc:
            record.error = f"decryption failed: {exc} (wrong SK_e?)"
            return
        if isinstance(enc, SK):
            record.notes.append("decrypted, integrity OK")
            self._inner(record, int(enc.inner_next_payload), plaintext)
        else:
            self._fragment(record, enc, plaintext)

    def _inner(self, record: Record, first: int, plaintext: bytes) -> None:
        try:
            record.inner = decode_payloads(first, plaintext)
        except DecodeError as exc:
            record.error = f"inner payloads: {decode_error_text(exc)}"

    def _fragment(self, record: Record, skf: SKF, plaintext: bytes) -> None:
        """RFC 7383 §2.6: collect fragments by message ID and direction; reassemble when all."""
        header = record.header
        assert header is not None
        number, total = skf.fragment_number, skf.total_fragments
        if not 1 <= number <= total:
            record.error = f"bad fragment number {number}/{total}"
            return
        key = (
            header.spi_i,
            header.spi_r,
            header.message_id,
            header.is_initiator,
            header.is_response,
        )
        pending = self._pending.get(key)
        if pending is None or pending.total != total:
            # RFC 7383 §2.6.1: a larger Total Fragments starts over; keep it simple and restart.
            if len(self._pending) >= MAX_PENDING_MESSAGES:
                self._pending.pop(next(iter(self._pending)))
            pending = _Pending(total)
            self._pending[key] = pending
        if number == 1:
            pending.first_inner = int(skf.inner_next_payload)
        pending.parts[number] = plaintext
        pending.frames[number] = record.dgram.frame
        if len(pending.parts) < total or pending.first_inner is None:
            record.notes.append(
                f"decrypted fragment {number}/{total}, integrity OK; waiting for "
                f"{total - len(pending.parts)} more"
            )
            return
        del self._pending[key]
        frames = ", ".join(str(pending.frames[i]) for i in range(1, total + 1))
        record.notes.append(f"decrypted fragment {number}/{total}, integrity OK")
        record.notes.append(f"reassembled {total} fragments (frames {frames})")
        joined = b"".join(pending.parts[i] for i in range(1, total + 1))
        self._inner(record, pending.first_inner, joined)

    # -- ESP -----------------------------------------------------------------------------

    def _esp(self, record: Record) -> None:
        data = record.dgram.data
        spi, seq = struct.unpack_from("!II", data, 0)
        record.esp = {"spi": f"0x{spi:08x}", "seq": seq, "length": len(data), "decrypted": False}
        row = find_esp_sa(self._esp_keys, record.dgram.src, record.dgram.dst, spi)
        if row is None:
            record.notes.append("ESP (not decrypted)")
            return
        sa = self._esp_sas.get(id(row))
        if sa is None:
            try:
                sa = _inbound_sa(row, spi)
            except (CryptoError, ValueError) as exc:
                record.error = f"cannot use the ESP key: {exc}"
                return
            self._esp_sas[id(row)] = sa
        before = sa.drops.as_dict()
        opened = sa.decapsulate(data)
        if opened is None:
            after = sa.drops.as_dict()
            reason = next((k for k, v in after.items() if v != before[k]), "dropped")
            if reason == "integrity":
                record.error = "ESP integrity check failed (wrong ESP key?)"
            elif reason == "dummy":
                record.notes.append("ESP dummy packet (next header 59)")
            else:
                record.error = f"ESP not decrypted: {reason.replace('_', ' ')}"
            return
        _next_header, inner = opened
        record.esp["decrypted"] = True
        record.esp["inner"] = inner_summary(inner)
        record.notes.append(f"ESP decrypted: {record.esp['inner']}")


def _inbound_sa(row: EspSaKeys, spi: int) -> InboundSa:
    """An :class:`InboundSa` for an ``esp_sa`` row (key bits from the key length; no ESN)."""
    if row.encr is None or row.integ is None:
        raise ValueError(f"unsupported algorithms {row.encr_name!r} / {row.auth_name!r}")
    salt = {EncrId.AES_CBC: 0, EncrId.NULL: 0, EncrId.DES3: 0}.get(row.encr, 4)
    bits: int | None = (len(row.encr_key) - salt) * 8
    if row.encr in (EncrId.NULL, EncrId.DES3, EncrId.CHACHA20_POLY1305):
        bits = None
    encr = encr_spec(row.encr, bits)
    integ = None if row.integ == IntegId.NONE else integ_spec(row.integ)
    # A wide window: a capture may hold reordered packets; replays are still reported.
    return InboundSa(spi, encr, row.encr_key, integ, row.auth_key, esn=False, replay_window=1024)


def inner_summary(packet: bytes) -> str:
    """``IPv4 10.1.0.1 -> 10.2.0.1 icmp, 84 octets`` for a decrypted tunnel-mode packet."""
    try:
        if packet and packet[0] >> 4 == 4 and len(packet) >= 20:
            src, dst = ipaddress.IPv4Address(packet[12:16]), ipaddress.IPv4Address(packet[16:20])
            proto = packet[9]
        elif packet and packet[0] >> 4 == 6 and len(packet) >= 40:
            src, dst = ipaddress.IPv6Address(packet[8:24]), ipaddress.IPv6Address(packet[24:40])
            proto = packet[6]
        else:
            return f"{len(packet)} octets"
    except ValueError:
        return f"{len(packet)} octets"
    name = IP_PROTOCOLS.get(proto, str(proto))
    return f"IPv{src.version} {src} -> {dst} {name}, {len(packet)} octets"


def _loose_header(data: bytes) -> IkeHeader:
    """The header fields read without the checks of :func:`decode_header` (for display)."""
    spi_i, spi_r, nxt, version, exch, flags, msg_id, length = struct.unpack_from(
        "!8s8sBBBBII", data, 0
    )
    return IkeHeader(spi_i, spi_r, nxt, exch, msg_id, flags, version >> 4, version & 15, length)
