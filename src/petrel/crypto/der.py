"""A minimal, strict DER reader and writer (ITU-T X.690 §8, §10) for the few structures
Petrel parses itself: AlgorithmIdentifier (RFC 5280 §4.1.1.2), RSASSA-PSS parameters
(RFC 4055 §3.1), distinguished names (RFC 5280 §4.1.2.4) and the outer certificate frame.

Only single-octet tags and definite lengths in minimal form are accepted; every length is
checked against the bytes that are really there. Anything else is :class:`MalformedInput`.
"""

from __future__ import annotations

from dataclasses import dataclass

from petrel.crypto.pki_errors import MalformedInput

__all__ = [
    "BIT_STRING",
    "BOOLEAN",
    "INTEGER",
    "NULL",
    "OCTET_STRING",
    "OID",
    "SEQUENCE",
    "SET",
    "Tlv",
    "context",
    "decode_int",
    "decode_oid",
    "encode_int",
    "encode_oid",
    "read_all",
    "read_one",
    "tlv",
]

BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
SEQUENCE = 0x30
SET = 0x31

_MAX_LENGTH_OCTETS = 4
_MAX_OID_ARC_OCTETS = 8


def context(number: int, constructed: bool = True) -> int:
    """The tag octet of ``[number]`` (context-specific class, X.690 §8.1.2)."""
    if not 0 <= number < 31:
        raise ValueError("context tag number out of range")
    return 0x80 | (0x20 if constructed else 0) | number


@dataclass(frozen=True, slots=True)
class Tlv:
    """One DER element: its tag octet, its contents octets and its whole encoding."""

    tag: int
    value: bytes
    raw: bytes

    def children(self) -> list[Tlv]:
        """The elements inside a constructed element (SEQUENCE, SET, [n])."""
        if not self.tag & 0x20:
            raise MalformedInput(f"DER tag {self.tag:#04x} is not constructed")
        return read_all(self.value)

    def expect(self, tag: int, what: str = "element") -> Tlv:
        if self.tag != tag:
            raise MalformedInput(f"{what}: expected DER tag {tag:#04x}, found {self.tag:#04x}")
        return self


def _read(data: bytes, offset: int) -> tuple[Tlv, int]:
    end = len(data)
    if offset + 2 > end:
        raise MalformedInput("DER element truncated")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise MalformedInput("multi-octet DER tags are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise MalformedInput("indefinite DER length")
        if count > _MAX_LENGTH_OCTETS:
            raise MalformedInput("DER length too large")
        if pos + count > end:
            raise MalformedInput("DER length truncated")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise MalformedInput("DER length not in minimal form")
        pos += count
    if pos + length > end:
        raise MalformedInput("DER element longer than its container")
    stop = pos + length
    return Tlv(tag, bytes(data[pos:stop]), bytes(data[offset:stop])), stop


def read_one(data: bytes) -> Tlv:
    """Exactly one element filling ``data``; trailing bytes are an error."""
    element, pos = _read(bytes(data), 0)
    if pos != len(data):
        raise MalformedInput("trailing bytes after DER element")
    return element


def read_all(data: bytes) -> list[Tlv]:
    """The consecutive elements that exactly fill ``data``."""
    data = bytes(data)
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        element, pos = _read(data, pos)
        out.append(element)
    return out


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one element."""
    return bytes([tag]) + _length(len(value)) + bytes(value)


def encode_int(n: int) -> bytes:
    """An INTEGER element (two's complement, minimal)."""
    size = max(1, (n.bit_length() + 8) // 8)
    return tlv(INTEGER, n.to_bytes(size, "big", signed=True))


def decode_int(value: bytes) -> int:
    """The contents of an INTEGER; non-minimal encodings are refused (X.690 §8.3.2)."""
    if not value:
        raise MalformedInput("empty DER INTEGER")
    if len(value) > 1 and (
        (value[0] == 0 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80)
    ):
        raise MalformedInput("DER INTEGER not in minimal form")
    return int.from_bytes(value, "big", signed=True)


def encode_oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER element from its dotted form (X.690 §8.19)."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"invalid OID {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(OID, bytes(body))


def decode_oid(value: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER's contents."""
    if not value or value[-1] & 0x80:
        raise MalformedInput("truncated DER OBJECT IDENTIFIER")
    arcs: list[int] = []
    arc = 0
    octets = 0
    for b in value:
        if octets == 0 and b == 0x80:
            raise MalformedInput("DER OBJECT IDENTIFIER arc not in minimal form")
        arc = (arc << 7) | (b & 0x7F)
        octets += 1
        if octets > _MAX_OID_ARC_OCTETS:
            raise MalformedInput("DER OBJECT IDENTIFIER arc too large")
        if not b & 0x80:
            arcs.append(arc)
            arc = 0
            octets = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])
