"""UDP sockets for IKE/ESP (ports 500 and 4500) and raw IP protocol 50 sockets for plain ESP.

Each socket is wrapped in a :class:`DatagramEndpoint`: non-blocking, batch receive with the
*local* address the datagram arrived on (``IP_PKTINFO`` / ``IPV6_RECVPKTINFO``, RFC 3542 §6),
and send with an optional chosen source address. The daemon needs the local address because
IKE replies must leave from the address the request reached, and NAT detection (RFC 7296
§2.23) hashes it. Demultiplexing port 4500 (non-ESP marker, RFC 3948 §2.2) is not done here:
datagrams are handed over as received.

Addresses are plain ``(host, port)`` tuples for both families (IPv6 flow info and scope id are
dropped); raw ESP endpoints use port 0.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import struct
from collections import Counter
from collections.abc import Callable, Iterable

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; not exported by every Python
IPPROTO_ESP = 50
SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = 103  # linux/udp.h: segment size for UDP GSO (Linux ≥ 4.18)
MAX_GSO_SEGMENTS = 64  # UDP_MAX_SEGMENTS
MAX_GSO_BYTES = 65507 - 8  # one UDP datagram's payload, the most a GSO send may carry
_GSO_SIZE = struct.Struct("=H")
_IN_PKTINFO = struct.Struct("=i4s4s")  # ipi_ifindex, ipi_spec_dst, ipi_addr
_IN6_PKTINFO = struct.Struct("=16sI")  # ipi6_addr, ipi6_ifindex
_ANC_SIZE = socket.CMSG_SPACE(_IN6_PKTINFO.size) + socket.CMSG_SPACE(_IN_PKTINFO.size)
_MSG_TRUNC = int(socket.MSG_TRUNC)  # a plain int: `flags & IntFlag` costs an enum call per packet
_TRANSIENT_ERRORS = frozenset(
    {errno.EAGAIN, errno.ENOBUFS, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED}
)

Address = tuple[str, int]
Received = tuple[bytes, Address, Address]
LocalAddr = str | Address | None


class DatagramEndpoint:
    """A non-blocking datagram socket moving whole datagrams in batches.

    ``recv_batch`` yields ``(data, src_addr, local_addr)``; for raw IPv4 ESP sockets the IP
    header the kernel delivers is stripped, so ``data`` always starts at the ESP SPI.
    """

    __slots__ = (
        "_buf",
        "_cmsg_cache",
        "_local_cache",
        "_view",
        "family",
        "gso",
        "local",
        "raw",
        "raw_ip_header",
        "send_errors",
        "sock",
    )

    def __init__(self, sock: socket.socket, *, raw_ip_header: bool = False) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.family = sock.family
        self.raw_ip_header = raw_ip_header
        bound = sock.getsockname()
        self.raw = sock.type == socket.SOCK_RAW  # raw sockets report the protocol as "port"
        self.local: Address = (bound[0], 0 if self.raw else bound[1])
        self._buf = bytearray(65535)
        self._view = memoryview(self._buf)
        self._cmsg_cache: dict[str, list[tuple[int, int, bytes]]] = {}
        self._local_cache: dict[bytes, Address] = {}  # raw IPv4: packed destination → address
        self.send_errors: Counter[str] = Counter()
        self.gso = sock.type == socket.SOCK_DGRAM  # UDP GSO until the kernel refuses it

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv_batch(self, max_datagrams: int = 64) -> list[Received]:
        """Read queued datagrams until EAGAIN or ``max_datagrams``."""
        out: list[Received] = []
        recv = self.sock.recvmsg_into
        buffers = [self._buf]
        view = self._view
        port = self.local[1]
        while len(out) < max_datagrams:
            try:
                n, anc, flags, addr = recv(buffers, _ANC_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. a queued ICMP error; never fatal on input
                if exc.errno in _TRANSIENT_ERRORS:
                    continue
                raise
            if flags & _MSG_TRUNC:
                continue
            if self.raw_ip_header:
                # Raw IPv4 sockets deliver the IP header (RFC 791 §3.1): strip it, take the
                # destination address from it.
                if n < 20 or self._buf[0] >> 4 != 4:
                    continue
                ihl = (self._buf[0] & 0x0F) * 4
                if ihl < 20 or n < ihl:
                    continue
                packed = bytes(view[16:20])
                local = self._local_cache.get(packed)
                if local is None:
                    if len(self._local_cache) >= 64:
                        self._local_cache.clear()
                    local = self._local_cache[packed] = (
                        socket.inet_ntop(socket.AF_INET, packed),
                        0,
                    )
                out.append((bytes(view[ihl:n]), (addr[0], 0), local))
                continue
            src = (addr[0], 0 if self.raw else addr[1])
            out.append((bytes(view[:n]), src, (_local_from(anc), port)))
        return out

    def sendto(
        self, data: bytes | bytearray | memoryview, addr: Address, local_addr: LocalAddr = None
    ) -> bool:
        """Send one datagram; ``local_addr`` picks the source address.

        Returns False when the kernel refused it (full buffer, unreachable, a firewall's
        EPERM, …): to IKE and ESP that is a lost packet, which retransmission or the peer's
        own recovery handles (RFC 7296 §2.1).  The errno is counted in ``send_errors``.
        """
        try:
            if local_addr is None:
                self.sock.sendto(data, addr)
            else:
                host = local_addr if isinstance(local_addr, str) else local_addr[0]
                cmsg = self._cmsg_cache.get(host)
                if cmsg is None:
                    cmsg = self._cmsg_cache[host] = _pktinfo_cmsg(self.family, host)
                self.sock.sendmsg([data], cmsg, 0, addr)
        except OSError as exc:
            self.send_errors[errno.errorcode.get(exc.errno or 0, str(exc.errno))] += 1
            return False
        return True

    def send_segments(
        self, segments: list[bytes], addr: Address, local_addr: LocalAddr = None
    ) -> int:
        """Send datagrams of one size (the last may be shorter) to ``addr`` in one system call
        with UDP GSO (``UDP_SEGMENT``), falling back to one ``sendto`` each where the kernel
        refuses it. Returns how many were handed to the kernel."""
        if len(segments) == 1 or not self.gso:
            return sum(self.sendto(seg, addr, local_addr) for seg in segments)
        size = len(segments[0])
        cmsg = [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(size))]
        if local_addr is not None:
            host = local_addr if isinstance(local_addr, str) else local_addr[0]
            cmsg += self._cmsg_cache.get(host) or _pktinfo_cmsg(self.family, host)
        try:
            self.sock.sendmsg([b"".join(segments)], cmsg, 0, addr)
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOPROTOOPT):
                self.gso = False  # no GSO here (old kernel, device without offload)
                return self.send_segments(segments, addr, local_addr)
            self.send_errors[errno.errorcode.get(exc.errno or 0, str(exc.errno))] += 1
            return 0
        return len(segments)

    def attach(
        self,
        loop: asyncio.AbstractEventLoop,
        on_batch: Callable[[DatagramEndpoint, list[Received]], None],
        max_datagrams: int = 64,
    ) -> None:
        """Call ``on_batch(self, batch)`` from ``loop`` whenever datagrams are queued."""

        def _ready() -> None:
            batch = self.recv_batch(max_datagrams)
            if batch:
                on_batch(self, batch)

        loop.add_reader(self.fileno(), _ready)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self.fileno())

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> DatagramEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DatagramEndpoint({self.local[0]!r}, {self.local[1]}, fd={self.sock.fileno()})"


def _local_from(anc: list[tuple[int, int, bytes]]) -> str:
    """The destination address of a received datagram from its PKTINFO control message."""
    for level, kind, data in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _IN_PKTINFO.size:
            return socket.inet_ntop(socket.AF_INET, data[8:12])
        if (
            level == socket.IPPROTO_IPV6
            and kind == socket.IPV6_PKTINFO
            and len(data) >= _IN6_PKTINFO.size
        ):
            return socket.inet_ntop(socket.AF_INET6, data[:16])
    return ""


def _pktinfo_cmsg(family: int, host: str) -> list[tuple[int, int, bytes]]:
    packed = socket.inet_pton(family, host)
    if family == socket.AF_INET:
        return [(socket.IPPROTO_IP, IP_PKTINFO, _IN_PKTINFO.pack(0, packed, b"\0" * 4))]
    return [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, _IN6_PKTINFO.pack(packed, 0))]


def _family_of(host: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _enable_pktinfo(sock: socket.socket) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)


def open_udp(host: str, port: int, *, rcvbuf: int | None = None) -> DatagramEndpoint:
    """A UDP endpoint bound to ``host:port`` (IPv6 sockets are v6-only).  No SO_REUSEADDR:
    with it a second daemon could bind the same IKE port and take part of its traffic."""
    sock = socket.socket(_family_of(host), socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        if sock.family == socket.AF_INET6:  # "::" must not claim the IPv4 port as well
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        _enable_pktinfo(sock)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return DatagramEndpoint(sock)


def open_esp_raw(host: str = "0.0.0.0") -> DatagramEndpoint:
    """A raw IP protocol 50 endpoint (ESP without UDP encapsulation, RFC 4303 §2).

    Binding to a specific ``host`` receives only ESP addressed to it.
    """
    family = _family_of(host)
    sock = socket.socket(family, socket.SOCK_RAW, IPPROTO_ESP)
    try:
        if family == socket.AF_INET6:
            _enable_pktinfo(sock)
        sock.bind((host, 0))
    except BaseException:
        sock.close()
        raise
    return DatagramEndpoint(sock, raw_ip_header=family == socket.AF_INET)


def open_ike_endpoints(
    addresses: Iterable[str] = ("0.0.0.0", "::"), ports: Iterable[int] = (500, 4500)
) -> dict[tuple[str, int], DatagramEndpoint]:
    """UDP endpoints for every (address, port) pair, keyed by that pair.

    On failure the endpoints opened so far are closed.
    """
    out: dict[tuple[str, int], DatagramEndpoint] = {}
    try:
        for host in addresses:
            for port in ports:
                out[(host, port)] = open_udp(host, port)
    except BaseException:
        for ep in out.values():
            ep.close()
        raise
    return out
