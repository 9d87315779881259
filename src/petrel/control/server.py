"""asyncio VICI server on a UNIX stream socket (strongSwan-compatible control socket).

Per connection, packets are handled strictly in order, so one command runs at a time; events
(:meth:`ViciServer.broadcast`, :class:`Emitter`) may be written at any moment in between,
each packet in one ``write`` so packets never interleave.

Hostile or broken clients disturb only themselves: a malformed packet closes that connection
(counted, rate-limited log); a segment left incomplete for :data:`STALL_TIMEOUT` seconds, or
output it does not read for as long, drops the client; a client that disconnects while its
command runs has that command cancelled (an initiation it asked for goes on, as in charon);
at most :data:`MAX_CLIENTS` are connected at once, each buffering at most one segment
(:data:`~petrel.control.vici.MAX_SEGMENT`) and a few queued packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from petrel.control.vici import (
    MAX_SEGMENT,
    Message,
    Packet,
    PacketReader,
    PacketType,
    ViciError,
    encode_packet,
)
from petrel.ratelimit import DropLog

__all__ = ["DEFAULT_EVENTS", "MAX_CLIENTS", "STALL_TIMEOUT", "Command", "Emitter", "ViciServer"]

log = logging.getLogger(__name__)

DEFAULT_EVENTS: frozenset[str] = frozenset(
    {
        "list-sa",
        "list-conn",
        "list-cert",
        "list-policy",
        "list-authority",
        "control-log",
        "log",
        "ike-updown",
        "child-updown",
        "ike-rekey",
        "child-rekey",
        "ike-update",
        "alert",
    }
)
"""Event names a client may register for unless the server is given its own set."""

_READ_CHUNK = 64 * 1024
_ACCEPT_BURST = 64
_ACCEPT_BACKOFF = 0.1
_MAX_WRITE_BUFFER = 2 * MAX_SEGMENT
"""A client whose unread output exceeds this (two largest packets) is a stalled consumer and is
dropped: with :data:`MAX_CLIENTS`, the server buffers at most ~200 MiB in all."""
_MAX_QUEUED = 16
"""Packets read ahead of the one being handled (then reading pauses: back-pressure)."""
MAX_CLIENTS = 128
"""Clients connected at once; more are closed as soon as they are accepted."""
STALL_TIMEOUT = 30.0
"""Seconds a client may leave a segment incomplete, or its output unread, before it is dropped."""


class _Connection:
    """One accepted client: its writer and event registrations."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.events: set[str] = set()
        self.closed = False
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send(self, data: bytes) -> bool:
        """Queue one whole packet; drop the client if it stopped reading. False if closed."""
        if self.closed or self.writer.is_closing():
            return False
        transport = self.writer.transport
        if transport.get_write_buffer_size() + len(data) > _MAX_WRITE_BUFFER:
            log.warning("vici: dropping client that stopped reading")
            self.close()
            return False
        self.writer.write(data)
        return True

    async def drain(self) -> None:
        """Wait until the client read its output; drop it if it stalls."""
        try:
            await asyncio.wait_for(self.writer.drain(), STALL_TIMEOUT)
        except TimeoutError:
            log.warning("vici: dropping client that stopped reading")
            self.close()
        except ConnectionError:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()
        if not self.gone.done():
            self.gone.set_result(None)


class Emitter:
    """Lets a running command stream events to the connection that issued it."""

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    def registered(self, event: str) -> bool:
        """True when the client listens for ``event`` (skip building messages otherwise)."""
        return event in self._conn.events and not self._conn.closed

    async def emit(self, event: str, message: Mapping[str, Any]) -> bool:
        """Send an EVENT packet if the client registered for ``event``; True if sent.

        Raises :class:`ViciError` if ``message`` cannot be encoded.
        """
        if not self.registered(event):
            return False
        if not self._conn.send(encode_packet(PacketType.EVENT, event, message)):
            return False
        await self._conn.drain()
        return True

    def emit_nowait(self, event: str, message: Mapping[str, Any]) -> bool:
        """Queue an EVENT packet without waiting (from synchronous code such as a log handler);
        the output bound still applies.  True if queued."""
        if not self.registered(event):
            return False
        try:
            data = encode_packet(PacketType.EVENT, event, message)
        except ViciError:
            return False
        return self._conn.send(data)


Command = Callable[[Message, Emitter], Awaitable[Mapping[str, Any]]]
"""A command handler: request message and emitter in, response message out."""


