"""The IKEv2 engine (RFC 7296), sans-I/O.

Inputs: datagrams (``receive``), the clock (``handle_timer``) and commands (``initiate``,
``terminate``).  Outputs: datagrams to send (``take_datagrams``), events (``take_events``) and the
next deadline (``next_timer``).  The host owns sockets and clocks; nothing here blocks.

The engine demultiplexes by SPI, checks message IDs (window size 1, §2.3), retransmits with
exponential back-off (§2.1), answers retransmitted requests from its cache, reassembles
fragments (RFC 7383), and hands each exchange to its task: the initiator tasks queued on an IKE
SA (:mod:`~petrel.ike.task`) and one responder per request of the peer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from ..credentials.store import CredentialStore
from ..crypto.errors import CryptoError
from ..crypto.ke import KeyExchanges
from ..policy.connection import ChildConfig, Connection, SharedSecret
from ..policy.pools import AddressPool, PoolConfig
from ..ratelimit import DropLog
from ..wire.codec import decode_message
from ..wire.errors import DecodeError
from ..wire.payloads import SK, SKF, Message
from ..wire.registry import ExchangeType, name_of
from . import events as ev
from .admission import Admission, is_init_request
from .auth.exchange import IkeAuth as Authenticators
from .child_create import ChildCreate, ChildCreateResponder, create_child
from .child_delete import delete_child
from .child_rekey import ChildRekeyResponder, is_child_rekey, rekey_child
from .cookies import CookieJar
from .counters import MessageCounters
from .crl_wait import answer, crl_fetched, crl_wait_expired, handle_response, parked_request
from .duplicates import answer_retransmitted_request
from .ike_auth import IkeAuth, IkeAuthResponder
from .ike_delete import delete_ike
from .ike_init import IkeInit, respond_init
from .ike_rekey import IkeRekey, IkeRekeyResponder, is_ike_rekey
from .informational import InformationalResponder
from .liveness import check_liveness
from .negotiation import first_ke_group
from .retransmit import outstanding_deadlines, retransmit_or_give_up
from .roaming import roam
from .sa import ChildSa, ChildState, IkeSa, IkeState
from .services import NAT_T_PORT, ZERO_SPI, EngineSettings, IkeServices
from .stray import (
    ReplyBudget,
    answer_unknown_spi,
    error_notify,
    only_invalid_ike_spi,
    reject_malformed,
)
from .task import Responder
from .timers import REKEY_IKE, TimerKey, TimerKind

__all__ = ["NAT_T_PORT", "EngineSettings", "IkeEngine"]

log = logging.getLogger("petrel.ike")


class IkeEngine:
    """All IKE SAs of one daemon."""

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
        """``random`` feeds SPIs, nonces, IVs and jitter; ``key_exchanges`` makes the KE
        private values (the library's key generation unless a test seeds its own); ``pools``
        are the virtual IP pools connections hand out."""
        self._ctx = IkeServices(
            connections, secrets, settings, random, credentials, clock, key_exchanges, pools
        )
        self._ctx.on_lost = self._after_loss
        self._cookie_secret = random(32)
        self._stray_budget = ReplyBudget()  # INVALID_IKE_SPI answers (§2.21.4)
        s = self._ctx.settings
        jar = CookieJar(random, s.cookie_lifetime, s.cookie_secret_lifetime)
        self.admission = Admission(s, jar, self._ctx.source)

    @property
    def connections(self) -> dict[str, Connection]:
        return self._ctx.connections

    @property
    def settings(self) -> EngineSettings:
        return self._ctx.settings

    @property
    def auth(self) -> Authenticators:
        return self._ctx.auth

    @property
    def drops(self) -> DropLog:
        return self._ctx.drops

    @property
    def messages(self) -> MessageCounters:
        """IKE messages sent and received by exchange (charon's counter names)."""
        return self._ctx.messages

    # ------------------------------------------------------------------ host interface

    @property
    def pools(self) -> dict[str, AddressPool]:
        """The virtual IP pools, by name (their leases included)."""
        return self._ctx.pools

    def load_pool(self, config: PoolConfig) -> str | None:
        """Add or update a pool (VICI ``load-pool``); an error when its range changed while
        addresses of it are leased to peers online."""
        old = self._ctx.pools.get(config.name)
        if old is None:
            self._ctx.pools[config.name] = AddressPool(config)
        elif (old.config.first, old.config.last) == (config.first, config.last):
            old.config = config  # new attributes; the leases stay
        elif old.online:
            return f"pool '{config.name}' has leases online, its range cannot change"
        else:
            self._ctx.pools[config.name] = AddressPool(config)
        return None

    def unload_pool(self, name: str) -> str | None:
        """Remove a pool (VICI ``unload-pool``) unless addresses of it are leased online."""
        pool = self._ctx.pools.get(name)
        if pool is None:
            return f"pool '{name}' not found"
        if pool.online:
            return f"pool '{name}' has leases online"
        del self._ctx.pools[name]
        return None

    def take_datagrams(self) -> list[ev.Datagram]:
        out, self._ctx.datagrams = self._ctx.datagrams, []
        return out

    def take_events(self) -> list[ev.Event]:
        out, self._ctx.events = self._ctx.events, []
        return out

    def ike_sas(self) -> list[IkeSa]:
        return [sa for sa in self._ctx.sas.values() if sa.state is not IkeState.DEAD]

    def child_sas(self) -> list[tuple[IkeSa, ChildSa]]:
        return [(sa, c) for sa in self.ike_sas() for c in sa.children.values()]

    def find_ike_sa(self, conn_name: str) -> IkeSa | None:
        """An established (or establishing) IKE SA of ``conn_name``, newest first."""
        for sa in sorted(self.ike_sas(), key=lambda s: -s.ike_id):
            if (
                sa.name == conn_name
                and sa.rekeyed_to is None
                and sa.state in (IkeState.ESTABLISHED, IkeState.INIT_SENT, IkeState.AUTH_SENT)
            ):
                return sa
        return None

    def next_timer(self) -> float | None:
        deadlines = [retry[0] for retry in self._ctx.retries]
        oldest = self._ctx.half_open.oldest()
        if oldest is not None:
            deadlines.append(oldest.created_at + self.settings.half_open_timeout)
        for sa in self._settled():
            deadlines.extend(outstanding_deadlines(sa))
            if sa.state is IkeState.INIT_DONE:
                deadlines.append(sa.created_at + self.settings.half_open_timeout)
            deadlines.extend(sa.timers.values())
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        ctx = self._ctx
        ctx.now = now
        for retry in [r for r in ctx.retries if r[0] <= now]:
            ctx.retries.remove(retry)
            _at, conn_name, child_name, local, remote, tries = retry
            if conn_name in self.connections:
                self._initiate(conn_name, child_name, local, remote, now, tries)
        for sa in ctx.half_open.values():  # oldest first
            if not self._half_open_expired(sa, now):
                break
        for sa in self._settled():
            if sa.state is IkeState.INIT_DONE and self._half_open_expired(sa, now):
                continue
            for key, deadline in sorted(sa.timers.items(), key=lambda item: item[1]):
                if deadline <= now and sa.timers.get(key) == deadline:
                    del sa.timers[key]
                    self._sa_timer(sa, key, now)
            retransmit_or_give_up(ctx, sa, now)

    def _half_open_expired(self, sa: IkeSa, now: float) -> bool:
        """Drop an SA half-open past ``half_open_timeout`` (counted against its host)."""
        if now < sa.created_at + self.settings.half_open_timeout:
            return False
        log.info("IKE SA %d: half-open for too long, dropped", sa.ike_id)
        self.admission.timed_out(sa.remote[0], now)
        self._ctx.destroy(sa, "half-open timeout", notify_up=False)
        return True

    def _settled(self) -> list[IkeSa]:
        """The IKE SAs other than the responder's half-open ones (which have no timers but
        the half-open timeout, kept in creation order by the table): under a flood these
        are few, and the timers need not walk thousands of half-open SAs."""
        sas, half = self._ctx.sas, self._ctx.half_open.ids
        if not half:
            return list(sas.values())
        return [sas[i] for i in sorted(sas.keys() - half)]

    def _sa_timer(self, sa: IkeSa, key: TimerKey, now: float) -> None:
        """One of an SA's timers fired."""
        kind = key.kind
        if kind is TimerKind.DPD:
            check_liveness(self._ctx, sa, now)
        elif kind is TimerKind.REKEY_IKE:
            if not self.rekey_ike(sa.ike_id, now):
                sa.timers[REKEY_IKE] = now + 5.0
        elif kind is TimerKind.EXPIRE_IKE:
            log.info("IKE SA %s[%d] reached its hard lifetime", sa.name, sa.ike_id)
            self.terminate(sa.ike_id, now)
        elif kind is TimerKind.REAUTH:
            self._reauthenticate(sa, now)
        elif kind is TimerKind.REKEY_CHILD:
            child = sa.children.get(key.child_id) if key.child_id is not None else None
            if child is not None and child.state == ChildState.INSTALLED:
                self.rekey_child(sa.ike_id, child.child_id, now)
        elif kind is TimerKind.EXPIRE_CHILD:
            child = sa.children.get(key.child_id) if key.child_id is not None else None
            if child is not None:
                log.info("CHILD_SA %s{%d} reached its life_time", child.config.name, child.child_id)
                delete_child(self._ctx, sa, child, now, "life_time expired")
        elif kind is TimerKind.CRL_WAIT:
            crl_wait_expired(self._ctx, sa, now)
        elif kind is TimerKind.CREATE_CHILD and sa.connection is not None:
            assert key.child_name is not None
            self.create_child(sa.ike_id, key.child_name, now)

    def peer_moved(self, ike_id: int, remote: ev.Address, now: float) -> None:
        """Authentic UDP-encapsulated ESP came from ``remote``, not the peer's known address
        (called per such packet): see :meth:`IkeServices.follow_esp`."""
        sa = self._ctx.sas.get(ike_id)
        if sa is not None:
            self._ctx.follow_esp(sa, remote, now)

    def peer_activity(self, ike_id: int, now: float) -> None:
        """The host saw authentic ESP for this IKE SA's children: no DPD needed yet."""
        sa = self._ctx.sas.get(ike_id)
        if sa is not None:
            sa.last_peer_activity = max(sa.last_peer_activity, now)

    def roam(self, ike_id: int, address: str, now: float) -> bool:
        """Our source address towards the peer is now ``address`` (the host saw its
        addresses or routes change): MOBIKE moves the IKE SA there, :func:`roaming.roam`."""
        sa = self._ctx.sas.get(ike_id)
        return sa is not None and roam(self._ctx, sa, address, now)

    # ------------------------------------------------------------------ commands

    def initiate(
        self,
        conn_name: str,
        child_name: str | None,
        local: ev.Address,
        remote: ev.Address,
        now: float,
    ) -> int:
        """Bring up ``child_name`` of ``conn_name``: on the connection's established IKE SA
        with CREATE_CHILD_SA, else with a new IKE SA.  Returns the IKE SA's id."""
        self._ctx.now = now
        conn = self.connections[conn_name]
        if child_name is not None and child_name not in conn.children:
            raise KeyError(f"connection {conn_name!r} has no child {child_name!r}")
        existing = self.find_ike_sa(conn_name)
        if existing is not None and existing.state is IkeState.ESTABLISHED:
            if child_name is not None:
                self.create_child(existing.ike_id, child_name, now)
            return existing.ike_id
        if existing is not None:  # still connecting: the child follows once it is up
            queued = {t.config.name for t in existing.tasks if type(t) is ChildCreate}
            if child_name is not None and child_name not in (existing.initial_child, *queued):
                existing.tasks.append(ChildCreate(conn.children[child_name]))
            return existing.ike_id
        return self._initiate(conn_name, child_name, local, remote, now, 1)

    def _initiate(
        self,
        conn_name: str,
        child_name: str | None,
        local: ev.Address,
        remote: ev.Address,
        now: float,
        attempt: int,
        reauth_of: int | None = None,
        more_children: Sequence[str] = (),
    ) -> int:
        """A new IKE SA: IKE_SA_INIT, then IKE_AUTH with ``child_name``, then CREATE_CHILD_SA
        for each of ``more_children`` (tasks queued on the SA, run once it is established)."""
        ctx = self._ctx
        conn = self.connections[conn_name]
        sa = IkeSa(
            ike_id=ctx.new_ike_id(),
            initiator=True,
            spi_i=ctx.new_ike_spi(),
            spi_r=ZERO_SPI,
            local=local,
            remote=remote,
            state=IkeState.INIT_SENT,
            created_at=now,
            connection=conn,
            initial_child=child_name,
            nat_fake=conn.encap,
            original_initiator=True,
        )
        sa.attempt = attempt
        sa.reauth_of = reauth_of
        group = first_ke_group(conn.proposals)
        if group is None:
            raise ValueError(f"connection {conn_name!r}: IKE proposals without a key exchange")
        sa.ke_group = int(group)
        sa.ni = ctx.nonce()
        ctx.sas[sa.ike_id] = sa
        ctx.by_initiator_spi[sa.spi_i] = sa
        log.info("IKE SA %d (%s): initiating to %s:%d", sa.ike_id, conn.name, *remote)
        sa.tasks.append(IkeAuth())  # follows IKE_SA_INIT
        sa.tasks.extend(ChildCreate(conn.children[name]) for name in more_children)
        ctx.run(sa, IkeInit(), now)
        return sa.ike_id

    def terminate(self, ike_id: int, now: float) -> bool:
        """Delete an IKE SA with the peer (INFORMATIONAL with Delete, §1.4.1)."""
        self._ctx.now = now
        sa = self._ctx.sas.get(ike_id)
        if sa is None or sa.state is IkeState.DEAD:
            return False
        if sa.state is not IkeState.ESTABLISHED:
            self._ctx.destroy(sa, "terminated locally")
            return True
        delete_ike(self._ctx, sa, now, "deleted by us")
        return True

    def terminate_all(self, now: float) -> None:
        for sa in list(self._ctx.sas.values()):
            self.terminate(sa.ike_id, now)

    def create_child(self, ike_id: int, child_name: str, now: float) -> bool:
        """Negotiate another Child SA for ``child_name`` on an established IKE SA (§1.3.1)."""
        self._ctx.now = now
        sa = self._ctx.sas.get(ike_id)
        return sa is not None and create_child(self._ctx, sa, child_name, now)

    def rekey_child(self, ike_id: int, child_id: int, now: float) -> bool:
        """Rekey a Child SA (§1.3.3): new SA first, then delete the old one."""
        self._ctx.now = now
        sa = self._ctx.sas.get(ike_id)
        child = sa.children.get(child_id) if sa else None
        return sa is not None and child is not None and rekey_child(self._ctx, sa, child, now)

    def delete_child(self, ike_id: int, child_id: int, now: float) -> bool:
        """Delete a Child SA with the peer (INFORMATIONAL with Delete, §1.4.1)."""
        self._ctx.now = now
        sa = self._ctx.sas.get(ike_id)
        child = sa.children.get(child_id) if sa else None
        if sa is None or child is None or child.state == ChildState.DELETING:
            return False
        delete_child(self._ctx, sa, child, now, "deleted by us")
        return True

    def rekey_ike(self, ike_id: int, now: float) -> bool:
        """Rekey the IKE SA (§1.3.2); False if it cannot be now."""
        self._ctx.now = now
        sa = self._ctx.sas.get(ike_id)
        if sa is None or sa.state is not IkeState.ESTABLISHED or sa.rekeying_ike:
            return False
        self._ctx.queue(sa, IkeRekey(), now)
        return True

    def reauthenticate(self, ike_id: int, now: float) -> None:
        self._ctx.now = now
        sa = self._ctx.sas.get(ike_id)
        if sa is not None:
            self._reauthenticate(sa, now)

    def _reauthenticate(self, sa: IkeSa, now: float) -> None:
        """Make-before-break reauthentication: a new IKE SA, then the old one is deleted."""
        conn = sa.connection
        if conn is None or sa.state is not IkeState.ESTABLISHED:
            return
        children = [c.config.name for c in sa.children.values() if c.state != ChildState.DELETING]
        log.info("IKE SA %s[%d]: reauthenticating", conn.name, sa.ike_id)
        self._initiate(
            conn.name,
            children[0] if children else None,
            sa.local,
            sa.remote,
            now,
            1,
            reauth_of=sa.ike_id,
            more_children=children[1:],
        )

    def _after_loss(self, sa: IkeSa, lost: list[ChildConfig], dead_peer: bool) -> None:
        """dpd_action after a dead peer, close_action after the peer closed (§ swanctl.conf)."""
        conn = sa.connection
        assert conn is not None
        restart: list[str] = []
        for config in lost:
            action = config.dpd_action if dead_peer else config.close_action
            if action in ("restart", "start"):
                restart.append(config.name)
            elif action == "trap":
                self._ctx.events.append(ev.TrapRequested(conn.name, config.name))
        if restart:
            log.info(
                "IKE SA %s: %s, restarting %s",
                conn.name,
                "peer dead" if dead_peer else "closed by peer",
                ", ".join(restart),
                extra={"petrel_sa": (conn.name, sa.ike_id)},
            )
            now = self._ctx.now
            self._initiate(
                conn.name, restart[0], sa.local, sa.remote, now, 1, more_children=restart[1:]
            )

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes, local: ev.Address, remote: ev.Address, now: float) -> None:
        """Process one IKE message (without the non-ESP marker) received on ``local``."""
        ctx = self._ctx
        ctx.now = now
        if is_init_request(data) and not self.admission.screen(ctx, data, local, remote, now):
            return  # dropped or answered with a COOKIE, before any decoding (§2.6)
        try:
            message = decode_message(data)
        except DecodeError as exc:
            reject_malformed(ctx, data, exc, local, remote, now)
            return
        header = message.header
        if header.exchange == ExchangeType.IKE_SA_INIT:
            ctx.trace("received", None, header, message.payloads)
            if header.is_response:
                self._init_response(data, message, now)
            else:
                respond_init(ctx, data, message, local, remote, now)
            return
        sa = ctx.by_spi.get((header.spi_i, header.spi_r))
        if sa is None:
            answer_unknown_spi(ctx, self._stray_budget, message, local, remote, now)
            return
        if header.is_initiator == sa.initiator:
            ctx.drops.drop("initiator flag does not match our role", now)
            return
        if header.is_response:
            self._response(sa, data, message, local, remote, now)
        else:
            self._request_received(sa, data, message, local, remote, now)

    def _init_response(self, data: bytes, message: Message, now: float) -> None:
        ctx = self._ctx
        header = message.header
        sa = ctx.by_initiator_spi.get(header.spi_i)
        task = sa.outstanding.task if sa is not None and sa.outstanding is not None else None
        if (
            sa is None
            or sa.state is not IkeState.INIT_SENT
            or header.message_id != 0
            or not isinstance(task, IkeInit)
        ):
            ctx.drops.drop("unexpected IKE_SA_INIT response", now)
            return
        if task.process_init_response(ctx, sa, data, message, now):
            ctx.run(sa, task, now)
        ctx.kick(sa, now)

    def _request_received(
        self,
        sa: IkeSa,
        data: bytes,
        message: Message,
        local: ev.Address,
        remote: ev.Address,
        now: float,
    ) -> None:
        ctx = self._ctx
        header = message.header
        last = message.payloads[-1] if message.payloads else None
        if parked_request(sa, header):
            # Its answer waits for a CRL fetch: never processed twice, never fetched twice.
            ctx.drops.drop("retransmitted request awaiting a CRL fetch", now)
            return
        if header.message_id == sa.expected_peer_id - 1 and sa.last_response is not None:
            answer_retransmitted_request(ctx, sa, data, message, local, remote)
            return
        if header.message_id != sa.expected_peer_id:
            ctx.drops.drop(
                "request with an unexpected message ID",
                now,
                f"{header.message_id} != {sa.expected_peer_id}",
            )
            return
        if not isinstance(last, SK | SKF) or (isinstance(last, SKF) and not sa.fragmentation):
            ctx.drops.drop("request without an SK payload", now)
            return
        assert sa.sk_in is not None
        try:
            payloads = ctx.unprotect(sa, data, message, header.message_id, False, now)
            if payloads is None:
                return  # more fragments to come (RFC 7383 §2.6)
        except CryptoError as exc:
            ctx.drops.drop("integrity check failed", now, f"IKE SA {sa.ike_id}: {exc}")
            return
        except DecodeError as exc:
            ctx.drops.drop("malformed protected payloads", now, exc.detail)
            sa.request_path = (local, remote)
            ctx.respond(sa, header, [error_notify(exc)])
            sa.expected_peer_id += 1
            return
        sa.expected_peer_id += 1
        sa.last_peer_activity = now
        sa.request_path = (local, remote)
        ctx.follow_peer(sa, local, remote, force=sa.established_at is None)
        exchange = header.exchange
        responder: Responder
        if exchange == ExchangeType.IKE_AUTH and sa.state is IkeState.INIT_DONE:
            self.admission.completed(remote[0])
            responder = IkeAuthResponder()
        elif exchange == ExchangeType.INFORMATIONAL and sa.state in (
            IkeState.ESTABLISHED,
            IkeState.DELETING,
            IkeState.AUTH_SENT,
        ):
            responder = InformationalResponder(local, remote)
        elif exchange == ExchangeType.CREATE_CHILD_SA and sa.state is IkeState.ESTABLISHED:
            if is_ike_rekey(payloads):
                responder = IkeRekeyResponder()
            elif is_child_rekey(payloads):
                responder = ChildRekeyResponder()
            else:
                responder = ChildCreateResponder()
        else:
            ctx.drops.drop(
                "request not valid in this state",
                now,
                f"{name_of(exchange, ExchangeType)} in {sa.state.label}",
            )
            sa.expected_peer_id -= 1
            return
        answer(ctx, sa, responder, header, payloads, now)

    def _response(
        self,
        sa: IkeSa,
        data: bytes,
        message: Message,
        local: ev.Address,
        remote: ev.Address,
        now: float,
    ) -> None:
        ctx = self._ctx
        pending = sa.outstanding
        if pending is None or message.header.message_id != pending.message_id:
            ctx.drops.drop("response without a matching request", now)
            return
        last = message.payloads[-1] if message.payloads else None
        if not isinstance(last, SK | SKF) or (isinstance(last, SKF) and not sa.fragmentation):
            if pending.deletes_ike and only_invalid_ike_spi(message):
                # §2.21.4: not authentic, but it can only end a deletion we started anyway:
                # the peer has forgotten the SA (the response to our Delete was lost).
                log.info("IKE SA %d: peer no longer knows it (INVALID_IKE_SPI)", sa.ike_id)
                sa.outstanding = None
                pending.task.process_response(ctx, sa, message, (), now)
                return
            ctx.drops.drop("response without an SK payload", now)
            return
        if message.header.exchange != pending.task.exchange:  # §3.1: same exchange type
            ctx.drops.drop(
                "response of another exchange type",
                now,
                f"{name_of(message.header.exchange, ExchangeType)} answering "
                f"{name_of(pending.task.exchange, ExchangeType)} {pending.message_id}",
            )
            return
        assert sa.sk_in is not None
        try:
            payloads = ctx.unprotect(sa, data, message, pending.message_id, True, now)
            if payloads is None:
                return
        except CryptoError as exc:
            ctx.drops.drop("integrity check failed", now, f"IKE SA {sa.ike_id}: {exc}")
            return
        except DecodeError as exc:
            ctx.drops.drop("malformed protected payloads", now, exc.detail)
            return
        sa.outstanding = None
        sa.last_peer_activity = now
        ctx.follow_peer(sa, local, remote)
        handle_response(ctx, sa, pending.task, message, payloads, now)

    def crl_fetched(self, uri: str, data: bytes | None, now: float, error: str = "") -> None:
        """The host's answer to :class:`~petrel.ike.events.FetchCrl`: the CRL's bytes (PEM
        or DER), or None and why the fetch failed. Resumes the exchanges waiting for it."""
        crl_fetched(self._ctx, uri, data, now, error)
