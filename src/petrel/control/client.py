"""Synchronous VICI client over a UNIX stream socket (used by the ``petrel`` CLI).

Protocol errors (unexpected or malformed packets, unknown command/event) raise
:class:`~petrel.control.vici.ViciError`; a closed connection raises :class:`ConnectionError`;
a timeout raises :class:`TimeoutError`. Socket errors and malformed replies close the client.
"""

from __future__ import annotations

import collections
import contextlib
import socket
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from petrel.control.vici import (
    Message,
    Packet,
    PacketReader,
    PacketType,
    ViciError,
    encode_packet,
)

__all__ = ["DEFAULT_SOCKET", "ViciClient", "ViciCommandUnknown", "ViciEventUnknown"]

DEFAULT_SOCKET = "/var/run/charon.vici"
_MAX_QUEUED_EVENTS = 4096


class ViciCommandUnknown(ViciError):
    """The server answered CMD_UNKNOWN."""


class ViciEventUnknown(ViciError):
    """The server answered EVENT_UNKNOWN to a (un)registration."""


class ViciClient:
    """Blocking VICI client. One request at a time; events seen meanwhile are queued."""

    def __init__(self, path: str | None = None, timeout: float | None = 30.0) -> None:
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = PacketReader()
        self._packets: collections.deque[Packet] = collections.deque()
        self._events: collections.deque[tuple[str, Message]] = collections.deque(
            maxlen=_MAX_QUEUED_EVENTS
        )
        if path is not None:
            self.connect(path)

    def connect(self, path: str) -> None:
        """Connect to the VICI socket at ``path`` (closing any previous connection)."""
        self.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._reader = PacketReader()
        self._packets.clear()
        self._events.clear()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ViciClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ API

    def request(self, command: str, message: Mapping[str, Any] | None = None) -> Message:
        """Send CMD_REQUEST ``command`` and return the CMD_RESPONSE message."""
        _, response = self._exchange(command, message, None)
        return response

    def streamed(
        self,
        command: str,
        event: str,
        message: Mapping[str, Any] | None = None,
        on_event: Callable[[Message], None] | None = None,
    ) -> tuple[list[Message], Message]:
        """Register ``event``, run ``command``, collect its events until the response, unregister.

        Returns ``(event messages in arrival order, response message)``; ``on_event``, if
        given, also sees each event as it arrives (e.g. to print control-log lines live).
        """
        self.register(event)
        try:
            result = self._exchange(command, message, event, on_event)
        except BaseException:
            if self._sock is not None:
                with contextlib.suppress(ViciError, OSError):
                    self.unregister(event)
            raise
        self.unregister(event)
        return result

    def register(self, event: str) -> None:
        """EVENT_REGISTER; raises :class:`ViciEventUnknown` if the server refuses."""
        self._event_control(PacketType.EVENT_REGISTER, event)

    def unregister(self, event: str) -> None:
        """EVENT_UNREGISTER; raises :class:`ViciEventUnknown` if the server refuses."""
        self._event_control(PacketType.EVENT_UNREGISTER, event)

    def next_event(self) -> tuple[str, Message]:
        """Return the next event of a registered name: queued first, else wait for one."""
        if self._events:
            return self._events.popleft()
        while True:
            packet = self._recv()
            if packet.type == PacketType.EVENT:
                return _event(packet)
            raise ViciError(f"unexpected {packet.type.name} while waiting for an event")

    # ------------------------------------------------------------------ internals

    def _exchange(
        self,
        command: str,
        message: Mapping[str, Any] | None,
        collect: str | None,
        on_event: Callable[[Message], None] | None = None,
    ) -> tuple[list[Message], Message]:
        self._send(encode_packet(PacketType.CMD_REQUEST, command, message or {}))
        collected: list[Message] = []
        while True:
            packet = self._recv()
            if packet.type == PacketType.EVENT:
                name, body = _event(packet)
                if name == collect:
                    collected.append(body)
                    if on_event is not None:
                        on_event(body)
                else:
                    self._events.append((name, body))
            elif packet.type == PacketType.CMD_RESPONSE:
                return collected, packet.message or {}
            elif packet.type == PacketType.CMD_UNKNOWN:
                raise ViciCommandUnknown(f"unknown command {command!r}")
            else:
                raise ViciError(f"unexpected {packet.type.name} in reply to {command!r}")

    def _event_control(self, ptype: PacketType, event: str) -> None:
        self._send(encode_packet(ptype, event))
        while True:
            packet = self._recv()
            if packet.type == PacketType.EVENT:
                self._events.append(_event(packet))
            elif packet.type == PacketType.EVENT_CONFIRM:
                return
            elif packet.type == PacketType.EVENT_UNKNOWN:
                raise ViciEventUnknown(f"{ptype.name} {event!r} refused")
            else:
                raise ViciError(f"unexpected {packet.type.name} in reply to {ptype.name}")

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionError("not connected")
        return self._sock

    def _send(self, data: bytes) -> None:
        try:
            self._require().sendall(data)
        except OSError:
            self.close()  # broken or timed out: the stream state is unknown
            raise

    def _recv(self) -> Packet:
        sock = self._require()
        while not self._packets:
            try:
                data = sock.recv(65536)
            except OSError:
                self.close()  # a late reply would otherwise answer the next request
                raise
            if not data:
                self.close()
                raise ConnectionError("VICI server closed the connection")
            try:
                self._packets.extend(self._reader.feed(data))
            except ViciError:
                self.close()
                raise
        return self._packets.popleft()


def _event(packet: Packet) -> tuple[str, Message]:
    assert packet.name is not None
    return packet.name, packet.message or {}
