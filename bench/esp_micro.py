"""Microbenchmark of the per-packet ESP path: encapsulate / decapsulate of 1400-octet packets.

Usage: python bench/esp_micro.py [--packets N] [--size OCTETS]
Prints packets/s and Mbit/s (inner octets) per transform and direction.
"""

from __future__ import annotations

import argparse
import os
import struct
import time

from petrel.crypto.encr import encr_spec
from petrel.crypto.integ import integ_spec
from petrel.esp.sa import InboundSa, OutboundSa
from petrel.wire.registry import EncrId, IntegId

SUITES = {
    "aes256gcm16": (encr_spec(EncrId.AES_GCM_16, 256), None),
    "aes128gcm16": (encr_spec(EncrId.AES_GCM_16, 128), None),
    "chacha20poly1305": (encr_spec(EncrId.CHACHA20_POLY1305), None),
    "aes128-sha256": (encr_spec(EncrId.AES_CBC, 128), integ_spec(IntegId.HMAC_SHA2_256_128)),
}


def inner_packet(size: int) -> bytes:
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 17, 0, bytes(4), bytes(4))
    return header + os.urandom(size - len(header))


def run(name: str, count: int, size: int) -> None:
    encr, integ = SUITES[name]
    ekey = os.urandom(encr.key_size)
    ikey = os.urandom(integ.key_size if integ else 0)
    out = OutboundSa(0x1000, encr, ekey, integ, ikey, esn=True)
    inb = InboundSa(0x1000, encr, ekey, integ, ikey, esn=True, replay_window=128)
    inner = inner_packet(size)
    encapsulate, decapsulate = out.encapsulate, inb.decapsulate

    start = time.perf_counter()
    packets = [encapsulate(inner) for _ in range(count)]
    enc_s = time.perf_counter() - start

    start = time.perf_counter()
    for packet in packets:
        decapsulate(packet)
    dec_s = time.perf_counter() - start
    assert inb.counters.packets == count, inb.drops

    for label, seconds in (("encapsulate", enc_s), ("decapsulate", dec_s)):
        pps = count / seconds
        print(f"{name:18} {label:12} {pps:10,.0f} packets/s {pps * size * 8 / 1e6:9,.1f} Mbit/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=1400)
    parser.add_argument("--suite", choices=sorted(SUITES), action="append")
    args = parser.parse_args()
    for name in args.suite or ["aes256gcm16"]:
        run(name, args.packets, args.size)


if __name__ == "__main__":
    main()
