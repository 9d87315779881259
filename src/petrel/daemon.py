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
import signal
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from .config.daemon_settings import read_daemon_settings
from .credentials.store import CredentialStore
from .dataplane.routing import FWMARK, ROUTING_TABLE, ROUTING_TABLE_PRIO, PolicyRouting
from .dataplane.sockets import DatagramEndpoint, Received, open_esp_raw, open_udp
from .dataplane.tun import TunDevice
from .dataplane.userspace import DEFAULT_OUTER_MTU, ESP_OVERHEAD, UserspaceDataplane
from .esp.udpencap import UdpKind, classify, keepalive
from .ike import events as ev
from .ike.engine import NAT_T_PORT, EngineSettings, IkeEngine
from .policy.connection import ChildConfig, Connection, SharedSecret, SwanctlConfig
from .policy.selectors import Selector, resolve_dynamic
from .ratelimit import DropLog
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
            self.options.engine,
            credentials=config.credentials,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.udp: dict[tuple[str, int], DatagramEndpoint] = {}
        self.raw: dict[int, DatagramEndpoint] = {}
        self.tun: TunDevice | None = None
        self.dataplane: UserspaceDataplane | None = None
        self.control: object | None = None
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
        self.hooks = DaemonHooks(self, self.options.config_path, self.options.metrics)

    # ---------------------------------------------------------------- life cycle

    async def run(self) -> None:
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
        self._start_connections()
        log.info("petrel started, %d connection(s) loaded", len(self.config.connections))
        try:
            await self._stopping.wait()
        finally:
            keepalives.cancel()
            poller.cancel()
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
        if self.control is not None:
            await self.control.close()  # type: ignore[attr-defined]
        await self.hooks.stopped()
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
        from .control.commands import ControlCommands

        self.control = await ControlCommands(self).start(self.options.control_socket)

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
            self._install_trap(event.connection, event.child)
        elif isinstance(event, ev.IkeSaDown):
            self._acquiring = {a for a in self._acquiring if a[0] != event.name}
        if self.control is not None:
            self.control.on_event(event)  # type: ignore[attr-defined]

    def _not_installed(self, up: ev.ChildSaUp, why: str) -> None:
        """A negotiated Child SA the data plane could not take: delete it with the peer
        rather than report it installed while its traffic is unprotected."""
        log.error("CHILD_SA %s{%d} not installed (%s): deleting it", up.name, up.child_id, why)
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

    def _install_trap(self, conn_name: str, child_name: str) -> None:
        conn = self.config.connections[conn_name]
        child = conn.children[child_name]
        remote = _concrete_address(conn.remote_addrs)
        if remote is None or self.dataplane is None:
            log.warning("trap for %s/%s needs a concrete remote address", conn_name, child_name)
            return
        local = _concrete_address(conn.local_addrs) or _route_source(remote)
        if self.dataplane.install_trap(
            conn_name,
            child_name,
            resolve_dynamic(child.local_ts, local),
            resolve_dynamic(child.remote_ts, remote),
        ):
            log.info("trap policy installed for %s/%s", conn_name, child_name)

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
                    self._install_trap(conn.name, child.name)
            for child in conn.children.values():
                if child.start_action == "start":  # one IKE SA: later children queue on it
                    self.initiate(conn.name, child.name)

    def initiate(self, conn_name: str, child_name: str | None) -> int:
        """Start an IKE SA (with ``child_name``) for ``conn_name``; returns the IKE SA id."""
        conn = self.config.connections[conn_name]
        remote_host = _concrete_address(conn.remote_addrs)
        if remote_host is None:
            raise ValueError(f"connection {conn_name!r} has no concrete remote address")
        local_host = _concrete_address(conn.local_addrs) or _route_source(remote_host)
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

    # ---------------------------------------------------------------- runtime configuration

    def load_connection(self, conn: Connection) -> str:
        """Add or replace a connection (VICI ``load-conn``) as charon does; returns "added",
        "updated" or "replaced".  Established SAs keep the definition they were made with (a
        changed one applies to the next initiation); start actions of children that changed
        or went away are undone (trap removed, started SAs closed), those of new or changed
        children run.  An identical definition changes nothing."""
        old = self.config.connections.get(conn.name)
        if old is not None and old == conn:
            log.info("updated connection: %s (unchanged)", conn.name)
            return "updated"
        outcome = "added" if old is None else "replaced"
        if old is None:
            undo: list[ChildConfig] = []
            start = list(conn.children.values())
        elif replace(old, children={}) == replace(conn, children={}):
            outcome = "updated"  # only children changed: the others are left alone
            undo = [c for n, c in old.children.items() if conn.children.get(n) != c]
            start = [c for n, c in conn.children.items() if old.children.get(n) != c]
        else:
            undo, start = list(old.children.values()), list(conn.children.values())
        for child in undo:
            self._undo_start_action(conn.name, child)
        self.config.connections[conn.name] = conn
        self.engine.connections[conn.name] = conn
        self._open_sockets_for(conn)
        for child in start:
            self._run_start_action(conn, child)
        self.flush()
        log.info("%s connection: %s", outcome, conn.name)
        return outcome

    def unload_connection(self, name: str) -> bool:
        """Remove a connection (VICI ``unload-conn``): its start actions are undone; other
        SAs it made stay up until they end (as charon)."""
        conn = self.config.connections.pop(name, None)
        self.engine.connections.pop(name, None)
        if conn is None:
            return False
        for child in conn.children.values():
            self._undo_start_action(name, child)
        self.flush()
        return True

    def set_credentials(self, store: CredentialStore, secrets: Iterable[SharedSecret]) -> None:
        """Replace the credentials IKE authentication uses (VICI credential commands)."""
        secrets = tuple(secrets)
        self.engine.secrets = secrets
        self.engine.auth.secrets = secrets
        self.engine.auth.store = store

    def install_policy(self, child_name: str, conn_name: str | None = None) -> str | None:
        """Install the trap policy of a child (VICI ``install``); None, or charon's errmsg."""
        for conn in self.config.connections.values():
            if child_name in conn.children and conn_name in (None, conn.name):
                break
        else:
            return "configuration name not found"
        self._install_trap(conn.name, child_name)
        trap = self.dataplane.traps.get((conn.name, child_name)) if self.dataplane else None
        if trap is None or trap.expires is not None:
            return f"installing policy '{child_name}' failed"
        return None

    def uninstall_policy(self, child_name: str, conn_name: str | None = None) -> bool:
        """Remove a trap policy (VICI ``uninstall``); False when there is none."""
        if self.dataplane is None:
            return False
        for (conn, child), trap in list(self.dataplane.traps.items()):
            if child == child_name and conn_name in (None, conn) and trap.expires is None:
                self.dataplane.remove_trap(conn, child)
                self._acquiring.discard((conn, child))
                log.info("trap policy removed for %s/%s", conn, child)
                return True
        return False

    def trap_policies(self) -> list[tuple[str, str, tuple[Selector, ...], tuple[Selector, ...]]]:
        """Installed trap policies: connection, child, local and remote selectors."""
        if self.dataplane is None:
            return []
        out = []
        for entry in self.dataplane.spd.entries:
            handle = entry.handle
            if isinstance(handle, tuple) and len(handle) == 3 and handle[0] == "trap":
                trap = self.dataplane.traps.get((handle[1], handle[2]))
                if trap is not None and trap.expires is None:
                    out.append((handle[1], handle[2], entry.local, entry.remote))
        return out

    def _run_start_action(self, conn: Connection, child: ChildConfig) -> None:
        if child.start_action == "trap":
            self._install_trap(conn.name, child.name)
        elif child.start_action == "start":
            try:
                self.initiate(conn.name, child.name)
            except (KeyError, ValueError, OSError) as exc:
                log.warning("start_action for %s/%s failed: %s", conn.name, child.name, exc)

    def _undo_start_action(self, conn_name: str, child: ChildConfig) -> None:
        """charon's clear_start_action: a trap is uninstalled; a started child is closed, with
        its IKE SA when that carries nothing else."""
        if child.start_action == "trap":
            self.uninstall_policy(child.name, conn_name)
        if child.start_action != "start":
            return
        now = self.now()
        for sa in self.engine.ike_sas():
            if sa.name != conn_name:
                continue
            live = [c for c in sa.children.values() if c.state not in ("DELETING", "DELETED")]
            mine = [c for c in live if c.config.name == child.name]
            if not sa.children or (mine and len(mine) == len(live)):
                self.engine.terminate(sa.ike_id, now)
            else:
                for c in mine:
                    self.engine.delete_child(sa.ike_id, c.child_id, now)

    def _open_sockets_for(self, conn: Connection) -> None:
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


def _route_source(remote: str) -> str:
    """The source address the kernel would use towards ``remote`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in remote else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((remote, 9))
        return str(probe.getsockname()[0])


def _trace_packet(verb: str, src: ev.Address, dst: ev.Address, size: int) -> None:
    """Every IKE datagram at level 2, as charon logs them (ESP is counted, not logged)."""
    if net_log.isEnabledFor(logging.DEBUG):
        net_log.debug("%s packet: from %s[%d] to %s[%d] (%d bytes)", verb, *src, *dst, size)
