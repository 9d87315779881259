"""asyncio glue: sockets and TUN ↔ IKE engine ↔ userspace data plane ↔ VICI control socket.

No protocol logic lives here: datagrams go to the engine or the data plane, the engine's
datagrams are sent, its events install and remove SAs, its next deadline is armed as a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import resource
import signal
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from .config.daemon_settings import read_daemon_settings
from .control.commands import ControlCommands
from .crlfetch import CrlFetcher
from .daemon_host import DaemonHost
from .dataplane.routing import FWMARK, ROUTING_TABLE, ROUTING_TABLE_PRIO, PolicyRouting
from .dataplane.sockets import DatagramEndpoint, Received, open_esp_raw, open_udp
from .dataplane.tun import TunDevice
from .dataplane.userspace import DEFAULT_OUTER_MTU, ESP_OVERHEAD, UserspaceDataplane
from .esp.udpencap import UdpKind, classify, keepalive
from .ike import events as ev
from .ike.engine import NAT_T_PORT, EngineSettings, IkeEngine
from .policy.connection import Connection, SwanctlConfig
from .policy.selectors import resolve_dynamic
from .ratelimit import DropLog
from .roaming import AddressWatch, roam_where_moved, route_source
from .savekeys import KeySaver
from .service.hooks import DaemonHooks

log = logging.getLogger("petrel.daemon")
net_log = logging.getLogger("petrel.net")

NAT_KEEPALIVE_INTERVAL = 20.0  # seconds, RFC 3948 §4 and strongSwan's default
SHUTDOWN_GRACE = 3.0
SOCKET_BUFFER = 8 << 20
NETLINK_WAIT = 10.0  # seconds a route installation may take before it counts as failed


@dataclass(frozen=True)
class DaemonOptions:
    control_socket: str = "/run/petrel.vici"
    tun_name: str = "petrel%d"
    outer_mtu: int = DEFAULT_OUTER_MTU
    ike_port: int = 500
    udp_gso: bool = False  # batch UDP-encapsulated ESP with UDP_SEGMENT (see dataplane)
    save_keys: str | None = None  # folder for Wireshark key tables (debugging, opt-in)
    nat_port: int = NAT_T_PORT
    routing_table: int = ROUTING_TABLE  # strongSwan's charon.routing_table
    routing_table_prio: int = ROUTING_TABLE_PRIO  # strongSwan's charon.routing_table_prio
    fwmark: int = FWMARK  # marks Petrel's own IKE/ESP packets: they bypass that table
    engine: EngineSettings = field(default_factory=EngineSettings)
    config_path: str | None = None  # re-read on SIGHUP
    metrics: str | None = None  # ADDR:PORT of the Prometheus endpoint


class Daemon:
    """One running Petrel: owns the sockets, the TUN device, the engine and the data plane."""

    def __init__(self, config: SwanctlConfig, options: DaemonOptions | None = None) -> None:
        self.config = config
        self.options = with_strongswan_conf(options or DaemonOptions())
        self.engine = IkeEngine(
            config.connections,
            config.secrets,
            replace(self.options.engine, fetch_crls=True),  # this host fetches (crlfetch)
            credentials=config.credentials,
            pools=config.pools,
        )
        self.crl_fetcher: CrlFetcher | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.udp: dict[tuple[str, int], DatagramEndpoint] = {}
        self.raw: dict[int, DatagramEndpoint] = {}
        self.tun: TunDevice | None = None
        self.dataplane: UserspaceDataplane | None = None
        self.control: ControlCommands | None = None
        self._log_handler: logging.Handler | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopping = asyncio.Event()
        self._acquiring: set[tuple[str, str]] = set()
        self.send_failures = DropLog(net_log)
        self.key_saver = KeySaver(self.options.save_keys) if self.options.save_keys else None
        self.routing = PolicyRouting(
            self.options.routing_table, self.options.routing_table_prio, self.options.fwmark
        )
        self._rules_installed = False
        # pyroute2's synchronous API cannot run inside a running loop: one worker thread
        # serialises every netlink call.
        self._netlink = ThreadPoolExecutor(1, thread_name_prefix="netlink")
        self.started_at = 0.0
        self.address_watch = AddressWatch(self._addresses_changed)
        self.host = DaemonHost(self)
        self.hooks = DaemonHooks(self, self.options.config_path, self.options.metrics)

    # ---------------------------------------------------------------- life cycle

    async def run(self) -> None:
        _no_core_dumps()
        self.loop = asyncio.get_running_loop()
        self.started_at = self.loop.time()
        # Bound first (a port in use fails early), read only once the data plane exists:
        # nothing negotiated may arrive before there is somewhere to install it.
        self._open_sockets()
        await self._install_rules()
        await self._open_tun()
        self._attach_sockets()
        await self._start_control()
        await self.hooks.started()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._stopping.set)
        keepalives = asyncio.ensure_future(self._keepalive_loop())
        poller = asyncio.ensure_future(self._poll_loop())
        self.address_watch.start()
        self._start_connections()
        log.info("petrel started, %d connection(s) loaded", len(self.config.connections))
        try:
            await self._stopping.wait()
        finally:
            keepalives.cancel()
            poller.cancel()
            await self.address_watch.stop()
            await self._shutdown()

    def stop(self) -> None:
        self._stopping.set()

    async def _shutdown(self) -> None:
        """Delete every IKE SA with its peer (bounded wait), then release everything."""
        log.info("shutting down: deleting %d IKE SA(s)", len(self.engine.ike_sas()))
        self.hooks.stopping()
        self.engine.terminate_all(self.now())
        self.flush()
        deadline = self.now() + SHUTDOWN_GRACE
        while self.engine.ike_sas() and self.now() < deadline:
            await asyncio.sleep(0.05)
        if self._log_handler is not None:
            logging.getLogger("petrel").removeHandler(self._log_handler)
        if self.control is not None:
            await self.control.close()
        await self.hooks.stopped()
        if self.crl_fetcher is not None:
            self.crl_fetcher.close()
        assert self.loop is not None
        for endpoint in [*self.udp.values(), *self.raw.values()]:
            with contextlib.suppress(Exception):
                endpoint.detach(self.loop)
            endpoint.close()
        if self.tun is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.tun.fileno())
            self.tun.close()
        if self._rules_installed:
            try:
                await self.loop.run_in_executor(self._netlink, self.routing.remove_rules)
            except OSError as exc:
                log.warning("policy routing rules not removed: %s", exc)
        log.info("petrel stopped")

    def now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    # ---------------------------------------------------------------- sockets and TUN

    def _bind_addresses(self) -> list[str]:
        addresses: set[str] = set()
        for conn in self.config.connections.values():
            for spec in conn.local_addrs or ("%any",):
                try:
                    addresses.add(str(ipaddress.ip_address(spec)))
                except ValueError:
                    addresses.add("0.0.0.0")
        if not addresses or "0.0.0.0" in addresses:
            # %any, or no connection yet (configured later over VICI): both families (the
            # IPv6 socket is v6-only)
            return ["0.0.0.0", "::"]
        return sorted(addresses)

    def _open_sockets(self) -> None:
        assert self.loop is not None
        for host in self._bind_addresses():
            for port in (self.options.ike_port, self.options.nat_port):
                try:
                    endpoint = open_udp(host, port)
                except OSError as exc:
                    if host != "::":
                        raise
                    net_log.warning("no IPv6 socket on port %d: %s", port, exc)
                    continue
                self._prepare(endpoint)
                self.udp[(host, port)] = endpoint
        for version, wildcard in ((4, "0.0.0.0"), (6, "::")):
            try:
                raw = open_esp_raw(wildcard)
            except OSError as exc:  # not root: no plain ESP, UDP 4500 still works
                net_log.warning("raw ESP socket (IPv%d) unavailable: %s", version, exc)
                continue
            self._prepare(raw)
            self.raw[version] = raw

    def _prepare(self, endpoint: DatagramEndpoint) -> None:
        _grow_buffers(endpoint)
        try:
            self.routing.mark(endpoint.sock)
        except OSError as exc:  # not privileged: no policy routing either (see _install_rules)
            net_log.warning("socket %s not marked: %s", endpoint.local, exc)

    def _attach_sockets(self) -> None:
        assert self.loop is not None
        for endpoint in self.udp.values():
            endpoint.attach(self.loop, self._on_udp)
        for raw in self.raw.values():
            raw.attach(self.loop, self._on_raw_esp)
        net_log.info("listening on %s", ", ".join(f"{h}:{p}" for h, p in self.udp))

    async def _install_rules(self) -> None:
        """The rule that puts our routing table ahead of the main one (fail closed: without
        it a route elsewhere could shadow the tunnel, so the daemon does not start)."""
        assert self.loop is not None
        await self.loop.run_in_executor(self._netlink, self.routing.install_rules)
        self._rules_installed = True
        net_log.info(
            "routes in table %d, rule priority %d (IKE/ESP sockets marked %#x bypass it)",
            self.routing.table,
            self.routing.priority,
            self.routing.fwmark,
        )

    async def _open_tun(self) -> None:
        assert self.loop is not None
        self.tun = TunDevice.open(self.options.tun_name)
        mtu = self.options.outer_mtu - ESP_OVERHEAD
        await self.loop.run_in_executor(self._netlink, self.tun.configure, mtu)
        loop = self.loop
        self.dataplane = UserspaceDataplane(
            self.tun,
            self.udp,
            self.raw,
            mtu,
            # A route must exist before an SA is used: wait for the netlink thread's answer.
            run_netlink=lambda fn, *args: self._netlink.submit(fn, *args).result(NETLINK_WAIT),
            call_later=loop.call_later,
            on_acquire=self._on_acquire,
            udp_gso=self.options.udp_gso,
            routing=self.routing,
        )
        self.dataplane.on_peer_moved = self._on_peer_moved
        self.loop.add_reader(self.tun.fileno(), self._on_tun)
        net_log.info("data plane on %s (MTU %d)", self.tun.name, mtu)

    async def _start_control(self) -> None:
        """The VICI socket, and its ``log``/``control-log`` events fed by Petrel's log."""
        self.control = await ControlCommands(self.host).start(self.options.control_socket)
        self._log_handler = self.control.log_handler()
        logging.getLogger("petrel").addHandler(self._log_handler)

    # ---------------------------------------------------------------- input

    def _on_udp(self, endpoint: DatagramEndpoint, batch: list[Received]) -> None:
        now = self.now()
        dataplane = self.dataplane
        admission = self.engine.admission
        waiting = len(batch)
        for data, remote, local in batch:
            waiting -= 1
            admission.backlog = waiting
            local_addr = (local[0] or endpoint.local[0], endpoint.local[1])
            if endpoint.local[1] == self.options.nat_port:
                kind, payload = classify(data)
                if kind is UdpKind.ESP and dataplane is not None:
                    dataplane.receive_esp(payload, now, remote)
                    continue
                if kind is UdpKind.INVALID and dataplane is not None:
                    dataplane.drops.drop("UDP 4500 datagram too short for IKE or ESP", now)
                if kind is not UdpKind.IKE:
                    continue  # a NAT keepalive, or counted above
                _trace_packet("received", remote, local_addr, len(data))
                self.hooks.counts.datagram(payload, outgoing=False)
                self.engine.receive(bytes(payload), local_addr, remote, now)
            else:
                _trace_packet("received", remote, local_addr, len(data))
                self.hooks.counts.datagram(data, outgoing=False)
                self.engine.receive(data, local_addr, remote, now)
        self.flush()

    def _on_raw_esp(self, endpoint: DatagramEndpoint, batch: list[Received]) -> None:
        now = self.now()
        if self.dataplane is None:
            return
        for data, _remote, _local in batch:
            self.dataplane.receive_esp(data, now)

    def _on_tun(self) -> None:
        if self.dataplane is not None:
            self.dataplane.on_tun_readable(self.now())

    def _on_timer(self) -> None:
        self._timer = None
        self.engine.handle_timer(self.now())
        self.flush()

    # ---------------------------------------------------------------- output

    def flush(self) -> None:
        """Act on the engine's events, then send its datagrams, until it has nothing more;
        re-arm its timer.  Events first: a Child SA is installed (routes included) before the
        response that lets the peer use it leaves."""
        while True:
            events = self.engine.take_events()
            for event in events:
                self._on_event(event)
            datagrams = self.engine.take_datagrams()
            for datagram in datagrams:
                self._send_datagram(datagram)
            if not events and not datagrams:
                break
        self._arm_timer()

    def _send_datagram(self, datagram: ev.Datagram) -> None:
        local_host, port = datagram.local
        wildcard = "::" if ":" in local_host else "0.0.0.0"
        endpoint = self.udp.get((local_host, port)) or self.udp.get((wildcard, port))
        if endpoint is None:
            net_log.warning("no socket for %s:%d, datagram dropped", local_host, port)
            return
        _trace_packet("sending", datagram.local, datagram.remote, len(datagram.data))
        self.hooks.counts.datagram(datagram.data, outgoing=True)
        if not endpoint.sendto(datagram.data, datagram.remote, local_host):
            self.send_failures.drop(
                "IKE datagram not sent (counts as lost; retransmission follows)",
                self.now(),
                f"to {datagram.remote[0]}:{datagram.remote[1]}",
            )

    def _on_event(self, event: ev.Event) -> None:
        self.hooks.counts.event(event)
        if self.key_saver is not None:
            self._save_keys(event)
        # a Child SA going away is reported while the data plane still has its counters
        leaving = isinstance(event, ev.ChildSaDown | ev.ChildSaRekeyed)
        if leaving and self.control is not None:
            self.control.on_event(event)
        dataplane = self.dataplane
        if dataplane is None:
            if isinstance(event, ev.ChildSaUp):  # cannot happen once started: fail closed
                self._not_installed(event, "no data plane yet")
        elif isinstance(event, ev.ChildSaUp):
            self._acquiring.discard((event.connection, event.name))
            if not dataplane.install(event, self.now()):
                self._not_installed(event, "its routes could not be installed")
        elif isinstance(event, ev.ChildSaActivated):
            dataplane.activate(event.child_id)
        elif isinstance(event, ev.ChildSaDown):
            dataplane.remove(event, self.now())
        elif isinstance(event, ev.IkeSaRekeyed):
            dataplane.rekeyed_ike(event.old_ike_id, event.new_ike_id)
        elif isinstance(event, ev.IkeSaUpdated):
            dataplane.update_addresses(event.ike_id, event.local, event.remote, event.encap)
        elif isinstance(event, ev.TrapRequested):
            self.install_trap(event.connection, event.child)
        elif isinstance(event, ev.VirtualIpsAssigned):
            dataplane.vips.assign(event.ike_id, event.addresses)
        elif isinstance(event, ev.IkeSaDown):
            self._acquiring = {a for a in self._acquiring if a[0] != event.name}
            dataplane.vips.released(event.ike_id)
        if isinstance(event, ev.FetchCrl):
            self._fetch_crl(event.uri)
        if not leaving and self.control is not None:
            self.control.on_event(event)

    def _fetch_crl(self, uri: str) -> None:
        """Fetch in worker threads; the answer goes back to the engine on the loop."""
        if self.crl_fetcher is None:
            assert self.loop is not None
            self.crl_fetcher = CrlFetcher(self.loop, self._crl_fetched)
        self.crl_fetcher.fetch(uri)

    def _crl_fetched(self, uri: str, data: bytes | None, error: str) -> None:
        self.engine.crl_fetched(uri, data, self.now(), error)
        self.flush()

    def _not_installed(self, up: ev.ChildSaUp, why: str) -> None:
        """A negotiated Child SA the data plane could not take: delete it with the peer
        rather than report it installed while its traffic is unprotected."""
        log.error("CHILD_SA %s{%d} not installed (%s): deleting it", up.name, up.child_id, why)
        up.inbound.wipe()  # its keys are held nowhere else (crypto.secrets)
        up.outbound.wipe()
        self.engine.delete_child(up.ike_id, up.child_id, self.now())

    def _save_keys(self, event: ev.Event) -> None:
        assert self.key_saver is not None
        if isinstance(event, ev.ChildSaUp):
            self.key_saver.child_sa(event)
        elif isinstance(event, ev.IkeSaUp | ev.IkeSaRekeyed):
            ike_id = event.ike_id if isinstance(event, ev.IkeSaUp) else event.new_ike_id
            sa = next((s for s in self.engine.ike_sas() if s.ike_id == ike_id), None)
            if sa is not None:
                self.key_saver.ike_sa(sa)

    def _arm_timer(self) -> None:
        assert self.loop is not None
        deadline = self.engine.next_timer()
        if self._timer is not None:
            if deadline is not None and abs(self._timer.when() - deadline) < 1e-3:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    async def _poll_loop(self) -> None:
        """Once a second: ESP seen (so no DPD is needed) and byte/packet lifetimes."""
        while True:
            await asyncio.sleep(1.0)
            if self.dataplane is None:
                continue
            now = self.now()
            alive, limits = self.dataplane.poll(now)
            for ike_id in alive:
                self.engine.peer_activity(ike_id, now)
            for ike_id, child_id, action in limits:
                if action == "rekey":
                    self.engine.rekey_child(ike_id, child_id, now)
                else:
                    self.engine.delete_child(ike_id, child_id, now)
            if limits:
                self.flush()

    # ---------------------------------------------------------------- trap policies

    def install_trap(self, conn_name: str, child_name: str) -> None:
        conn = self.config.connections[conn_name]
        child = conn.children[child_name]
        remote = _concrete_address(conn.remote_addrs)
        if remote is None or self.dataplane is None:
            log.warning("trap for %s/%s needs a concrete remote address", conn_name, child_name)
            return
        local = _concrete_address(conn.local_addrs) or route_source(remote, self.options.fwmark)
        if self.dataplane.install_trap(
            conn_name,
            child_name,
            resolve_dynamic(child.local_ts, local),
            resolve_dynamic(child.remote_ts, remote),
        ):
            log.info("trap policy installed for %s/%s", conn_name, child_name)

    def _addresses_changed(self) -> None:
        roam_where_moved(self.engine, self.options.fwmark, self.now())
        self.flush()

    def _on_peer_moved(self, ike_id: int, remote: tuple[str, int]) -> None:
        self.engine.peer_moved(ike_id, remote, self.now())
        self.flush()

    def _on_acquire(self, conn_name: str, child_name: str) -> None:
        """A packet hit a trap policy: negotiate its Child SA (RFC 4301 §5.2 acquire)."""
        if (conn_name, child_name) in self._acquiring:
            return
        self._acquiring.add((conn_name, child_name))
        try:
            self.initiate(conn_name, child_name)
        except (KeyError, ValueError, OSError) as exc:
            log.warning("acquire for %s/%s failed: %s", conn_name, child_name, exc)
            self._acquiring.discard((conn_name, child_name))

    async def _keepalive_loop(self) -> None:
        """NAT keepalives from behind a NAT (RFC 3948 §4)."""
        while True:
            await asyncio.sleep(NAT_KEEPALIVE_INTERVAL)
            for sa in self.engine.ike_sas():
                if sa.nat_local and sa.local[1] == self.options.nat_port:
                    endpoint = self.udp.get(sa.local) or self.udp.get(("0.0.0.0", sa.local[1]))
                    if endpoint is not None:
                        endpoint.sendto(keepalive(), sa.remote, sa.local[0])

    # ---------------------------------------------------------------- commands

    def _start_connections(self) -> None:
        """start_action: trap installs policies, start negotiates (all children, one IKE SA)."""
        for conn in self.config.connections.values():
            for child in conn.children.values():
                if child.start_action == "trap":
                    self.install_trap(conn.name, child.name)
            for child in conn.children.values():
                if child.start_action == "start":  # one IKE SA: later children queue on it
                    self.initiate(conn.name, child.name)

    def initiate(self, conn_name: str, child_name: str | None) -> int:
        """Start an IKE SA (with ``child_name``) for ``conn_name``; returns the IKE SA id."""
        conn = self.config.connections[conn_name]
        remote_host = _concrete_address(conn.remote_addrs)
        if remote_host is None:
            raise ValueError(f"connection {conn_name!r} has no concrete remote address")
        local_host = _concrete_address(conn.local_addrs) or route_source(
            remote_host, self.options.fwmark
        )
        local = (local_host, conn.local_port or self.options.ike_port)
        remote = (remote_host, conn.remote_port or self.options.ike_port)
        ike_id = self.engine.initiate(conn_name, child_name, local, remote, self.now())
        self.flush()
        return ike_id

    def initiate_child(self, child_name: str) -> int:
        conn = self.connection_of_child(child_name)
        return self.initiate(conn.name, child_name)

    def connection_of_child(self, child_name: str) -> Connection:
        for conn in self.config.connections.values():
            if child_name in conn.children:
                return conn
        raise KeyError(f"no child {child_name!r} configured")

    def terminate(self, ike_ids: Iterable[int]) -> int:
        count = 0
        for ike_id in ike_ids:
            count += self.engine.terminate(ike_id, self.now())
        self.flush()
        return count

    def open_sockets_for(self, conn: Connection) -> None:
        """IKE sockets on a loaded connection's concrete local addresses, unless bound."""
        if self.loop is None:
            return
        bound = {host for host, _port in self.udp}
        for spec in conn.local_addrs:
            try:
                host = str(ipaddress.ip_address(spec.strip()))
            except ValueError:
                host = "0.0.0.0"
            wildcard = "::" if ":" in host else "0.0.0.0"
            if host in bound or wildcard in bound:
                continue
            for port in (self.options.ike_port, self.options.nat_port):
                try:
                    endpoint = open_udp(host, port)
                except OSError as exc:
                    net_log.warning("no IKE socket on %s:%d: %s", host, port, exc)
                    continue
                self._prepare(endpoint)
                self.udp[(host, port)] = endpoint
                endpoint.attach(self.loop, self._on_udp)
                net_log.info("listening on %s:%d", host, port)


