"""Traffic selectors (RFC 7296 §3.13.1, RFC 4301 §4.4.1) and responder narrowing (§2.9).

A :class:`Selector` is one address range of one family plus an IP protocol (0 = any) and a port
range.  The port range ``65535..0`` is OPAQUE (RFC 4301 §4.4.1.1: the ports are not
available, e.g. in a non-first fragment).  For ICMP and ICMPv6 the "port" is the 16-bit value
``type << 8 | code`` (RFC 7296 §3.13.1).

Text syntax follows strongSwan's ``local_ts``/``remote_ts``: ``10.0.0.0/24``, ``10.0.0.1``,
``10.0.0.1-10.0.0.9`` (or ``..``), ``%any`` / ``%any6``, ``dynamic``, each optionally followed
by ``[proto/port]``: ``[tcp/80]``, ``[udp]``, ``[/53]``, ``[tcp/1024-65535]``,
``[tcp/%opaque]``, ``[icmp/8]`` (type 8, any code), ``[icmp/3/4]`` (type 3, code 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from petrel.wire.payloads import TrafficSelector
from petrel.wire.registry import TsType

__all__ = [
    "PROTOCOLS",
    "IPAddress",
    "Selector",
    "matches_packet",
    "narrow",
    "resolve_dynamic",
]

IPAddress = IPv4Address | IPv6Address

PROTOCOLS: dict[str, int] = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
    "udplite": 136,
}
_PROTOCOL_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah"}
_PROTOCOL_NAMES |= {58: "ipv6-icmp", 132: "sctp", 136: "udplite"}
_ICMP = frozenset((1, 58))

ANY_PORT = (0, 65535)
OPAQUE_PORT = (65535, 0)
_ZERO4 = IPv4Address(0)


def _packed(addr: IPAddress | bytes | str) -> bytes:
    if isinstance(addr, bytes):
        return addr
    if isinstance(addr, str):
        return ip_address(addr).packed
    return addr.packed


@dataclass(frozen=True, slots=True)
class Selector:
    """One traffic selector.  ``dynamic=True`` marks strongSwan's ``dynamic`` placeholder
    (the address is filled in later with :func:`resolve_dynamic`)."""

    start: IPAddress
    end: IPAddress
    protocol: int = 0
    start_port: int = 0
    end_port: int = 65535
    dynamic: bool = False
    _lo: bytes = field(init=False, repr=False, compare=False, hash=False, default=b"")
    _hi: bytes = field(init=False, repr=False, compare=False, hash=False, default=b"")

    def __post_init__(self) -> None:
        if not isinstance(self.start, IPv4Address | IPv6Address) or type(self.start) is not type(
            self.end
        ):
            raise ValueError("selector start and end must be addresses of one family")
        if self.start > self.end:
            raise ValueError(f"selector start {self.start} is above its end {self.end}")
        if not 0 <= self.protocol <= 255:
            raise ValueError(f"IP protocol {self.protocol} out of range")
        for port in (self.start_port, self.end_port):
            if not 0 <= port <= 65535:
                raise ValueError(f"port {port} out of range")
        if self.start_port > self.end_port and not self.is_opaque:
            raise ValueError(f"port range {self.start_port}-{self.end_port} is empty")
        object.__setattr__(self, "_lo", self.start.packed)
        object.__setattr__(self, "_hi", self.end.packed)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_cidr(cls, text: str) -> Selector:
        """Parse strongSwan TS syntax; raises ValueError naming what is wrong."""
        text = text.strip()
        addr_text, ports_text = text, None
        if text.endswith("]"):
            bracket = text.find("[")
            if bracket < 0:
                raise ValueError(f"'{text}': ']' without '['")
            addr_text, ports_text = text[:bracket].strip(), text[bracket + 1 : -1].strip()
        protocol, start_port, end_port = 0, 0, 65535
        if ports_text is not None:
            protocol, start_port, end_port = _parse_proto_port(ports_text)
        if addr_text == "dynamic":
            return cls(_ZERO4, _ZERO4, protocol, start_port, end_port, dynamic=True)
        start, end = _parse_addresses(addr_text)
        return cls(start, end, protocol, start_port, end_port)

    @classmethod
    def from_network(
        cls, network: str, protocol: int = 0, start_port: int = 0, end_port: int = 65535
    ) -> Selector:
        net = ip_network(network, strict=False)
        return cls(net.network_address, net.broadcast_address, protocol, start_port, end_port)

    @classmethod
    def host(
        cls, addr: IPAddress | str, protocol: int = 0, ports: tuple[int, int] = ANY_PORT
    ) -> Selector:
        """A single-address selector."""
        a = ip_address(addr) if isinstance(addr, str) else addr
        return cls(a, a, protocol, ports[0], ports[1])

    @classmethod
    def dynamic_marker(
        cls, protocol: int = 0, start_port: int = 0, end_port: int = 65535
    ) -> Selector:
        """strongSwan's ``dynamic``: the host's own address, filled in later."""
        return cls(_ZERO4, _ZERO4, protocol, start_port, end_port, dynamic=True)

    @classmethod
    def from_wire(cls, ts: TrafficSelector) -> Selector:
        """Build from a decoded TS (§3.13.1); raises ValueError for malformed values."""
        if ts.ts_type == TsType.IPV4_ADDR_RANGE:
            size, kind = 4, IPv4Address
        elif ts.ts_type == TsType.IPV6_ADDR_RANGE:
            size, kind = 16, IPv6Address
        else:
            raise ValueError(f"unsupported TS type {int(ts.ts_type)}")
        if len(ts.start_addr) != size or len(ts.end_addr) != size:
            raise ValueError("TS address length does not match its type")
        return cls(
            kind(ts.start_addr),
            kind(ts.end_addr),
            ts.ip_protocol,
            ts.start_port,
            ts.end_port,
        )

    def to_wire(self) -> TrafficSelector:
        if self.dynamic:
            raise ValueError("a dynamic selector must be resolved before it is sent")
        ts_type = TsType.IPV4_ADDR_RANGE if self.version == 4 else TsType.IPV6_ADDR_RANGE
        return TrafficSelector(
            ts_type, self.protocol, self.start_port, self.end_port, self._lo, self._hi
        )

    # -- properties -------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.start.version

    @property
    def is_opaque(self) -> bool:
        return self.start_port == 65535 and self.end_port == 0

    @property
    def any_port(self) -> bool:
        return self.start_port == 0 and self.end_port == 65535

    # -- set operations ---------------------------------------------------------------------

    def intersect(self, other: Selector) -> Selector | None:
        """The selector covering exactly what both cover, or None (RFC 7296 §2.9)."""
        if self.version != other.version:
            return None
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        if start > end:
            return None
        if self.protocol == 0:
            protocol = other.protocol
        elif other.protocol in (0, self.protocol):
            protocol = self.protocol
        else:
            return None
        ports = _port_intersect(
            (self.start_port, self.end_port), (other.start_port, other.end_port)
        )
        if ports is None:
            return None
        return Selector(start, end, protocol, ports[0], ports[1])  # type: ignore[arg-type]

    def contains(self, other: Selector) -> bool:
        """True when everything ``other`` selects is selected by ``self``."""
        if self.version != other.version or not (
            self.start <= other.start <= other.end <= self.end
        ):
            return False
        if self.protocol not in (0, other.protocol):
            return False
        if self.any_port:
            return True
        if self.is_opaque or other.is_opaque:
            return self.is_opaque and other.is_opaque
        return self.start_port <= other.start_port and other.end_port <= self.end_port

    def matches(self, addr: IPAddress | bytes | str, protocol: int, port: int) -> bool:
        """Does one packet endpoint (address, IP protocol, port) fall in this selector?

        ``port`` 0 stands for "no port information"; it is what an OPAQUE selector matches.
        """
        packed = _packed(addr)
        if len(packed) != len(self._lo) or not (self._lo <= packed <= self._hi):
            return False
        if self.protocol and self.protocol != protocol:
            return False
        if self.is_opaque:
            return port == 0
        return self.start_port <= port <= self.end_port

    # -- text -------------------------------------------------------------------------------

    def __str__(self) -> str:
        return self.address_text() + self.proto_port_text()

    def address_text(self) -> str:
        if self.dynamic:
            return "dynamic"
        lo, hi = int(self.start), int(self.end)
        size = hi - lo + 1
        if size & (size - 1) == 0 and lo % size == 0:
            return f"{self.start}/{self.start.max_prefixlen - (size.bit_length() - 1)}"
        return f"{self.start}..{self.end}"

    def proto_port_text(self) -> str:
        if self.protocol == 0 and self.any_port:
            return ""
        proto = _PROTOCOL_NAMES.get(self.protocol, str(self.protocol)) if self.protocol else ""
        if self.any_port:
            return f"[{proto}]"
        if self.is_opaque:
            port = "%opaque"
        elif self.protocol in _ICMP and (self.start_port >> 8) == (self.end_port >> 8):
            icmp_type, lo, hi = self.start_port >> 8, self.start_port & 0xFF, self.end_port & 0xFF
            if (lo, hi) == (0, 255):
                port = str(icmp_type)
            elif lo == hi:
                port = f"{icmp_type}/{lo}"
            else:
                port = f"{self.start_port}-{self.end_port}"
        elif self.start_port == self.end_port:
            port = str(self.start_port)
        else:
            port = f"{self.start_port}-{self.end_port}"
        return f"[{proto}/{port}]"


def _port_intersect(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int] | None:
    a_opaque, b_opaque = a == OPAQUE_PORT, b == OPAQUE_PORT
    if a_opaque or b_opaque:
        if a_opaque and b_opaque:
            return OPAQUE_PORT
        return OPAQUE_PORT if (b if a_opaque else a) == ANY_PORT else None
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo <= hi else None


def _parse_number(text: str, limit: int, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid {what} '{text}'")
    value = int(text)
    if value > limit:
        raise ValueError(f"{what} {value} out of range")
    return value


def _parse_proto_port(text: str) -> tuple[int, int, int]:
    proto_text, _, port_text = text.partition("/")
    proto_text = proto_text.strip().lower()
    if proto_text in ("", "%any", "any"):
        protocol = 0
    elif proto_text in PROTOCOLS:
        protocol = PROTOCOLS[proto_text]
    else:
        protocol = _parse_number(proto_text, 255, "protocol")
    port_text = port_text.strip().lower()
    if port_text in ("", "%any", "any"):
        return protocol, 0, 65535
    if port_text in ("%opaque", "opaque"):
        return protocol, 65535, 0
    if protocol in _ICMP:
        type_text, slash, code_text = port_text.partition("/")
        icmp_type = _parse_number(type_text, 255, "ICMP type")
        if slash:
            code = _parse_number(code_text, 255, "ICMP code")
            return protocol, icmp_type << 8 | code, icmp_type << 8 | code
        return protocol, icmp_type << 8, icmp_type << 8 | 0xFF
    lo_text, dash, hi_text = port_text.partition("-")
    lo = _parse_number(lo_text.strip(), 65535, "port")
    hi = _parse_number(hi_text.strip(), 65535, "port") if dash else lo
    if lo > hi:
        raise ValueError(f"port range {lo}-{hi} is empty")
    return protocol, lo, hi


def _parse_addresses(text: str) -> tuple[IPAddress, IPAddress]:
    if text in ("%any", "%any4"):
        return IPv4Address(0), IPv4Address(0xFFFFFFFF)
    if text == "%any6":
        return IPv6Address(0), IPv6Address((1 << 128) - 1)
    for sep in ("..", "-"):
        if sep in text:
            a_text, _, b_text = text.partition(sep)
            try:
                a, b = ip_address(a_text.strip()), ip_address(b_text.strip())
            except ValueError:
                raise ValueError(f"invalid address range '{text}'") from None
            if type(a) is not type(b):
                raise ValueError(f"address range '{text}' mixes IPv4 and IPv6")
            if a > b:
                raise ValueError(f"address range '{text}' is empty")
            return a, b
    try:
        net = ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"invalid subnet or address '{text}'") from None
    return net.network_address, net.broadcast_address


def narrow(proposed: Sequence[Selector], configured: Sequence[Selector]) -> tuple[Selector, ...]:
    """RFC 7296 §2.9 responder narrowing: every non-empty intersection of a proposed selector
    with a configured one, in proposal order, without duplicates.  An empty result means the
    responder answers TS_UNACCEPTABLE."""
    result: list[Selector] = []
    seen: set[Selector] = set()
    for prop in proposed:
        for conf in configured:
            common = prop.intersect(conf)
            if common is not None and common not in seen:
                seen.add(common)
                result.append(common)
    return tuple(result)


def resolve_dynamic(selectors: Iterable[Selector], host: IPAddress | str) -> tuple[Selector, ...]:
    """Replace ``dynamic`` selectors by ``host``'s single address (keeping protocol/ports)."""
    addr = ip_address(host) if isinstance(host, str) else host
    return tuple(
        replace(sel, start=addr, end=addr, dynamic=False) if sel.dynamic else sel
        for sel in selectors
    )


def matches_packet(
    local: Sequence[Selector],
    remote: Sequence[Selector],
    src: IPAddress | bytes | str,
    dst: IPAddress | bytes | str,
    protocol: int,
    sport: int,
    dport: int,
) -> bool:
    """Does an outbound packet (``src`` local, ``dst`` remote) fall under this selector pair?"""
    return any(sel.matches(src, protocol, sport) for sel in local) and any(
        sel.matches(dst, protocol, dport) for sel in remote
    )


def all_within(got: Iterable[Selector], offered: Sequence[Selector]) -> bool:
    """Is every selector of ``got`` inside one of ``offered``? (a responder may only narrow)"""
    return all(any(o.contains(g) for o in offered) for g in got)
