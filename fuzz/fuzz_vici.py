"""Atheris target for the VICI codec (petrel.control.vici).

The first octet chooses what the rest is:

* ``0``: a message body for ``decode_message``;
* ``1``: a packet body (type, name, message) for ``decode_packet``;
* ``2``: a byte stream for :class:`PacketReader`, fed in chunks whose sizes come first;
* ``3``: a *structured* message: nested sections, lists and values built from the input,
  encoded, then decoded;
* ``4`` (and the first octet modulo 5 in general): the first three on the same octets.

The only exception allowed is :class:`ViciError`.  Whatever decodes must re-encode to exactly
the octets it came from (VICI has one encoding per message), and decode again to the same
value; a structured message must decode to what was encoded (values as text).

Run:  python3 fuzz/fuzz_vici.py -atheris_runs=100000 [corpus_dir]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Input, instrumentation
from _common import main as run_fuzzer

with instrumentation(__name__, ("petrel.control.vici",)):
    from petrel.control.vici import (
        MAX_DEPTH,
        MAX_SEGMENT,
        PacketReader,
        PacketType,
        ViciError,
        decode_message,
        decode_packet,
        encode_message,
        encode_packet,
    )

NAME = "vici"


def check_message(body: bytes) -> None:
    try:
        message = decode_message(body)
    except ViciError:
        return
    again = encode_message(message)
    if again != body:
        raise AssertionError(f"message re-encodes differently: {body!r} -> {again!r}")
    if decode_message(again) != message:
        raise AssertionError("message does not survive a round trip")


def check_packet(body: bytes) -> None:
    try:
        packet = decode_packet(body)
    except ViciError:
        return
    segment = encode_packet(packet.type, packet.name, packet.message)
    if segment != len(body).to_bytes(4, "big") + body:
        raise AssertionError(f"packet re-encodes differently: {body!r} -> {segment!r}")
    if decode_packet(segment[4:]) != packet:
        raise AssertionError("packet does not survive a round trip")


def check_stream(inp: Input) -> None:
    sizes = [inp.int(64) for _ in range(inp.int(8))]
    stream = inp.rest()
    reader = PacketReader()
    expected = _split_segments(stream)
    got = []
    pos = 0
    try:
        for size in [*sizes, len(stream)]:
            got += reader.feed(stream[pos : pos + size])
            pos += size
            if pos >= len(stream):
                break
    except ViciError:
        if expected is not None and len(got) >= len(expected):
            raise AssertionError("reader failed on a stream of valid segments") from None
        return
    if expected is not None and got != expected[: len(got)]:
        raise AssertionError("reader's packets differ from the segments decoded one by one")


def _split_segments(stream: bytes) -> list[Any] | None:
    """The packets of the complete, valid segments at the start of ``stream`` (None as soon as
    one is invalid)."""
    packets = []
    pos = 0
    while pos + 4 <= len(stream):
        length = int.from_bytes(stream[pos : pos + 4], "big")
        if length == 0 or length > MAX_SEGMENT:
            return None
        if pos + 4 + length > len(stream):
            break
        try:
            packets.append(decode_packet(stream[pos + 4 : pos + 4 + length]))
        except ViciError:
            return None
        pos += 4 + length
    return packets


_NAMES = ("", "a", "child", "ike", "version", "local_ts", "\udcff", "x" * 255, "é")


def build(inp: Input, depth: int) -> dict[str, Any]:
    message: dict[str, Any] = {}
    for _ in range(inp.int(6)):
        kind = inp.int(4)
        name = inp.pick(_NAMES) if inp.bool() else inp.blob(12).decode("utf-8", "surrogateescape")
        if kind == 0 and depth < MAX_DEPTH:
            value: Any = build(inp, depth + 1)
        elif kind == 1:
            value = [inp.blob(20).decode("utf-8", "surrogateescape") for _ in range(inp.int(4))]
        else:
            value = inp.blob(40).decode("utf-8", "surrogateescape")
        message.setdefault(name, value)
    return message


def check_structured(inp: Input) -> None:
    message = build(inp, 0)
    body = encode_message(message)
    if decode_message(body) != message:
        raise AssertionError(f"{message!r} does not survive encoding")
    ptype = PacketType(inp.int(len(PacketType)))
    name = "list-sas" if ptype.named else None
    segment = encode_packet(ptype, name, message if ptype.has_message else None)
    packet = decode_packet(segment[4:])
    if packet.type != ptype or packet.name != name:
        raise AssertionError(f"packet header lost: {packet!r}")
    if ptype.has_message and packet.message != message:
        raise AssertionError("packet message lost")


def TestOneInput(data: bytes) -> None:
    inp = Input(data)
    mode = inp.byte() % 5
    body = data[1:]
    if mode == 0:
        check_message(body)
    elif mode == 1:
        check_packet(body)
    elif mode == 2:
        check_stream(inp)
    elif mode == 3:
        check_structured(inp)
    else:
        check_message(body)
        check_packet(body)
        check_stream(Input(body))


def seeds() -> list[bytes]:
    """Real VICI traffic: the requests and answers swanctl and Petrel exchange."""
    list_sas = {
        "c": {
            "uniqueid": "1",
            "state": "ESTABLISHED",
            "child-sas": {"net-1": {"spi-in": "c0ffee01", "local-ts": ["10.1.0.0/16"]}},
        }
    }
    packets = [
        encode_packet(PacketType.CMD_REQUEST, "version", {}),
        encode_packet(PacketType.CMD_RESPONSE, None, {"daemon": "petrel", "version": "0.1.0"}),
        encode_packet(PacketType.CMD_REQUEST, "initiate", {"child": "net", "timeout": "5000"}),
        encode_packet(PacketType.EVENT_REGISTER, "list-sa"),
        encode_packet(PacketType.EVENT_CONFIRM),
        encode_packet(PacketType.EVENT, "list-sa", list_sas),
        encode_packet(PacketType.EVENT_UNREGISTER, "list-sa"),
        encode_packet(PacketType.CMD_UNKNOWN),
        encode_packet(PacketType.EVENT_UNKNOWN),
    ]
    out = [bytes((0,)) + encode_message(list_sas)]
    out += [bytes((1,)) + p[4:] for p in packets]
    out.append(bytes((2, 3, 5, 17, 40)) + b"".join(packets))
    out.append(bytes((3, 3, 0, 1, 2, 1, 0x61, 2, 2, 1, 0x62)))
    return out


if __name__ == "__main__":
    run_fuzzer(NAME, sys.argv, TestOneInput, seeds=seeds, defaults=("-max_len=1024",))
