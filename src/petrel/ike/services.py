"""What exchange tasks may use of the engine: SA tables, sending and protection, message IDs
and the request window (§2.3), the task queue of each IKE SA, Child SA installation, SA
teardown, timers, identities and the outputs (datagrams, events) for the host."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..credentials.store import CredentialStore
from ..crypto.ke import KeyExchanges
from ..esp.udpencap import IKE_MARKER
from ..policy.connection import ChildConfig, Connection, SharedSecret
from ..policy.identity import Identity
from ..policy.pools import AddressPool, PoolConfig
from ..policy.selectors import Selector, resolve_dynamic
from ..ratelimit import DropLog
from ..wire.payloads import (
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    SK,
    IkeHeader,
    Message,
    Payload,
    Proposal,
)
from ..wire.registry import ExchangeType, NotifyType, name_of
from ..wire.summary import message_summary
from . import events as ev
from .auth.exchange import IkeAuth
from .counters import MessageCounters
from .fragment import DEFAULT_FRAGMENT_SIZE, fragment_message, ike_payload_limit
from .halfopen import HalfOpenTable
from .keys import child_sa_up
from .negotiation import algorithms_of
from .protect import build_plain, build_protected, open_protected
from .sa import ChildSa, IkeSa, IkeState, Outstanding
from .sources import SourceKey
from .task import Task
from .timers import DPD, EXPIRE_IKE, REAUTH, REKEY_IKE, TimerKey

log = logging.getLogger("petrel.ike")

NAT_T_PORT = 4500
ZERO_SPI = bytes(8)

# Initiations to retry (keyingtries): deadline, connection, child, local, remote, attempt.
Retry = tuple[float, str, str | None, ev.Address, ev.Address, int]


@dataclass(frozen=True)
class EngineSettings:
    """Tunables, with strongSwan's defaults where it has one."""

    retransmit_timeout: float = 4.0
    retransmit_base: float = 1.8
    retransmit_tries: int = 5
    half_open_timeout: float = 30.0
    # IKE_SA_INIT admission under load (§2.6, RFC 8019), strongSwan's charon.* names; 0 = off.
    cookie_threshold: int = 10  # demand a COOKIE from this many half-open SAs on (charon: 30)
    block_threshold: int = 5  # drop IKE_SA_INIT from a source with this many half-open SAs
    init_limit_half_open: int = 1000  # drop IKE_SA_INIT from this many half-open SAs on
    init_limit_job_load: int = 0  # drop IKE_SA_INIT while more datagrams than this wait
    block_time: float = 60.0  # a host whose half-open SAs time out block_threshold times: blocked
    init_rate_per_host: float = 10.0  # IKE_SA_INIT/s a source may send while cookies are on
    ipv6_source_prefix: int = 64  # an IPv6 source is its /64 for the limits above (128: each)
    cookie_lifetime: float = 20.0  # seconds a COOKIE stays valid
    cookie_secret_lifetime: float = 60.0  # seconds between COOKIE secret rotations
    puzzle_difficulty: int = 8  # RFC 8019 puzzle asked at the cookie threshold (0: no puzzles)
    puzzle_max_difficulty: int = 16  # the most asked as the load grows
    puzzle_max_solve: int = 20  # as initiator: solve puzzles up to this difficulty
    nonce_size: int = 32
    max_ke_retries: int = 3
    fragment_size: int = DEFAULT_FRAGMENT_SIZE  # IP datagram size for IKE fragments (RFC 7383)
    fetch_crls: bool = False  # the host fetches CRLs from distribution points (FetchCrl)
    max_crl_fetches: int = 8  # CRL fetches in flight at once; more URIs count as failed
    crl_wait_timeout: float = 20.0  # a parked IKE_AUTH waits no longer for its fetches


