"""Structure-aware atheris target for ESP decapsulation (RFC 4303, :class:`InboundSa`).

An input is either

* a *session* (first octet < 0xF0): a suite (AEAD: AES-GCM 8/12/16, AES-CCM, ChaCha20-Poly1305,
  AES-GMAC; cipher+integrity: AES-CBC, AES-CTR, NULL with HMAC), ESN on or off, a replay
  window, then up to 12 packets sealed with the SA's keys: well-formed tunnel packets
  (IPv4/IPv6, with TFC padding) by the data plane's own ``OutboundSa``, and, through the same
  keyed transform objects, *authentic packets with any plaintext the input likes* (bad pad
  length, bad padding, bad next header, short or lying inner headers, dummy packets),
  forgeries, tampered and truncated packets, at sequence numbers around the window
  (replays, old, far ahead, across 2^32 with ESN).  Every verdict is checked against an
  independent model of RFC 4303 (§2.4 padding, §2.6 next header, §3.4.3 replay window and
  Appendix A ESN inference, §3.4.4 integrity): accepted or dropped, with which inner packet
  and for which reason; counters must add up; no sequence number is ever accepted twice
  (unless anti-replay is off);
* or *raw bytes* (first octet >= 0xF0): one UDP/4500 payload classified (RFC 3948) and, if
  ESP, decapsulated by the Child SA of ``samples/ikev2-psk.pcap`` (keys from
  ``samples/esp_sa``); the seeds are that capture's real ESP packets.

Run:  python3 fuzz/fuzz_esp.py -atheris_runs=100000 [corpus_dir]
"""

from __future__ import annotations

import dataclasses
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Input, instrumentation
from _common import main as run_fuzzer

with instrumentation(__name__, ("petrel.esp",)):
    from petrel.crypto.encr import EncrSpec, encr_spec
    from petrel.crypto.integ import IntegSpec, integ_spec
    from petrel.decode.keys import parse_esp_sa
    from petrel.esp.counters import DropCounters
    from petrel.esp.sa import InboundSa, OutboundSa
    from petrel.esp.udpencap import UdpKind, classify
    from petrel.wire.registry import EncrId, IntegId

NAME = "esp"
SPI = 0x0A0B0C0D
RAW_MODE = 0xF0
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    encr: EncrSpec
    integ: IntegSpec | None


def _suite(name: str, encr: EncrId, bits: int | None = None, integ: IntegId | None = None) -> Suite:
    return Suite(name, encr_spec(encr, bits), integ_spec(integ) if integ is not None else None)


SUITES = (
    _suite("aes128gcm16", EncrId.AES_GCM_16, 128),
    _suite("aes256gcm8", EncrId.AES_GCM_8, 256),
    _suite("aes192gcm12", EncrId.AES_GCM_12, 192),
    _suite("aes128ccm8", EncrId.AES_CCM_8, 128),
    _suite("aes256ccm16", EncrId.AES_CCM_16, 256),
    _suite("chacha20poly1305", EncrId.CHACHA20_POLY1305),
    _suite("aes128gmac", EncrId.NULL_AUTH_AES_GMAC, 128),
    _suite("aes128-sha256", EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128),
    _suite("aes256-sha1", EncrId.AES_CBC, 256, IntegId.HMAC_SHA1_96),
    _suite("aes128ctr-sha512", EncrId.AES_CTR, 128, IntegId.HMAC_SHA2_512_256),
    _suite("aes128-aesxcbc", EncrId.AES_CBC, 128, IntegId.AES_XCBC_96),
    _suite("null-sha384", EncrId.NULL, None, IntegId.HMAC_SHA2_384_192),
)
DROP_REASONS = tuple(f.name for f in dataclasses.fields(DropCounters))
WINDOWS = (32, 0, 1, 64, 128, 1024, 4096, 2)


