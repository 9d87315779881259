"""The userspace ESP data plane: TUN ↔ SPD ↔ ESP SAs ↔ UDP 4500 / raw IP protocol 50.

Outbound: a plaintext packet read from the TUN device is matched against the SPD, encrypted by
the Child SA's outbound ESP SA and sent UDP-encapsulated (RFC 3948) or as raw ESP (RFC 4303).
Inbound: an ESP packet is mapped to its SA by SPI, checked and decrypted, its inner addresses
checked against the SA's selectors (RFC 4301 §5.2) and written to the TUN device.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..esp.sa import InboundSa, OutboundSa, SequenceOverflow
from ..ike.events import Address, ChildSaDown, ChildSaUp
from ..policy.selectors import Selector
from ..policy.spd import Spd, packet_selector_fields
from ..ratelimit import DropLog
from .mss import clamp_mss
from .sockets import DatagramEndpoint
from .tun import RouteSpec, TunDevice

log = logging.getLogger("petrel.esp")

# Outer overhead budget: IPv6 40 + UDP 8 + ESP 8 + IV 16 + pad/trailer 17 + ICV 16 (RFC 4303).
ESP_OVERHEAD = 105
DEFAULT_OUTER_MTU = 1500


@dataclass
class InstalledChild:
    """One installed Child SA pair, as the data plane sees it."""

    event: ChildSaUp
    outbound: OutboundSa
    inbound: InboundSa
    local: Address
    remote: Address
    encap: bool
    policy_drops: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class UserspaceDataplane:
    """Moves packets between one TUN device and the network for all installed Child SAs."""

    def __init__(
        self,
        tun: TunDevice,
        udp: dict[tuple[str, int], DatagramEndpoint],
        raw_esp: dict[int, DatagramEndpoint],
        mtu: int,
        run_netlink: Callable[..., object] | None = None,
    ) -> None:
        self.tun = tun
        # Netlink calls block; the daemon passes a runner that moves them off its event loop.
        self.run_netlink = run_netlink or (lambda fn, *args: fn(*args))
        self.udp = udp  # (local host or wildcard, port) → endpoint
        self.raw_esp = raw_esp  # IP version → raw protocol-50 endpoint
        self.mtu = mtu
        self.spd = Spd()
        self.by_spi: dict[int, InstalledChild] = {}
        self.children: dict[int, InstalledChild] = {}
        self.drops = DropLog(log)
        self.counts: Counter[str] = Counter()
        self._routes: set[str] = set()

    # ---------------------------------------------------------------- SA installation

    def install(self, up: ChildSaUp, now: float) -> None:
        outbound = OutboundSa(
            up.outbound.spi,
            up.outbound.encr,
            up.outbound.encr_key,
            up.outbound.integ,
            up.outbound.integ_key,
            up.esn,
        )
        inbound = InboundSa(
            up.inbound.spi,
            up.inbound.encr,
            up.inbound.encr_key,
            up.inbound.integ,
            up.inbound.integ_key,
            up.esn,
            up.replay_window,
        )
        child = InstalledChild(up, outbound, inbound, up.local, up.remote, up.encap)
        # Inbound first, then outbound: the new SA receives before anything is sent on it.
        self.by_spi[up.inbound.spi] = child
        self.spd.add(up.local_ts, up.remote_ts, up.child_id, index=0)
        self.children[up.child_id] = child
        self._add_routes(up)

    def remove(self, down: ChildSaDown) -> None:
        child = self.children.pop(down.child_id, None)
        self.spd.remove(down.child_id)
        if child is not None:
            self.by_spi.pop(child.inbound.spi, None)

    def update_addresses(self, ike_id: int, local: Address, remote: Address, encap: bool) -> None:
        """Follow an IKE SA to a new address or port (NAT mapping change, float to 4500)."""
        for child in self.children.values():
            if child.event.ike_id == ike_id:
                child.local, child.remote, child.encap = local, remote, encap or child.encap

    def _add_routes(self, up: ChildSaUp) -> None:
        source = next((str(s.start) for s in up.local_ts if s.start == s.end), None)
        routes: list[RouteSpec] = []
        for selector in up.remote_ts:
            for network in _networks(selector):
                if network in self._routes:
                    continue
                self._routes.add(network)
                routes.append(
                    (network, source) if source and _same_family(source, network) else network
                )
        if routes:
            self.run_netlink(self._configure_routes, routes)

    def _configure_routes(self, routes: list[RouteSpec]) -> None:
        try:
            self.tun.configure(self.mtu, (), routes)
        except Exception as exc:  # e.g. a route that already exists: log, never fatal
            log.warning("route via %s not added: %s", self.tun.name, exc)

    # ---------------------------------------------------------------- outbound

    def on_tun_readable(self, now: float) -> None:
        for packet in self.tun.read_batch(64):
            self.send_plaintext(packet, now)

    def send_plaintext(self, packet: bytes, now: float) -> None:
        try:
            src, dst, proto, sport, dport = packet_selector_fields(packet)
        except ValueError:
            self.drops.drop("outbound packet not IPv4/IPv6", now)
            return
        handle = self.spd.lookup_outbound(src, dst, proto, sport, dport)
        if handle is None:
            self.counts["outbound_no_policy"] += 1
            return
        child = self.children[handle]  # type: ignore[index]
        if proto == 6:
            packet = bytes(clamp_mss(packet, self.mtu))
        try:
            esp = child.outbound.encapsulate(packet, None, now)
        except SequenceOverflow:
            self.drops.drop("sequence number exhausted (SA needs rekeying)", now)
            return
        except ValueError:
            self.drops.drop("outbound packet not IPv4/IPv6", now)
            return
        self._send_esp(child, esp)

    def _send_esp(self, child: InstalledChild, esp: bytes) -> None:
        if child.encap:
            endpoint = self._udp_endpoint(child.local)
            if endpoint is not None:
                endpoint.sendto(esp, child.remote, child.local[0])
                return
        else:
            version = 6 if ":" in child.remote[0] else 4
            endpoint = self.raw_esp.get(version)
            if endpoint is not None:
                endpoint.sendto(esp, (child.remote[0], 0))
                return
        self.counts["outbound_no_socket"] += 1

    def _udp_endpoint(self, local: Address) -> DatagramEndpoint | None:
        wildcard = "::" if ":" in local[0] else "0.0.0.0"
        return self.udp.get((local[0], local[1])) or self.udp.get((wildcard, local[1]))

    # ---------------------------------------------------------------- inbound

    def receive_esp(self, data: bytes | memoryview, now: float) -> None:
        if len(data) < 8:
            self.drops.drop("ESP packet too short", now)
            return
        spi = int.from_bytes(data[:4], "big")
        child = self.by_spi.get(spi)
        if child is None:
            self.drops.drop("ESP for an unknown SPI", now, f"{spi:08x}")
            return
        result = child.inbound.decapsulate(data, now)
        if result is None:
            self.counts["inbound_esp_dropped"] += 1
            return
        _next_header, inner = result
        try:
            src, dst, proto, sport, dport = packet_selector_fields(inner)
        except ValueError:
            self.drops.drop("decrypted packet not IPv4/IPv6", now)
            return
        if not self.spd.check_inbound(child.event.child_id, src, dst, proto, sport, dport):
            child.policy_drops += 1
            self.drops.drop("inbound packet outside the SA's traffic selectors", now)
            return
        if proto == 6:
            inner = bytes(clamp_mss(inner, self.mtu))
        self.tun.write(inner)


def _networks(selector: Selector) -> list[str]:
    """CIDR blocks covering a selector's address range, for routing into the TUN device."""
    return [str(n) for n in ipaddress.summarize_address_range(selector.start, selector.end)]


def _same_family(address: str, network: str) -> bool:
    return (":" in address) == (":" in network)