class IkeServices:
    """The engine's shared state and helpers, as the exchange tasks see them."""

    def __init__(
        self,
        connections: Mapping[str, Connection],
        secrets: Sequence[SharedSecret],
        settings: EngineSettings | None = None,
        random: Callable[[int], bytes] = os.urandom,
        credentials: CredentialStore | None = None,
        clock: Callable[[], datetime] | None = None,
        key_exchanges: KeyExchanges | None = None,
        pools: Mapping[str, PoolConfig] | None = None,
    ) -> None:
        self.connections = dict(connections)
        self.pools = {name: AddressPool(cfg) for name, cfg in (pools or {}).items()}
        self.secrets = tuple(secrets)
        # Authenticators and credentials (certificate validity needs the wall clock).
        self.auth = IkeAuth(self.connections.values(), self.secrets, credentials, clock)
        self.settings = settings or EngineSettings()
        self.auth.fetch_crls = self.settings.fetch_crls
        self.crl_fetches: set[str] = set()  # CRL distribution points being fetched by the host
        self.random = random
        self.key_exchanges = key_exchanges or KeyExchanges()
        self.drops = DropLog(log)
        self.messages = MessageCounters()  # charon's per-exchange counters
        self.sas: dict[int, IkeSa] = {}
        self.by_spi: dict[tuple[bytes, bytes], IkeSa] = {}  # (SPIi, SPIr) once both known
        self.source = SourceKey(self.settings.ipv6_source_prefix)  # what DoS limits count
        self.half_open = HalfOpenTable(self.source)  # responder, by (SPIi, peer host, port)
        self.by_initiator_spi: dict[bytes, IkeSa] = {}  # our SAs as initiator, by SPIi
        self.datagrams: list[ev.Datagram] = []
        self.events: list[ev.Event] = []
        self.retries: list[Retry] = []
        self.now = 0.0  # the time of the input being processed
        self._next_ike_id = 1
        self._next_child_id = 1
        # Set by the engine: what follows the loss of an IKE SA (dpd_action, close_action).
        self.on_lost: Callable[[IkeSa, list[ChildConfig], bool], None] = lambda *_: None

    # ---------------------------------------------------------------- identifiers

    def new_ike_id(self) -> int:
        ike_id = self._next_ike_id
        self._next_ike_id += 1
        return ike_id

    def new_ike_spi(self) -> bytes:
        while True:
            spi = self.random(8)
            if spi != ZERO_SPI:
                return spi

    def new_child_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.random(4), "big")
            if spi >= 256:  # 1..255 are reserved by IANA (RFC 4303 §2.1)
                return spi

    def nonce(self) -> bytes:
        return self.random(self.settings.nonce_size)

    def jitter(self, span: float) -> float:
        if span <= 0:
            return 0.0
        return span * int.from_bytes(self.random(4), "big") / 0xFFFFFFFF

    def backoff(self, tries: int) -> float:
        return self.settings.retransmit_timeout * self.settings.retransmit_base ** (tries - 1)

    # ---------------------------------------------------------------- sending

    def send(
        self,
        sa: IkeSa,
        data: bytes | Sequence[bytes],
        path: tuple[ev.Address, ev.Address] | None = None,
    ) -> None:
        """To the IKE SA's addresses, or to ``path`` (local, remote) when given."""
        local, remote = path or (sa.local, sa.remote)
        for datagram in (data,) if isinstance(data, bytes) else data:
            self.send_to(datagram, local, remote)

    def send_to(self, data: bytes, local: ev.Address, remote: ev.Address) -> None:
        if local[1] == NAT_T_PORT or remote[1] == NAT_T_PORT:
            data = IKE_MARKER + data
        self.datagrams.append(ev.Datagram(data, local, remote))

    @staticmethod
    def header(sa: IkeSa, exchange: int, message_id: int, response: bool) -> IkeHeader:
        flags = (FLAG_INITIATOR if sa.initiator else 0) | (FLAG_RESPONSE if response else 0)
        return IkeHeader(sa.spi_i, sa.spi_r, 0, exchange, message_id, flags)

    def protect(
        self, sa: IkeSa, header: IkeHeader, payloads: Sequence[Payload]
    ) -> tuple[bytes, ...]:
        """One SK message, or SKF fragments when both sides support RFC 7383 and it is big."""
        assert sa.sk_out is not None
        self.trace("sending", sa, header, payloads)
        if not sa.fragmentation:
            return (build_protected(header, payloads, sa.sk_out),)
        version = 6 if ":" in sa.remote[0] else 4
        limit = ike_payload_limit(self.settings.fragment_size, version)
        marker = 4 if NAT_T_PORT in (sa.local[1], sa.remote[1]) else 0
        return tuple(fragment_message(header, payloads, sa.sk_out, limit, marker))

    def unprotect(
        self,
        sa: IkeSa,
        data: bytes,
        message: Message,
        expected_id: int,
        response: bool,
        now: float,
    ) -> tuple[Payload, ...] | None:
        """Payloads of an SK message, or of a reassembled SKF message (None: more to come).

        Raises CryptoError (integrity) or DecodeError (malformed inner payloads).
        """
        assert sa.sk_in is not None
        last = message.payloads[-1]
        if isinstance(last, SK):
            payloads = open_protected(data, message, sa.sk_in)
        else:
            reassembler = sa.reassembly(response)
            result = reassembler.add(data, message, sa.sk_in, now, expected_message_id=expected_id)
            if result is None:
                return None
            payloads = result[1]
        self.trace("received", sa, message.header, payloads)
        return payloads

    def plain(self, sa: IkeSa | None, header: IkeHeader, payloads: Sequence[Payload]) -> bytes:
        """An unprotected message (IKE_SA_INIT, or an error reply outside any SA)."""
        self.trace("sending", sa, header, payloads)
        return build_plain(header, payloads)

    def trace(
        self, verb: str, sa: IkeSa | None, header: IkeHeader, payloads: Sequence[Payload]
    ) -> None:
        """Log a message at level 2 and count it (once per message, never per fragment)."""
        trace(verb, sa, header, payloads)
        conn = sa.connection.name if sa is not None and sa.connection is not None else None
        self.messages.count(header, verb == "received", conn)

    def respond(self, sa: IkeSa, request: IkeHeader, payloads: Sequence[Payload]) -> None:
        assert sa.sk_out is not None
        header = self.header(sa, int(request.exchange), request.message_id, response=True)
        data = self.protect(sa, header, payloads)
        sa.last_response = (request.message_id, data)
        self.send(sa, data, sa.request_path)  # §2.11: where it came from, followed or not

    # ---------------------------------------------------------------- requests and tasks

    def request(self, sa: IkeSa, task: Task, payloads: Sequence[Payload], now: float) -> None:
        """Send ``task``'s request under the next message ID; it is now outstanding."""
        data: tuple[bytes, ...]
        if task.exchange == ExchangeType.IKE_SA_INIT:  # unprotected, message ID 0 (§1.2)
            header = IkeHeader(sa.spi_i, ZERO_SPI, 0, task.exchange, 0, FLAG_INITIATOR)
            data = (self.plain(sa, header, payloads),)
            sa.init_request = data[0]
            sa.next_request_id = 1
            message_id = 0
        else:
            assert sa.sk_out is not None
            message_id = sa.next_request_id
            sa.next_request_id += 1
            header = self.header(sa, task.exchange, message_id, response=False)
            data = self.protect(sa, header, payloads)
        sa.outstanding = Outstanding(message_id, data, task, now, now + self.backoff(1))
        self.send(sa, data)
        sa.outstanding.give_up_at = task.give_up_at(sa, now)

    def run(self, sa: IkeSa, task: Task, now: float) -> bool:
        """Start ``task`` now (the window must be free); False if it had nothing to do."""
        payloads = task.build_request(self, sa, now)
        if payloads is None or sa.state is IkeState.DEAD:
            return False
        self.request(sa, task, payloads, now)
        return True

    def queue(self, sa: IkeSa, task: Task, now: float) -> None:
        """Run ``task`` now if no request is outstanding, else when the window opens."""
        if sa.outstanding is None and sa.awaiting_crls is None:
            self.run(sa, task, now)
        else:
            sa.tasks.append(task)

    def kick(self, sa: IkeSa, now: float) -> None:
        """The window is free: start the queued tasks until one sends a request."""
        while (
            sa.state is not IkeState.DEAD
            and sa.outstanding is None
            and sa.awaiting_crls is None  # an IKE_AUTH response parked for CRL fetching
            and sa.tasks
        ):
            self.run(sa, sa.tasks.popleft(), now)

    # ---------------------------------------------------------------- failures and teardown

    def fail(self, sa: IkeSa, notify: int, detail: str, received: bool) -> None:
        self.events.append(ev.NegotiationFailed(sa.ike_id, sa.name, notify, detail, received))
        log.warning(
            "IKE SA %d (%s): %s %s: %s",
            sa.ike_id,
            sa.name,
            "received" if received else "sending",
            name_of(notify, NotifyType),
            detail,
        )

    def destroy(
        self,
        sa: IkeSa,
        reason: str,
        notify_up: bool = True,
        dead_peer: bool = False,
        by_peer: bool = False,
    ) -> None:
        """Forget an IKE SA and its Child SAs; then act per dpd_action / close_action /
        keyingtries on what was lost."""
        if sa.state is IkeState.DEAD:
            return
        was_established = sa.established_at is not None
        lost = [c.config for c in sa.children.values() if c.replacement is None]
        for child in list(sa.children.values()):
            self.child_down(sa, child, reason)
        sa.state = IkeState.DEAD
        sa.outstanding = None
        sa.tasks.clear()
        sa.timers.clear()
        if sa.keys is not None:  # SK_* zeroed; the keyed SK ciphers let go (crypto.secrets)
            sa.keys.wipe()
        sa.sk_in = sa.sk_out = None
        for name, address in sa.remote_vips:  # leases go offline, kept for the same peer
            pool = self.pools.get(name)
            if pool is not None:
                pool.release(sa.remote_id, ipaddress.ip_address(address))
        sa.remote_vips = ()
        self.sas.pop(sa.ike_id, None)
        self.by_spi.pop((sa.spi_i, sa.spi_r), None)
        self.by_initiator_spi.pop(sa.spi_i, None)
        self.half_open.pop((sa.spi_i, sa.remote[0], sa.remote[1]), None)
        if sa.rekeyed_to is None and (was_established or notify_up):
            self.events.append(ev.IkeSaDown(sa.ike_id, sa.name, reason))
        log.info("IKE SA %d (%s) down: %s", sa.ike_id, sa.name, reason)
        conn = sa.connection
        if conn is None or sa.rekeyed_to is not None or reason in ("deleted by us",):
            return
        if not was_established and sa.initiator:
            self.retry_initiation(sa, reason, self.now)
            return
        if dead_peer or by_peer:
            self.on_lost(sa, lost, dead_peer)

    def retry_initiation(self, sa: IkeSa, reason: str, now: float) -> None:
        """keyingtries: try again with back-off (0 = forever), strongSwan's semantics."""
        conn = sa.connection
        if conn is None or sa.reauth_of is not None:
            return
        tries = conn.keyingtries
        if tries != 0 and sa.attempt >= tries:
            return
        delay = min(2.0 ** (sa.attempt - 1), 60.0)
        log.info(
            "IKE SA %s: initiation failed (%s), try %d in %.0f s",
            conn.name,
            reason,
            sa.attempt + 1,
            delay,
            extra={"petrel_sa": (conn.name, sa.ike_id)},
        )
        self.retries.append(
            (now + delay, conn.name, sa.initial_child, sa.local, sa.remote, sa.attempt + 1)
        )

    def child_down(
        self, sa: IkeSa, child: ChildSa, reason: str, linger: float = 0.0, hold: float = 0.0
    ) -> None:
        sa.children.pop(child.child_id, None)
        for key in TimerKey.of_child(child.child_id):
            sa.timers.pop(key, None)
        # A rekeyed SA gone: its replacement may now send (responder side, §2.8).
        for successor_id in (child.replacement, child.peer_rekey):
            successor = sa.children.get(successor_id) if successor_id is not None else None
            if successor is not None and not successor.outbound_active:
                successor.outbound_active = True
                self.events.append(ev.ChildSaActivated(sa.ike_id, successor.child_id))
        successor_id = child.replacement or child.peer_rekey
        if reason == "rekeyed" and successor_id is not None:
            self.events.append(
                ev.ChildSaRekeyed(sa.ike_id, child.child_id, successor_id, child.config.name)
            )
        self.events.append(
            ev.ChildSaDown(
                sa.ike_id,
                child.child_id,
                child.config.name,
                child.spi_in,
                child.spi_out,
                reason,
                linger,
                hold,
            )
        )
        log.info(
            "CHILD_SA %s{%d} down (%s), SPIs %08x_i %08x_o",
            child.config.name,
            child.child_id,
            reason,
            child.spi_in,
            child.spi_out,
            extra={"petrel_sa": (sa.name, sa.ike_id)},  # the SA no longer lists this child
        )

    # ---------------------------------------------------------------- Child SAs

    def install_child(
        self,
        sa: IkeSa,
        config: ChildConfig,
        spi_in: int,
        spi_out: int,
        chosen: Proposal,
        local_ts: tuple[Selector, ...],
        remote_ts: tuple[Selector, ...],
        now: float,
        announce: bool = True,
        *,
        we_initiated: bool,
        ni: bytes,
        nr: bytes,
        shared: bytes = b"",
        outbound_active: bool = True,
    ) -> ChildSa:
        algorithms = algorithms_of(chosen)
        child = ChildSa(
            self._next_child_id,
            config,
            spi_in,
            spi_out,
            algorithms,
            local_ts,
            remote_ts,
            now,
            we_initiated,
            ni,
            nr,
            shared,
            outbound_active=outbound_active,
        )
        self._next_child_id += 1
        sa.children[child.child_id] = child
        self.arm_child_timers(sa, child, now)
        if announce:
            self.announce_child(sa, child)
        return child

    def arm_child_timers(self, sa: IkeSa, child: ChildSa, now: float) -> None:
        """rekey_time minus a random share of rand_time, and the hard life_time (§2.8)."""
        cfg = child.config
        if cfg.rekey_time > 0:
            jitter = self.jitter(cfg.rand_time)
            sa.timers[TimerKey.rekey_child(child.child_id)] = now + max(
                cfg.rekey_time - jitter, 1.0
            )
        if cfg.life_time > 0:
            sa.timers[TimerKey.expire_child(child.child_id)] = now + cfg.life_time

    def announce_child(self, sa: IkeSa, child: ChildSa) -> None:
        """Derive the Child SA keys (§2.17) and report it for installation."""
        self.events.append(child_sa_up(sa, child))
        log.info(
            "CHILD_SA %s{%d} established with SPIs %08x_i %08x_o, %s, TS %s === %s",
            child.config.name,
            child.child_id,
            child.spi_in,
            child.spi_out,
            child.algorithms.describe(),
            " ".join(map(str, child.local_ts)),
            " ".join(map(str, child.remote_ts)),
        )

    # ---------------------------------------------------------------- IKE SAs

    def arm_ike_timers(self, sa: IkeSa, now: float) -> None:
        """Timers of an IKE SA: rekey (rekey_time less a random share of rand_time), reauth,
        and DPD (§2.4)."""
        conn = sa.connection
        if conn is None:
            return
        if conn.rekey_time > 0:
            sa.timers[REKEY_IKE] = now + max(conn.rekey_time - self.jitter(conn.rand_time), 1)
            if conn.over_time > 0:  # hard lifetime: rekey_time + over_time (swanctl.conf)
                sa.timers[EXPIRE_IKE] = now + conn.rekey_time + conn.over_time
        if conn.reauth_time > 0 and sa.initiator:
            sa.timers[REAUTH] = now + max(conn.reauth_time - self.jitter(conn.rand_time), 1)
        if conn.dpd_delay > 0:
            sa.timers[DPD] = now + conn.dpd_delay

    def follow_peer(
        self, sa: IkeSa, local: ev.Address, remote: ev.Address, force: bool = False
    ) -> None:
        """An authentic message came from ``remote`` to ``local``: move the IKE SA there when
        §2.23 says so.  ``force`` (before authentication completes) takes both addresses: the
        peer floats to port 4500 in IKE_AUTH, which alone is no NAT (NAT-D decided that).
        Otherwise only the peer's address is followed, and only per :meth:`follows_peer`;
        with MOBIKE agreed, never (RFC 4555 §3.8: UPDATE_SA_ADDRESSES moves the SA)."""
        if (local, remote) == (sa.local, sa.remote) or sa.mobike:
            return
        if not force:
            if remote == sa.remote or not self.follows_peer(sa):
                return
            local = sa.local
        self.move(sa, local, remote)

    def follow_esp(self, sa: IkeSa, remote: ev.Address, now: float) -> None:
        """Authentic UDP-encapsulated ESP came from ``remote``: a new NAT mapping, which the
        IKE SA and its Child SAs follow per :meth:`follows_peer`, MOBIKE or not (RFC 4555
        §3.8 allows it for ESP; charon follows XFRM's mapping events so).  Otherwise
        nothing changes, silently: this is called per such packet."""
        if remote == sa.remote or not self.follows_peer(sa):
            return
        log.info("IKE SA %d: peer's NAT mapping moved to %s:%d", sa.ike_id, *remote)
        self.move(sa, sa.local, remote)
        sa.last_peer_activity = max(sa.last_peer_activity, now)

    @staticmethod
    def follows_peer(sa: IkeSa) -> bool:
        """§2.23: the host not behind a NAT follows a peer that is behind one to its latest
        address (a new NAT mapping).  When both are, only a responder does, taking its own NAT
        for a static one (as charon does); the original initiator never does."""
        return sa.nat_remote and not (sa.nat_local and sa.original_initiator)

    def move(self, sa: IkeSa, local: ev.Address, remote: ev.Address) -> None:
        """The IKE SA, and through the event its Child SAs, now use ``local`` ↔ ``remote``."""
        if (local, remote) == (sa.local, sa.remote):
            return
        sa.local, sa.remote = local, remote
        self.events.append(ev.IkeSaUpdated(sa.ike_id, local, remote, sa.encap))

    # ---------------------------------------------------------------- identities

    def local_identity(self, conn: Connection, local: ev.Address) -> Identity:
        return self.auth.local_identity(conn, local[0])

    @staticmethod
    def remote_identity(conn: Connection) -> Identity | None:
        return conn.remote.id

    @staticmethod
    def resolve(selectors: Sequence[Selector], address: str) -> tuple[Selector, ...]:
        """Replace 'dynamic' selectors with the host's own address (swanctl.conf semantics)."""
        return resolve_dynamic(selectors, address)


def trace(verb: str, sa: IkeSa | None, header: IkeHeader, payloads: Sequence[Payload]) -> None:
    """Every message in and out at level 2 (charon's "parsed"/"generating" lines): payload
    types only, never their contents."""
    if log.isEnabledFor(logging.DEBUG):
        who = f"IKE SA {sa.ike_id}" if sa is not None else "IKE"
        log.debug("%s: %s %s", who, verb, message_summary(header, payloads))