class ViciServer:
    """VICI server: dispatches CMD_REQUESTs to ``commands`` and manages event registrations."""

    def __init__(
        self,
        path: str,
        commands: Mapping[str, Command],
        events: Iterable[str] = DEFAULT_EVENTS,
        mode: int = 0o600,
    ) -> None:
        self.path = path
        self.commands = commands
        self.events = frozenset(events)
        self.mode = mode
        self._sock: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._conns: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._inode: tuple[int, int] | None = None
        self.drops = DropLog(log)

    @property
    def connections(self) -> int:
        """Number of connected clients."""
        return len(self._conns)

    def listening(self, event: str) -> bool:
        """True when some client registered for ``event``."""
        return any(event in c.events and not c.closed for c in self._conns)

    async def start(self) -> None:
        """Bind and listen. A stale socket file is replaced; a live one raises EADDRINUSE."""
        _remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # On Linux the inode takes the unbound socket's mode: no window with wider access.
            os.fchmod(sock.fileno(), self.mode)
            sock.bind(self.path)
            os.chmod(self.path, self.mode)
            st = os.stat(self.path)
            self._inode = (st.st_dev, st.st_ino)
            sock.listen(MAX_CLIENTS)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            self._unlink_own()
            raise
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_acceptable)

    async def close(self) -> None:
        """Stop listening, drop every client and remove the socket file."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()  # clients still in the backlog get ECONNRESET
            self._sock = None
        for conn in list(self._conns):
            conn.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in list(self._clients):  # accepted, but its task was cancelled unstarted
            client.close()
        self._clients.clear()
        self._unlink_own()

    def broadcast(self, event: str, message: Mapping[str, Any]) -> int:
        """Send an EVENT to every client registered for ``event``; returns how many got it."""
        if not self.listening(event):
            return 0
        data = encode_packet(PacketType.EVENT, event, message)
        return sum(1 for c in list(self._conns) if event in c.events and c.send(data))

    # ------------------------------------------------------------------ internals

    def _unlink_own(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if (st.st_dev, st.st_ino) == self._inode:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self._inode = None

    def _on_acceptable(self) -> None:
        """Reader callback of the listening socket: accept every pending client at once."""
        if self._sock is None:
            return
        for _ in range(_ACCEPT_BURST):
            try:
                client, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # EMFILE/ENFILE/ENOBUFS: pause instead of spinning
                log.warning("vici: accept failed: %s", exc)
                loop = asyncio.get_running_loop()
                loop.remove_reader(self._sock.fileno())
                loop.call_later(_ACCEPT_BACKOFF, self._resume_accepting)
                return
            if len(self._clients) >= MAX_CLIENTS:
                self.drops.drop("VICI client refused: too many clients", _now())
                client.close()
                continue
            client.setblocking(False)
            self._clients.add(client)
            task = asyncio.get_running_loop().create_task(self._client(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _resume_accepting(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._on_acceptable)

    async def _client(self, client: socket.socket) -> None:
        conn: _Connection | None = None
        try:
            reader, writer = await asyncio.open_unix_connection(sock=client, limit=_READ_CHUNK)
            conn = _Connection(writer)
            self._conns.add(conn)
            await self._serve(conn, reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(client)
            if conn is None:
                client.close()
            else:
                self._conns.discard(conn)
                conn.close()

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        """Handle the client's packets in order; a disconnect cancels the running command."""
        emitter = Emitter(conn)
        queue: asyncio.Queue[Packet | None] = asyncio.Queue(_MAX_QUEUED)
        reading = asyncio.ensure_future(self._read(conn, reader, queue))
        try:
            while not conn.closed:
                packet = await queue.get()
                if packet is None or conn.closed:
                    return
                handling = asyncio.ensure_future(
                    self._handle(conn, emitter, packet.type, packet.name, packet.message)
                )
                await asyncio.wait({handling, conn.gone}, return_when=asyncio.FIRST_COMPLETED)
                if not handling.done():
                    handling.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await handling
                    return
                reply = handling.result()
                if reply is not None and conn.send(reply):
                    await conn.drain()
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    async def _read(
        self,
        conn: _Connection,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[Packet | None],
    ) -> None:
        """Read segments into ``queue``; None (and the connection gone) at EOF or on error."""
        packets = PacketReader()
        try:
            while True:
                stall = STALL_TIMEOUT if packets.pending else None
                try:
                    data = await asyncio.wait_for(reader.read(_READ_CHUNK), stall)
                except TimeoutError:
                    self.drops.drop("VICI client stalled mid-message", _now())
                    return
                except ConnectionError:
                    return
                if not data:
                    return
                try:
                    batch = packets.feed(data)
                except ViciError as exc:
                    self.drops.drop("malformed VICI packet, client closed", _now(), str(exc))
                    return
                for packet in batch:
                    await queue.put(packet)
        finally:
            conn.close()
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    async def _handle(
        self,
        conn: _Connection,
        emitter: Emitter,
        ptype: PacketType,
        name: str | None,
        message: Message | None,
    ) -> bytes | None:
        if ptype == PacketType.CMD_REQUEST:
            assert name is not None
            command = self.commands.get(name)
            if command is None:
                return encode_packet(PacketType.CMD_UNKNOWN)
            return await self._run(name, command, message or {}, emitter)
        if ptype == PacketType.EVENT_REGISTER:
            if name not in self.events:
                return encode_packet(PacketType.EVENT_UNKNOWN)
            conn.events.add(name)
            return encode_packet(PacketType.EVENT_CONFIRM)
        if ptype == PacketType.EVENT_UNREGISTER:
            if name not in conn.events:
                return encode_packet(PacketType.EVENT_UNKNOWN)
            conn.events.discard(name)
            return encode_packet(PacketType.EVENT_CONFIRM)
        return None  # server-to-client types sent by a client are ignored

    async def _run(self, name: str, command: Command, message: Message, emitter: Emitter) -> bytes:
        """The command's response; an exception answers ``success = no`` (counted and logged
        rate-limited, the traceback at debug level: a client must not flood the log)."""
        try:
            response = await command(message, emitter)
            return encode_packet(PacketType.CMD_RESPONSE, None, response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.drops.drop("VICI command failed", _now(), f"{name}: {exc!r}")
            log.debug("vici: command %s failed", name, exc_info=True)
            failure = {"success": "no", "errmsg": f"{name} failed: {exc}"}
            return encode_packet(PacketType.CMD_RESPONSE, None, failure)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _remove_stale(path: str) -> None:
    """Unlink ``path`` if it is a socket nobody listens on; refuse anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket", path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except FileNotFoundError:
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "a VICI server is already listening", path)