class Sealer:
    """The sending side: the data plane's own :class:`OutboundSa` for well-formed packets,
    and :meth:`seal`, written from RFC 4303 §2 and RFC 4106 §5 over the same keyed transform
    objects, for any plaintext at all (trailer included) at any sequence number."""

    def __init__(self, suite: Suite, esn: bool) -> None:
        self.suite = suite
        self.esn = esn
        encr = suite.encr
        self.encr_key = bytes((i * 7 + 1) & 0xFF for i in range(encr.key_size))
        self.integ_key = (
            bytes((i * 13 + 5) & 0xFF for i in range(suite.integ.key_size))
            if (suite.integ)
            else b""
        )
        self.cipher = encr.keyed(self.encr_key)
        self.mac = suite.integ.keyed(self.integ_key) if suite.integ else None
        self.block = encr.block_size if encr.block_size > 4 else 1
        self.outbound = OutboundSa(SPI, encr, self.encr_key, suite.integ, self.integ_key, esn)

    def inbound(self, window: int) -> InboundSa:
        s = self.suite
        return InboundSa(SPI, s.encr, self.encr_key, s.integ, self.integ_key, self.esn, window)

    def seal(self, seq: int, plaintext: bytes, iv: bytes) -> bytes:
        encr = self.suite.encr
        head = struct.pack(">II", SPI, seq & MASK32) + iv
        if encr.aead:
            aad = struct.pack(">III", SPI, seq >> 32, seq & MASK32) if self.esn else head[:8]
            return head + self.cipher.seal(iv, plaintext, aad)  # type: ignore[union-attr]
        body = head + self.cipher.encrypt(iv, plaintext)  # type: ignore[union-attr]
        high = struct.pack(">I", seq >> 32) if self.esn else b""
        assert self.mac is not None
        return body + self.mac.compute(body + high)


_SEALERS: dict[tuple[int, bool], Sealer] = {}


def sealer(index: int, esn: bool) -> Sealer:
    key = (index, esn)
    if key not in _SEALERS:
        _SEALERS[key] = Sealer(SUITES[index], esn)
    return _SEALERS[key]


# ---------------------------------------------------------------------------- the model


class Model:
    """RFC 4303 receive processing, written from the RFC: §3.4.3 anti-replay with Appendix A2
    ESN inference, §2.4 padding, §2.6 next header, tunnel-mode inner length (§2.7 TFC)."""

    def __init__(self, window: int, esn: bool) -> None:
        self.window = window
        self.esn = esn
        self.top = 0
        self.seen: set[int] = set()

    def infer(self, low: int) -> int:
        if not self.esn:
            return low
        w = self.window or 1 << 31
        top_low, top_high = self.top & MASK32, self.top >> 32
        if top_low >= w - 1:  # A2.1 case A: the window within one 2^32 block
            high = top_high + 1 if low < top_low - w + 1 else top_high
        else:  # case B: the window spans two blocks
            bottom = (top_low - w + 1) & MASK32
            high = top_high - 1 if low >= bottom and top_high > 0 else top_high
        return ((high << 32) | low) & MASK64

    def fresh(self, seq: int) -> bool:
        if seq == 0:
            return False
        if not self.window or seq > self.top:
            return True
        return self.top - seq < self.window and seq not in self.seen

    def record(self, seq: int) -> None:
        self.seen.add(seq)
        self.top = max(self.top, seq)
        if self.window:
            self.seen = {s for s in self.seen if self.top - s < self.window}


def inner_length(plaintext: bytes, end: int, next_header: int) -> int | None:
    if next_header == 4:
        if end < 20 or plaintext[0] >> 4 != 4:
            return None
        ihl, total = (plaintext[0] & 15) * 4, int.from_bytes(plaintext[2:4], "big")
        return total if 20 <= ihl <= total <= end else None
    if end < 40 or plaintext[0] >> 4 != 6:
        return None
    total = 40 + int.from_bytes(plaintext[4:6], "big")
    return total if total <= end else None


def verdict(plaintext: bytes) -> tuple[str, tuple[int, bytes] | None]:
    """(drop reason or "ok", what decapsulate returns) for an authentic, fresh packet."""
    pad_len, next_header = plaintext[-2], plaintext[-1]
    end = len(plaintext) - 2 - pad_len
    if end < 0 or plaintext[end : end + pad_len] != bytes(range(1, pad_len + 1)):
        return "bad_padding", None
    if next_header == 59:
        return "dummy", None
    if next_header not in (4, 41):
        return "bad_next_header", None
    length = inner_length(plaintext, end, next_header)
    if length is None:
        return "bad_inner", None
    return "ok", (next_header, plaintext[:length])


# ---------------------------------------------------------------------------- inputs