def with_strongswan_conf(options: DaemonOptions) -> DaemonOptions:
    """``options`` with the admission knobs of the strongswan.conf that ``STRONGSWAN_CONF``
    names (as charon reads it; :mod:`petrel.config.daemon_settings`), if it names one."""
    path = os.environ.get("STRONGSWAN_CONF")
    if not path:
        return options
    overrides = read_daemon_settings(path)
    if overrides:
        log.info("settings from %s: %s", path, ", ".join(f"{k}={v}" for k, v in overrides.items()))
    return replace(options, engine=replace(options.engine, **overrides))  # type: ignore[arg-type]


def _grow_buffers(endpoint: DatagramEndpoint, size: int = SOCKET_BUFFER) -> None:
    """Room for bursts: an overflowing raw ESP socket makes the kernel answer ESP with ICMP
    protocol-unreachable, and an overflowing UDP socket loses packets silently."""
    for option, forced in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # *BUFFORCE
        try:
            endpoint.sock.setsockopt(socket.SOL_SOCKET, forced, size)
        except OSError:  # not privileged: the capped, unforced size
            endpoint.sock.setsockopt(socket.SOL_SOCKET, option, size)


def _concrete_address(specs: Iterable[str]) -> str | None:
    for spec in specs:
        try:
            return str(ipaddress.ip_address(spec.strip()))
        except ValueError:
            continue
    return None


def _trace_packet(verb: str, src: ev.Address, dst: ev.Address, size: int) -> None:
    """Every IKE datagram at level 2, as charon logs them (ESP is counted, not logged)."""
    if net_log.isEnabledFor(logging.DEBUG):
        net_log.debug("%s packet: from %s[%d] to %s[%d] (%d bytes)", verb, *src, *dst, size)


def _no_core_dumps() -> None:
    """A crashed daemon leaves no core file: it would hold every live key (issue 9 §4)."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:
        log.warning("could not disable core dumps: %s", exc)
