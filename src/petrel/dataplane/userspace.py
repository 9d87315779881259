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
from .routing import PolicyRouting, RouteError, RouteSpec
from .sockets import MAX_GSO_BYTES, MAX_GSO_SEGMENTS, DatagramEndpoint
from .tun import TunDevice
from .vips import DeviceAddresses

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
    ike_id: int
    policy_drops: int = 0
    sending: bool = True
    seen_packets_in: int = 0  # inbound packet count at the last liveness poll


@dataclass
class Trap:
    """A policy without an SA (start_action/dpd_action/close_action = trap): the first
    matching packet asks for negotiation and waits, with a few others, for the SA.

    With ``expires`` set it is a *hold* instead: the peer deleted the Child SA without a
    replacement, and matching packets wait (never acquiring) until a new SA of the same child
    is installed or ``expires`` passes — a peer re-creating an expired SA then loses nothing
    on our side, and nothing leaves unprotected meanwhile."""

    connection: str
    child: str
    held: list[bytes] = field(default_factory=list)
    acquired_at: float | None = None
    expires: float | None = None


MAX_HELD_PACKETS = 32
MAX_FLOWS = 65536
# Datagrams per GSO send.  Off by default (``udp_gso``): over veth the peer's kernel splits
# the super-packet with each piece charged at the whole one's size, which overruns a
# non-GRO receiver's default socket buffer (seen with charon/kernel-libipsec: ~1 % loss).
GSO_BURST = 16
_MISS = object()
ACQUIRE_RETRY = 5.0  # seconds before a still-unanswered trap may acquire again


