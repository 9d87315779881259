"""TUN device: open, configure (pyroute2) and move whole IP packets.

The userspace data plane reads plaintext IP packets from a TUN device and writes decrypted ones
back (DESIGN.md, data path). The device is opened with ``IFF_TUN | IFF_NO_PI`` so every read or
write is exactly one IP packet. ``IFF_VNET_HDR`` (a virtio-net header in front of each packet,
enabling TSO/USO super-packets via ``TUNSETOFFLOAD``) is accepted by :func:`open_tun` so the
offload path can be added later without changing callers; with ``vnet_hdr=False`` (default) no
header is present.

Everything here acts on the network namespace of the calling process (the daemon is started
with ``ip netns exec``). The device is not persistent: closing the fd removes it, together with
its addresses and routes.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .routing import RouteSpec, route_fields

TUN_PATH = "/dev/net/tun"
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

# TUNSETOFFLOAD flags (linux/if_tun.h), for the later IFF_VNET_HDR path.
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

IFNAMSIZ = 16
_IFREQ = struct.Struct(f"{IFNAMSIZ}sH22x")  # struct ifreq: name + ifr_flags, padded to 40
MAX_PACKET = 65535


def open_tun(
    name: str = "petrel%d", *, vnet_hdr: bool = False, offloads: int = 0
) -> tuple[int, str]:
    """Create a TUN device and return ``(fd, ifname)``; the fd is non-blocking.

    ``name`` may contain ``%d`` for the kernel to pick a free number. ``offloads`` (TUN_F_*) is
    only meaningful with ``vnet_hdr=True``.
    """
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ:
        raise ValueError(f"bad interface name {name!r}")
    flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
    fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        res = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(raw, flags))
        if offloads:
            if not vnet_hdr:
                raise ValueError("offloads need vnet_hdr=True")
            fcntl.ioctl(fd, TUNSETOFFLOAD, offloads)
    except BaseException:
        os.close(fd)
        raise
    ifname = _IFREQ.unpack(res)[0].rstrip(b"\0").decode()
    return fd, ifname


def configure_tun(
    ifname: str,
    mtu: int,
    addresses: Iterable[str] = (),
    routes: Iterable[RouteSpec] = (),
) -> None:
    """Set the MTU, bring ``ifname`` up, add addresses and routes through it.

    ``addresses`` are interface strings ("198.51.100.1/32", "2001:db8:1::1/128"). Each route is
    a destination prefix, or ``(prefix, preferred_source)`` so locally originated packets use
    the protected (inner) address as source.
    """
    from pyroute2 import IPRoute  # imported lazily: only the daemon's setup path needs netlink

    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            raise LookupError(f"no interface {ifname!r}")
        idx = links[0]
        ipr.link("set", index=idx, mtu=mtu)
        for text in addresses:
            _address(ipr, "add", idx, text)
        _no_link_local(ifname)
        ipr.link("set", index=idx, state="up")
        for spec in routes:
            ipr.route("add", **route_fields(spec, idx))


def change_address(command: str, ifname: str, text: str) -> None:
    """``ip addr add|del <text> dev <ifname>``; ``text`` an interface string ("198.51.100.9/32",
    or a bare address: the host prefix)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            raise LookupError(f"no interface {ifname!r}")
        _address(ipr, command, links[0], text)


def _address(ipr: Any, command: str, index: int, text: str) -> None:
    iface = ipaddress.ip_interface(text)
    ipr.addr(
        command,
        index=index,
        address=str(iface.ip),
        prefixlen=iface.network.prefixlen,
        family=_family(iface.version),
    )


def _no_link_local(ifname: str) -> None:
    """No IPv6 link-local address on the device (``addr_gen_mode`` none): the kernel then
    sends it no router solicitations or MLD reports, which no policy covers and which would
    only be counted as dropped.  IPv6 through the tunnel works without one."""
    path = f"/proc/sys/net/ipv6/conf/{ifname}/addr_gen_mode"
    if os.path.exists(path):  # absent where IPv6 is disabled
        with open(path, "w") as knob:
            knob.write("1")


def _family(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


@dataclass
class TunDevice:
    """An open TUN device: whole-packet non-blocking reads and writes on ``fd``."""

    fd: int
    name: str
    vnet_hdr: bool = False
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def open(cls, name: str = "petrel%d", *, vnet_hdr: bool = False) -> TunDevice:
        fd, ifname = open_tun(name, vnet_hdr=vnet_hdr)
        return cls(fd, ifname, vnet_hdr)

    def fileno(self) -> int:
        return self.fd

    def configure(
        self, mtu: int, addresses: Iterable[str] = (), routes: Iterable[RouteSpec] = ()
    ) -> None:
        configure_tun(self.name, mtu, addresses, routes)

    def read(self) -> bytes | None:
        """One packet, or None when none is queued."""
        try:
            return os.read(self.fd, MAX_PACKET)
        except BlockingIOError:
            return None

    def read_batch(self, max_packets: int = 64) -> list[bytes]:
        """Up to ``max_packets`` queued packets (stops at EAGAIN)."""
        out: list[bytes] = []
        read = os.read
        fd = self.fd
        try:
            while len(out) < max_packets:
                out.append(read(fd, MAX_PACKET))
        except BlockingIOError:
            pass
        return out

    def write(self, packet: bytes | bytearray | memoryview) -> bool:
        """Write one packet; False if the queue is full or the kernel rejected it."""
        try:
            os.write(self.fd, packet)
        except OSError as exc:
            # EAGAIN: queue full; EINVAL: malformed packet, dropped (never fatal on input).
            if exc.errno in (errno.EAGAIN, errno.EINVAL, errno.EIO):
                return False
            raise
        return True

    def close(self) -> None:
        """Close the fd; the kernel deletes the (non-persistent) device with its routes."""
        if not self._closed:
            self._closed = True
            os.close(self.fd)

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