def trailer(length: int, next_header: int, align: int) -> bytes:
    pad = -(length + 2) % align
    return bytes(range(1, pad + 1)) + bytes((pad, next_header))


def inner_packet(inp: Input) -> bytes:
    payload = inp.blob(80)
    if inp.bool():
        total = 20 + len(payload)
        return struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 17, 0, bytes(4), bytes(4)) + (
            payload
        )
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), 17, 64, bytes(16), bytes(16)) + (
        payload
    )


def choose_seq(inp: Input, model: Model, last: int, used: list[int]) -> int:
    """A sequence number (32 bits, or 64 with ESN): replays, around the window, far ahead."""
    return _seq(inp, model, last, used) & (MASK64 if model.esn else MASK32)


def _seq(inp: Input, model: Model, last: int, used: list[int]) -> int:
    choice = inp.int(8)
    if choice == 0 and used:
        return inp.pick(used)  # a replay
    if choice == 1:
        return max(model.top - inp.int(model.window + 3), 0)  # in or just below the window
    if choice == 2:
        return model.top + 1 + inp.int(model.window * 2 + 2)  # ahead, maybe past the window
    if choice == 3:
        return inp.int(1 << 32) if not model.esn else inp.int(1 << 64)
    if choice == 4 and model.esn:
        return ((model.top >> 32) + inp.int(3)) << 32 | inp.pick((0, 1, MASK32, MASK32 - 1))
    if choice == 5:
        return inp.pick((0, 1, MASK32, MASK32 + 1 if model.esn else MASK32))
    return last + 1


def session(inp: Input) -> None:
    index = inp.int(len(SUITES))
    esn = inp.bool()
    window = inp.pick(WINDOWS)
    s = sealer(index, esn)
    sa = s.inbound(window)
    model = Model(window, esn)
    align = max(s.suite.encr.block_size, 4)
    iv_size = s.suite.encr.iv_size
    iv_zero = bytes(iv_size)
    last, used, accepted = 0, [], set()
    fed = ok = 0
    for _ in range(1 + inp.int(12)):
        kind = inp.int(6)
        seq = choose_seq(inp, model, last, used)
        last = seq
        used.append(seq)
        if kind == 0:  # a well-formed tunnel packet, maybe with TFC padding
            inner = inner_packet(inp)
            body = inner + bytes(inp.int(32))
            plaintext = body + trailer(len(body), 4 if inner[0] >> 4 == 4 else 41, align)
        elif kind == 1:  # authentic, any plaintext at all
            plaintext = inp.blob(120)
            if s.block > 1:  # whole blocks for CBC (the octets added are payload)
                plaintext = bytes(-len(plaintext) % s.block) + plaintext
        elif kind == 2:  # a dummy packet (§2.6)
            body = inp.blob(40)
            plaintext = body + trailer(len(body), 59, align)
        else:
            plaintext = inner_packet(inp)
            plaintext += trailer(len(plaintext), 4 if plaintext[0] >> 4 == 4 else 41, align)
        if kind == 0 and seq:  # sealed by the data plane's OutboundSa, at sequence number seq
            s.outbound.seq = seq - 1
            packet = s.outbound.encapsulate(body, plaintext[-1])
            if s.outbound.seq != seq or len(packet) != len(s.seal(seq, plaintext, iv_zero)):
                raise AssertionError(f"OutboundSa sent {s.outbound.seq}, {len(packet)} octets")
        else:
            packet = s.seal(seq, plaintext, inp.bytes(iv_size).ljust(iv_size, b"\0"))
        if kind == 3:  # forged: the right header, a random body
            packet = packet[:8] + inp.blob(len(packet))
        elif kind == 4 and packet:  # tampered after sealing
            pos = inp.int(len(packet))
            packet = packet[:pos] + bytes((packet[pos] ^ (1 + inp.int(255)),)) + packet[pos + 1 :]
        elif kind == 5:
            packet = packet[: inp.int(len(packet))]
        drops = sa.drops
        before = [getattr(drops, f) for f in DROP_REASONS]
        result = sa.decapsulate(packet, now=1.0)
        fed += 1
        reasons = [f for f, n in zip(DROP_REASONS, before, strict=True) if getattr(drops, f) != n]
        if result is not None:
            ok += 1
            if reasons:
                raise AssertionError(f"accepted and counted as a drop: {reasons}")
            if result[0] not in (4, 41):
                raise AssertionError(f"accepted next header {result[0]}")
        elif len(reasons) != 1:
            raise AssertionError(f"one drop, {len(reasons)} reasons: {reasons}")
        expected = expect(s, model, seq, packet, plaintext, kind)
        if kind >= 3:  # not authentic: whatever happens, nothing gets through
            if result is not None:
                raise AssertionError(f"forged or damaged packet accepted (kind {kind})")
            continue
        reason, value = expected
        if result != value or (reason != "ok" and reasons != [reason]):
            raise AssertionError(
                f"{s.suite.name} esn={esn} window={window} seq={seq:#x}: expected {reason} "
                f"{value!r}, got {result!r} {reasons}"
            )
        if result is not None:  # then the receiver's ESN guess was the sender's number
            if window and seq in accepted:
                raise AssertionError(f"sequence number {seq:#x} accepted twice")
            accepted.add(seq)
    dropped = sum(getattr(sa.drops, f) for f in DROP_REASONS)
    if sa.counters.packets != ok or dropped != fed - ok:
        raise AssertionError(f"counters do not add up: {sa.counters} {sa.drops} ({fed} fed)")