class UserspaceDataplane:
    """Moves packets between one TUN device and the network for all installed Child SAs."""

    def __init__(
        self,
        tun: TunDevice,
        udp: dict[tuple[str, int], DatagramEndpoint],
        raw_esp: dict[int, DatagramEndpoint],
        mtu: int,
        run_netlink: Callable[..., object] | None = None,
        call_later: Callable[[float, Callable[[], None]], object] | None = None,
        on_acquire: Callable[[str, str], None] | None = None,
        udp_gso: bool = False,
        routing: PolicyRouting | None = None,
    ) -> None:
        self.tun = tun
        # Netlink calls run synchronously (a route must exist before traffic may use the SA);
        # the daemon's runner moves them to a worker thread and waits for the result.
        self.run_netlink = run_netlink or (lambda fn, *args: fn(*args))
        self.routing = routing or PolicyRouting()
        self.udp = udp  # (local host or wildcard, port) → endpoint
        self.raw_esp = raw_esp  # IP version → raw protocol-50 endpoint
        self.mtu = mtu
        self.spd = Spd()
        self.by_spi: dict[int, InstalledChild] = {}
        self.children: dict[int, InstalledChild] = {}
        self.drops = DropLog(log)
        self.counts: Counter[str] = Counter()
        # Drop counts of removed Child SAs, so that statistics never go backwards.
        self.retired_drops: Counter[str] = Counter()
        self._routes: set[str] = set()
        self.call_later = call_later or (lambda _delay, fn: fn())
        self.on_acquire = on_acquire
        self.on_peer_moved: Callable[[int, Address], None] | None = None
        self.traps: dict[tuple[str, str], Trap] = {}
        # Outbound SPD decisions per 5-tuple; emptied whenever the SPD changes.
        self._flows: dict[tuple[bytes, bytes, int, int, int], object] = {}
        self._batch: list[tuple[InstalledChild, bytes]] | None = None
        self.udp_gso = udp_gso
        self.vips = DeviceAddresses(tun.name, self.run_netlink)  # our virtual IPs (``vips``)

    # ---------------------------------------------------------------- SA installation

    def install(self, up: ChildSaUp, now: float) -> bool:
        """Install a negotiated Child SA: its routes first, then inbound, then outbound.
        False (nothing installed, the reason logged) when a route cannot be added: the SA
        must not be reported or used as installed then (fail closed)."""
        if not self._add_routes(up):
            return False
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
        child = InstalledChild(
            up,
            outbound,
            inbound,
            up.local,
            up.remote,
            up.encap,
            up.ike_id,
            sending=up.outbound_active,
        )
        # Inbound first, then outbound: the new SA receives before anything is sent on it.
        self.by_spi[up.inbound.spi] = child
        self.children[up.child_id] = child
        if up.outbound_active:
            self._policy(up.local_ts, up.remote_ts, up.child_id, first=True)
        trap = self.traps.get((up.connection, up.name))
        if trap is not None:
            held, trap.held = trap.held, []
            trap.acquired_at = None
            if trap.expires is not None:  # a hold has done its job
                self.remove_trap(up.connection, up.name)
            for packet in held:
                self.send_plaintext(packet, now)
        return True

    def activate(self, child_id: int) -> None:
        """Start sending on a Child SA installed receive-only (rekey responder, RFC 7296 §2.8)."""
        child = self.children.get(child_id)
        if child is not None and not child.sending:
            child.sending = True
            self._policy(child.event.local_ts, child.event.remote_ts, child_id, first=True)

    def remove(self, down: ChildSaDown, now: float) -> None:
        """Stop sending on the SA now (holding its traffic for ``down.hold`` seconds when the
        peer deleted it); stop receiving now, or after ``down.linger`` seconds."""
        self._no_policy(down.child_id)
        child = self.children.get(down.child_id)
        if child is None:
            return
        if down.hold > 0 and child.sending:
            self._hold(child.event, now + down.hold)
        child.sending = False

        def forget() -> None:
            if self.children.get(down.child_id) is not child:
                return  # already forgotten (a second removal while it lingered)
            del self.children[down.child_id]
            if self.by_spi.get(child.inbound.spi) is child:
                del self.by_spi[child.inbound.spi]
            self.retired_drops.update(child.inbound.drops.as_dict())
            self.retired_drops["outside_selectors"] += child.policy_drops
            child.event.inbound.wipe()  # the ESP keys we hold, zeroed (crypto.secrets)
            child.event.outbound.wipe()

        if down.linger > 0:
            self.call_later(down.linger, forget)
        else:
            forget()

    def drop_counts(self) -> Counter[str]:
        """Every packet the data plane dropped, by reason: its own drops, each Child SA's
        inbound drops by reason, and those of Child SAs already removed."""
        total: Counter[str] = Counter(self.drops.counts)
        total.update(self.counts)
        total.update(self.retired_drops)
        for child in self.children.values():
            total.update(child.inbound.drops.as_dict())
            total["outside_selectors"] += child.policy_drops
        return +total

    def _policy(
        self,
        local_ts: tuple[Selector, ...],
        remote_ts: tuple[Selector, ...],
        handle: object,
        first: bool,
    ) -> None:
        """Install an SPD entry (first: ahead of all others) and forget cached decisions."""
        self._flows.clear()
        self.spd.add(local_ts, remote_ts, handle, index=0 if first else None)  # type: ignore[arg-type]

    def _no_policy(self, handle: object) -> None:
        self._flows.clear()
        self.spd.remove(handle)  # type: ignore[arg-type]

    def rekeyed_ike(self, old_ike_id: int, new_ike_id: int) -> None:
        self.vips.moved(old_ike_id, new_ike_id)
        for child in self.children.values():
            if child.ike_id == old_ike_id:
                child.ike_id = new_ike_id

    def update_addresses(self, ike_id: int, local: Address, remote: Address, encap: bool) -> None:
        """Follow an IKE SA to a new address or port (NAT mapping change, float to 4500)."""
        for child in self.children.values():
            if child.ike_id == ike_id:
                child.local, child.remote, child.encap = local, remote, encap or child.encap

    # ---------------------------------------------------------------- trap policies

    def install_trap(
        self,
        connection: str,
        child: str,
        local_ts: tuple[Selector, ...],
        remote_ts: tuple[Selector, ...],
    ) -> bool:
        """A policy that triggers negotiation on the first matching packet (acquire); False
        when its routes cannot be added (logged; no trap then)."""
        if not self._route(remote_ts, None, f"trap {connection}/{child}"):
            return False
        key = (connection, child)
        if key not in self.traps:
            self.traps[key] = Trap(connection, child)
        self.traps[key].expires = None  # a hold becomes the configured trap
        self._policy(local_ts, remote_ts, ("trap", *key), first=False)  # SAs match first
        return True

    def _hold(self, up: ChildSaUp, until: float) -> None:
        key = (up.connection, up.name)
        if key in self.traps:
            return  # a configured trap already catches this traffic
        self.traps[key] = Trap(up.connection, up.name, expires=until)
        self._policy(up.local_ts, up.remote_ts, ("trap", *key), first=False)

    def _expire_holds(self, now: float) -> None:
        for key, trap in list(self.traps.items()):
            if trap.expires is not None and now > trap.expires:
                self.counts["outbound_hold_expired"] += len(trap.held)
                self.remove_trap(*key)

    def remove_trap(self, connection: str, child: str) -> None:
        self._no_policy(("trap", connection, child))
        self.traps.pop((connection, child), None)

    def _trapped(self, handle: tuple[str, str, str], packet: bytes, now: float) -> None:
        trap = self.traps.get((handle[1], handle[2]))
        if trap is None:
            return
        if trap.expires is not None and now > trap.expires:
            self.counts["outbound_hold_expired"] += 1
            self._expire_holds(now)
            return
        if len(trap.held) < MAX_HELD_PACKETS:
            trap.held.append(packet)
        else:
            self.counts["trap_queue_full"] += 1
        if trap.expires is not None:
            return  # a hold waits for the peer; it never acquires
        if trap.acquired_at is None or now - trap.acquired_at > ACQUIRE_RETRY:
            trap.acquired_at = now
            log.info("acquire: %s/%s triggered by traffic", trap.connection, trap.child)
            if self.on_acquire is not None:
                self.on_acquire(trap.connection, trap.child)

    def poll(self, now: float) -> tuple[list[int], list[tuple[int, int, str]]]:
        """IKE SAs whose children received ESP since the last poll (no DPD needed), and
        Child SAs over a byte/packet limit: (ike_id, child_id, "rekey" | "expire")."""
        self._expire_holds(now)
        alive: set[int] = set()
        limits: list[tuple[int, int, str]] = []
        for child_id, child in self.children.items():
            inbound = child.inbound.counters
            if inbound.packets != child.seen_packets_in:
                child.seen_packets_in = inbound.packets
                alive.add(child.ike_id)
            if not child.sending:
                continue
            up = child.event
            octets = inbound.octets + child.outbound.counters.octets
            packets = inbound.packets + child.outbound.counters.packets
            if (up.life_bytes and octets >= up.life_bytes) or (
                up.life_packets and packets >= up.life_packets
            ):
                limits.append((child.ike_id, child_id, "expire"))
            elif (up.rekey_bytes and octets >= up.rekey_bytes) or (
                up.rekey_packets and packets >= up.rekey_packets
            ):
                limits.append((child.ike_id, child_id, "rekey"))
        return sorted(alive), limits

    def _add_routes(self, up: ChildSaUp) -> bool:
        source = next((str(s.start) for s in up.local_ts if s.start == s.end), None)
        return self._route(up.remote_ts, source, f"CHILD_SA {up.name}{{{up.child_id}}}")

    def _route(self, remote_ts: tuple[Selector, ...], source: str | None, what: str) -> bool:
        """Route the remote selectors' prefixes into the TUN device in our own table (once
        each); False, with an error logged, when the kernel refuses one."""
        routes: list[RouteSpec] = []
        for selector in remote_ts:
            for network in _networks(selector):
                if network not in self._routes:
                    routes.append(
                        (network, source) if source and _same_family(source, network) else network
                    )
        if not routes:
            return True
        try:
            self.run_netlink(self.routing.add_routes, self.tun.name, routes)
        except RouteError as exc:
            log.error("%s not installed, its traffic is not protected: %s", what, exc)
            return False
        self._routes.update(r if isinstance(r, str) else r[0] for r in routes)
        return True

    # ---------------------------------------------------------------- outbound

    def on_tun_readable(self, now: float) -> None:
        """Encrypt a batch of packets from the TUN device, then send them: UDP-encapsulated
        ESP of one SA goes out in as few system calls as UDP GSO allows."""
        self._batch = [] if self.udp_gso else None
        try:
            for packet in self.tun.read_batch(MAX_GSO_SEGMENTS):
                self.send_plaintext(packet, now)
        finally:
            batch, self._batch = self._batch, None
            if batch:
                self._send_batch(batch)

    def send_plaintext(self, packet: bytes, now: float) -> None:
        try:
            key = packet_selector_fields(packet)
        except ValueError:
            self.drops.drop("outbound packet not IPv4/IPv6", now)
            return
        handle = self._flows.get(key, _MISS)
        if handle is _MISS:
            handle = self.spd.lookup_outbound(*key)
            if len(self._flows) >= MAX_FLOWS:
                self._flows.clear()
            self._flows[key] = handle
        if handle is None:
            self.counts["outbound_no_policy"] += 1
            return
        if isinstance(handle, tuple):
            self._trapped(handle, packet, now)  # type: ignore[arg-type]
            return
        child = self.children[handle]  # type: ignore[index]
        if key[2] == 6:
            packet = bytes(clamp_mss(packet, self.mtu))
        try:
            esp = child.outbound.encapsulate(packet, None, now)
        except SequenceOverflow:
            self.drops.drop("sequence number exhausted (SA needs rekeying)", now)
            return
        except ValueError:
            self.drops.drop("outbound packet not IPv4/IPv6", now)
            return
        if self._batch is not None and child.encap:
            self._batch.append((child, esp))
        else:
            self._send_esp(child, esp)

    def _send_batch(self, batch: list[tuple[InstalledChild, bytes]]) -> None:
        """Runs of datagrams to one peer, equal in size but for a shorter last one, leave in
        one GSO send each."""
        run: list[bytes] = []
        run_child: InstalledChild | None = None
        for child, esp in batch:
            if run and (
                child.remote != run_child.remote
                or child.local != run_child.local  # type: ignore[union-attr]
                or len(esp) > len(run[0])
                or len(run[-1]) != len(run[0])
                or len(run) >= GSO_BURST
                or (len(run) + 1) * len(run[0]) > MAX_GSO_BYTES
            ):
                self._send_run(run_child, run)  # type: ignore[arg-type]
                run = []
            run.append(esp)
            run_child = child
        if run:
            self._send_run(run_child, run)  # type: ignore[arg-type]

    def _send_run(self, child: InstalledChild, run: list[bytes]) -> None:
        endpoint = self._udp_endpoint(child.local)
        if endpoint is None:
            self.counts["outbound_no_socket"] += len(run)
            return
        sent = endpoint.send_segments(run, child.remote, child.local[0])
        if sent < len(run):
            self.counts["outbound_send_failed"] += len(run) - sent

    def _send_esp(self, child: InstalledChild, esp: bytes) -> None:
        if child.encap:
            endpoint = self._udp_endpoint(child.local)
            if endpoint is not None:
                if not endpoint.sendto(esp, child.remote, child.local[0]):
                    self.counts["outbound_send_failed"] += 1
                return
        else:
            version = 6 if ":" in child.remote[0] else 4
            endpoint = self.raw_esp.get(version)
            if endpoint is not None:
                if not endpoint.sendto(esp, (child.remote[0], 0)):
                    self.counts["outbound_send_failed"] += 1
                return
        self.counts["outbound_no_socket"] += 1

    def _udp_endpoint(self, local: Address) -> DatagramEndpoint | None:
        wildcard = "::" if ":" in local[0] else "0.0.0.0"
        return self.udp.get((local[0], local[1])) or self.udp.get((wildcard, local[1]))

    # ---------------------------------------------------------------- inbound

    def receive_esp(
        self, data: bytes | memoryview, now: float, source: Address | None = None
    ) -> None:
        """One ESP packet in.  ``source`` is the outer sender for UDP-encapsulated ESP: an
        authentic packet from elsewhere is reported through ``on_peer_moved`` (RFC 3948
        §2.3, as a kernel's XFRM mapping event would)."""
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
        moved = source is not None and child.encap and source != child.remote
        if moved and self.on_peer_moved is not None:
            # Perhaps a new NAT mapping: the IKE engine decides whether its SAs follow
            # (RFC 7296 §2.23), and if so moves them all through update_addresses().
            self.on_peer_moved(child.ike_id, source)
        if not child.sending and child.event.outbound_active is False:
            # The peer already sends on the new SA: it has it installed, so may we (§2.8).
            self.activate(child.event.child_id)
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
