"""VICI wire codec (strongSwan's Versatile IKE Control Interface): messages and packets.

Pure, sans-I/O. Every malformed input raises :class:`ViciError` and nothing else.

Value representation (decoding): every key-value and list item becomes a ``str`` decoded as
UTF-8 with ``errors="surrogateescape"``, so non-UTF-8 bytes (DER certificates, raw PSKs)
survive losslessly as lone surrogates; recover the raw bytes with :func:`value_bytes`.
Element names decode the same way. Encoding accepts ``str`` (re-encoded with surrogateescape),
``bytes``, ``int`` (decimal) and ``bool`` (``yes``/``no``); a ``Mapping`` becomes a section and
a ``list``/``tuple`` a list of values. A name repeated at one level is rejected: a dict cannot
hold both, and silently keeping one would hide a confused or hostile peer.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_NAME",
    "MAX_SEGMENT",
    "MAX_VALUE",
    "Message",
    "Packet",
    "PacketReader",
    "PacketType",
    "ViciError",
    "decode_message",
    "decode_packet",
    "encode_message",
    "encode_packet",
    "value_bytes",
]

MAX_SEGMENT = 512 * 1024
"""Largest segment body (the 4-byte length prefix not counted)."""
MAX_NAME = 255
MAX_VALUE = 65535
MAX_DEPTH = 64
"""Deepest section nesting accepted (Petrel's own bound; strongSwan's messages nest < 8)."""

Message = dict[str, Any]
"""A decoded message: values are ``str``, ``list[str]`` or nested ``Message``."""


class ViciError(ValueError):
    """Malformed or oversized VICI data (the only exception this module raises)."""


class PacketType(enum.IntEnum):
    """Packet type in byte 0 of a segment."""

    CMD_REQUEST = 0
    CMD_RESPONSE = 1
    CMD_UNKNOWN = 2
    EVENT_REGISTER = 3
    EVENT_UNREGISTER = 4
    EVENT_CONFIRM = 5
    EVENT_UNKNOWN = 6
    EVENT = 7

    @property
    def named(self) -> bool:
        """True when a 1-byte-length name follows the type byte."""
        return self in _NAMED

    @property
    def has_message(self) -> bool:
        """True when the rest of the segment is a message."""
        return self in _WITH_MESSAGE


_NAMED = frozenset(
    {
        PacketType.CMD_REQUEST,
        PacketType.EVENT_REGISTER,
        PacketType.EVENT_UNREGISTER,
        PacketType.EVENT,
    }
)
_WITH_MESSAGE = frozenset({PacketType.CMD_REQUEST, PacketType.CMD_RESPONSE, PacketType.EVENT})

# Element types.
_SECTION_START = 1
_SECTION_END = 2
_KEY_VALUE = 3
_LIST_START = 4
_LIST_ITEM = 5
_LIST_END = 6


@dataclass(frozen=True, slots=True)
class Packet:
    """One VICI packet: ``name`` is set for named types, ``message`` for message types."""

    type: PacketType
    name: str | None = None
    message: Message | None = field(default=None)


def reply(errmsg: str | None = None) -> dict[str, str]:
    """charon's create_reply for a command: success yes, or no with errmsg."""
    return {"success": "yes"} if errmsg is None else {"success": "no", "errmsg": errmsg}


def value_bytes(value: str) -> bytes:
    """The raw bytes of a decoded value (inverse of the surrogateescape decoding)."""
    return value.encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- encoding


def _name_bytes(name: object) -> bytes:
    if isinstance(name, str):
        try:
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise ViciError(f"name not encodable: {name!r}") from exc
    elif isinstance(name, bytes):
        raw = name
    else:
        raise ViciError(f"name must be str, not {type(name).__name__}")
    if len(raw) > MAX_NAME:
        raise ViciError(f"name longer than {MAX_NAME} bytes")
    return raw


def _value_bytes(value: object) -> bytes:
    if isinstance(value, bool):
        raw = b"yes" if value else b"no"
    elif isinstance(value, int):
        raw = str(value).encode("ascii")
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise ViciError("value not encodable as UTF-8") from exc
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    else:
        raise ViciError(f"unsupported value type {type(value).__name__}")
    if len(raw) > MAX_VALUE:
        raise ViciError(f"value longer than {MAX_VALUE} bytes")
    return raw