def expect(
    s: Sealer, model: Model, seq: int, packet: bytes, plaintext: bytes, kind: int
) -> tuple[str, tuple[int, bytes] | None]:
    """The model's verdict; it advances the model's window as the receiver must."""
    encr = s.suite.encr
    icv = s.suite.integ.icv_size if s.suite.integ else encr.icv_size
    if len(packet) < 8 + encr.iv_size + max(s.block, 2) + icv:
        return "truncated", None
    if int.from_bytes(packet[:4], "big") != SPI:
        return "bad_spi", None
    full = model.infer(int.from_bytes(packet[4:8], "big"))
    if not model.fresh(full):
        return "replay", None
    if (len(packet) - 8 - encr.iv_size - icv) % s.block:
        return "bad_length", None
    if kind >= 3 or full != seq:  # a wrong ESN guess fails the ICV, as it must
        return "integrity", None
    model.record(full)
    return verdict(plaintext)


# ---------------------------------------------------------------------------- raw packets

_SAMPLE_SAS: list[tuple[int, tuple[EncrSpec, bytes, IntegSpec | None, bytes]]] = []


def sample_sas() -> list[tuple[int, tuple[EncrSpec, bytes, IntegSpec | None, bytes]]]:
    """The Child SA of samples/ikev2-psk.pcap: (SPI, keys) per direction."""
    if not _SAMPLE_SAS:
        for row in parse_esp_sa((SAMPLES / "esp_sa").read_text()):
            assert row.encr == EncrId.AES_GCM_16
            encr = encr_spec(row.encr, (len(row.encr_key) - 4) * 8)
            _SAMPLE_SAS.append((row.spi, (encr, row.encr_key, None, b"")))
    return _SAMPLE_SAS


def raw(data: bytes) -> None:
    kind, view = classify(data)
    if kind is not UdpKind.ESP:
        return
    packet = bytes(view)
    for spi, (encr, key, integ, integ_key) in sample_sas():
        sa = InboundSa(spi, encr, key, integ, integ_key, False, 64)
        result = sa.decapsulate(packet)
        again = sa.decapsulate(packet)
        if result is not None and (result[0] not in (4, 41) or again is not None):
            raise AssertionError(f"raw packet: {result!r}, then {again!r}")


def TestOneInput(data: bytes) -> None:
    inp = Input(data)
    if inp.byte() >= RAW_MODE:
        raw(data[1:])
    else:
        session(inp)


def seeds() -> list[bytes]:
    """Sessions with well-formed packets (every suite, ESN on and off)."""
    out = []
    for index in range(len(SUITES)):
        for esn in (0, 1):
            out.append(bytes((0, index, esn, 0, 4, 0, 0, 0, 0, 0, 0, 20)) + bytes(24))
            out.append(bytes((0, index, esn, 0, 8, 2, 1, 6, 1, 3, 0, 0, 0)) + b"\x45" * 40)
    return out


if __name__ == "__main__":
    sample_sas()
    run_fuzzer(NAME, sys.argv, TestOneInput, seeds=seeds)