def _encode_into(out: bytearray, message: Mapping[Any, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ViciError(f"sections nested deeper than {MAX_DEPTH}")
    for key, value in message.items():
        name = _name_bytes(key)
        if isinstance(value, Mapping):
            out += bytes((_SECTION_START, len(name))) + name
            _encode_into(out, value, depth + 1)
            out.append(_SECTION_END)
        elif isinstance(value, list | tuple):
            out += bytes((_LIST_START, len(name))) + name
            for item in value:
                if isinstance(item, Mapping | list | tuple):
                    raise ViciError(f"list {key!r} may hold only values")
                raw = _value_bytes(item)
                out.append(_LIST_ITEM)
                out += len(raw).to_bytes(2, "big") + raw
            out.append(_LIST_END)
        else:
            raw = _value_bytes(value)
            out += bytes((_KEY_VALUE, len(name))) + name
            out += len(raw).to_bytes(2, "big") + raw


def encode_message(message: Mapping[Any, Any]) -> bytes:
    """Encode a (nested) mapping as a VICI message body."""
    if not isinstance(message, Mapping):
        raise ViciError("message must be a mapping")
    out = bytearray()
    _encode_into(out, message, 0)
    return bytes(out)


def encode_packet(
    ptype: PacketType, name: str | None = None, message: Mapping[Any, Any] | None = None
) -> bytes:
    """Encode one packet as a full segment, 4-byte big-endian length prefix included."""
    try:
        ptype = PacketType(ptype)
    except ValueError as exc:
        raise ViciError(f"unknown packet type {ptype!r}") from exc
    body = bytearray((ptype,))
    if ptype.named:
        if name is None:
            raise ViciError(f"{ptype.name} needs a name")
        raw = _name_bytes(name)
        body += bytes((len(raw),)) + raw
    elif name is not None:
        raise ViciError(f"{ptype.name} carries no name")
    if message is not None:
        if not ptype.has_message:
            raise ViciError(f"{ptype.name} carries no message")
        body += encode_message(message)
    if len(body) > MAX_SEGMENT:
        raise ViciError(f"packet larger than {MAX_SEGMENT} bytes")
    return len(body).to_bytes(4, "big") + bytes(body)


# --------------------------------------------------------------------------- decoding


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ViciError("truncated element")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def name(self) -> str:
        return _text(self.take(self.byte()))

    def value(self) -> str:
        return _text(self.take(int.from_bytes(self.take(2), "big")))


def _insert(target: Message, key: str, value: Any) -> None:
    if key in target:
        raise ViciError(f"duplicate name {key!r}")
    target[key] = value


def decode_message(data: bytes) -> Message:
    """Decode a VICI message body into nested dicts / lists / str (see module docstring)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ViciError("message must be bytes")
    cur = _Cursor(bytes(data))
    root: Message = {}
    stack: list[Message] = [root]
    current_list: list[str] | None = None
    while cur.pos < len(cur.data):
        etype = cur.byte()
        if current_list is not None:
            if etype == _LIST_ITEM:
                current_list.append(cur.value())
            elif etype == _LIST_END:
                current_list = None
            else:
                raise ViciError(f"element type {etype} inside a list")
            continue
        if etype == _SECTION_START:
            section: Message = {}
            _insert(stack[-1], cur.name(), section)
            stack.append(section)
            if len(stack) > MAX_DEPTH + 1:
                raise ViciError(f"sections nested deeper than {MAX_DEPTH}")
        elif etype == _SECTION_END:
            if len(stack) == 1:
                raise ViciError("unbalanced section end")
            stack.pop()
        elif etype == _KEY_VALUE:
            key = cur.name()
            _insert(stack[-1], key, cur.value())
        elif etype == _LIST_START:
            current_list = []
            _insert(stack[-1], cur.name(), current_list)
        elif etype in (_LIST_ITEM, _LIST_END):
            raise ViciError("list element outside a list")
        else:
            raise ViciError(f"unknown element type {etype}")
    if current_list is not None:
        raise ViciError("unterminated list")
    if len(stack) != 1:
        raise ViciError("unterminated section")
    return root


def decode_packet(body: bytes) -> Packet:
    """Decode one segment body (the bytes after the length prefix) into a :class:`Packet`."""
    if not body:
        raise ViciError("empty packet")
    if len(body) > MAX_SEGMENT:
        raise ViciError(f"packet larger than {MAX_SEGMENT} bytes")
    try:
        ptype = PacketType(body[0])
    except ValueError as exc:
        raise ViciError(f"unknown packet type {body[0]}") from exc
    pos = 1
    name: str | None = None
    if ptype.named:
        if len(body) < 2:
            raise ViciError("truncated packet name")
        end = 2 + body[1]
        if end > len(body):
            raise ViciError("truncated packet name")
        try:
            name = bytes(body[2:end]).decode("ascii")
        except UnicodeDecodeError as exc:
            raise ViciError("packet name is not ASCII") from exc
        pos = end
    rest = bytes(body[pos:])
    if ptype.has_message:
        return Packet(ptype, name, decode_message(rest))
    if rest:
        raise ViciError(f"{ptype.name} carries no message")
    return Packet(ptype, name, None)


class PacketReader:
    """Incremental segment reassembly: feed stream bytes, get complete packets.

    After a :class:`ViciError` the stream is desynchronised and the reader stays failed.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._failed = False

    @property
    def pending(self) -> int:
        """Bytes buffered towards an incomplete segment."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        """Append stream bytes; return every packet they complete, in order."""
        if self._failed:
            raise ViciError("stream already failed")
        self._buf += data
        packets: list[Packet] = []
        try:
            while len(self._buf) >= 4:
                length = int.from_bytes(self._buf[:4], "big")
                if length == 0 or length > MAX_SEGMENT:
                    raise ViciError(f"bad segment length {length}")
                if len(self._buf) < 4 + length:
                    break
                body = bytes(self._buf[4 : 4 + length])
                del self._buf[: 4 + length]
                packets.append(decode_packet(body))
        except ViciError:
            self._failed = True
            self._buf.clear()
            raise
        return packets
