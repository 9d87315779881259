"""The IKEv2 engine (RFC 7296), sans-I/O.

Inputs: datagrams (``receive``), the clock (``handle_timer``) and commands (``initiate``,
``terminate``).  Outputs: datagrams to send (``take_datagrams``), events (``take_events``) and the
next deadline (``next_timer``).  The host owns sockets and clocks; nothing here blocks.

Exchanges handled: IKE_SA_INIT (proposals, KE, nonces, NAT detection, COOKIE,
INVALID_KE_PAYLOAD), IKE_AUTH with PSK and the first Child SA, INFORMATIONAL (Delete, liveness,
error notifies).  Window size 1, retransmission with exponential back-off (§2.1, §2.3).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..credentials.identities import format_identity, id_match
from ..credentials.store import CredentialStore
from ..crypto.errors import CryptoError, InvalidPublicValue, UnsupportedAlgorithm
from ..crypto.kdf import child_keymat, derive_ike_keys, skeyseed, split_child_keymat
from ..crypto.ke import new_key_exchange, respond_key_exchange, supported_groups
from ..crypto.nat import nat_detection_hash
from ..crypto.proposals import format_proposal
from ..crypto.sk import SkCipher
from ..esp.udpencap import IKE_MARKER
from ..policy.connection import ChildConfig, Connection, SharedSecret
from ..policy.identity import Identity
from ..policy.selectors import Selector, all_within, resolve_dynamic
from ..ratelimit import DropLog
from ..wire.codec import decode_message
from ..wire.errors import DecodeError
from ..wire.payloads import (
    AUTH,
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    KE,
    SA,
    SK,
    SKF,
    Delete,
    IDi,
    IDr,
    IkeHeader,
    Message,
    Nonce,
    Notify,
    Payload,
    Proposal,
    TSi,
    TSr,
    first_of,
)
from ..wire.registry import (
    ExchangeType,
    KeId,
    NotifyType,
    ProtocolId,
    is_error_notify,
    name_of,
)
from ..wire.summary import message_summary
from . import events as ev
from .auth import AuthFailure
from .auth.exchange import IkeAuth, method_fits, signature_hash_notify
from .create_child import CreateChildMixin
from .fragment import (
    DEFAULT_FRAGMENT_SIZE,
    fragment_message,
    ike_payload_limit,
    open_fragment,
)
from .ike_rekey import IkeRekeyMixin
from .negotiation import (
    algorithms_of,
    first_ke_group,
    offers_group,
    proposal_accepted,
    select_proposal,
    with_spi,
    without_ke,
)
from .protect import build_plain, build_protected, open_protected
from .sa import ChildSa, IkeSa, IkeState, Outstanding, PendingChild

log = logging.getLogger("petrel.ike")

NAT_T_PORT = 4500
_ZERO_SPI = bytes(8)
_GROUP = struct.Struct(">H")
_COOKIE_VERSION = b"\x00\x01"


@dataclass(frozen=True)
class EngineSettings:
    """Tunables, with strongSwan's defaults where it has one."""

    retransmit_timeout: float = 4.0
    retransmit_base: float = 1.8
    retransmit_tries: int = 5
    half_open_timeout: float = 30.0
    cookie_threshold: int = 10  # demand a COOKIE past this many half-open SAs (§2.6)
    nonce_size: int = 32
    max_ke_retries: int = 3
    fragment_size: int = DEFAULT_FRAGMENT_SIZE  # IP datagram size for IKE fragments (RFC 7383)


class IkeEngine(CreateChildMixin, IkeRekeyMixin):
    """All IKE SAs of one daemon."""

    def __init__(
        self,
        connections: Mapping[str, Connection],
        secrets: Sequence[SharedSecret],
        settings: EngineSettings | None = None,
        random: Callable[[int], bytes] = os.urandom,
        credentials: CredentialStore | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.connections = dict(connections)
        self.secrets = tuple(secrets)
        # Authenticators and credentials (certificate validity needs the wall clock).
        self.auth = IkeAuth(self.connections.values(), self.secrets, credentials, clock)
        self.settings = settings or EngineSettings()
        self.random = random
        self.drops = DropLog(log)
        self._sas: dict[int, IkeSa] = {}
        self._by_spi: dict[tuple[bytes, bytes], IkeSa] = {}  # (SPIi, SPIr) once both known
        self._half_open: dict[tuple[bytes, str, int], IkeSa] = {}  # responder, by (SPIi, peer)
        self._by_initiator_spi: dict[bytes, IkeSa] = {}  # our SAs as initiator, by SPIi
        self._datagrams: list[ev.Datagram] = []
        self._events: list[ev.Event] = []
        self._next_ike_id = 1
        self._next_child_id = 1
        self._cookie_secret = self.random(32)
        self._announce_queue: list[int] = []
        self._now = 0.0  # the time of the input being processed
        # Initiations to retry (keyingtries, §2.1 of strongSwan's semantics): deadline and args.
        self._retries: list[tuple[float, str, str | None, ev.Address, ev.Address, int]] = []

    # ------------------------------------------------------------------ host interface

    def take_datagrams(self) -> list[ev.Datagram]:
        out, self._datagrams = self._datagrams, []
        return out

    def take_events(self) -> list[ev.Event]:
        out, self._events = self._events, []
        return out

    def ike_sas(self) -> list[IkeSa]:
        return [sa for sa in self._sas.values() if sa.state is not IkeState.DEAD]

    def next_timer(self) -> float | None:
        deadlines = [retry[0] for retry in self._retries]
        for sa in self._sas.values():
            if sa.outstanding is not None:
                deadlines.append(sa.outstanding.next_send)
                if sa.outstanding.give_up_at is not None:
                    deadlines.append(sa.outstanding.give_up_at)
            if sa.state is IkeState.INIT_DONE:
                deadlines.append(sa.created_at + self.settings.half_open_timeout)
            deadlines.extend(sa.timers.values())
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        for retry in [r for r in self._retries if r[0] <= now]:
            self._retries.remove(retry)
            _at, conn_name, child_name, local, remote, tries = retry
            if conn_name in self.connections:
                self._initiate(conn_name, child_name, local, remote, now, tries)
        for sa in list(self._sas.values()):
            if (
                sa.state is IkeState.INIT_DONE
                and now >= sa.created_at + self.settings.half_open_timeout
            ):
                log.info("IKE SA %d: half-open for too long, dropped", sa.ike_id)
                self._destroy(sa, "half-open timeout", notify_up=False)
                continue
            for name, deadline in sorted(sa.timers.items(), key=lambda item: item[1]):
                if deadline <= now and sa.timers.get(name) == deadline:
                    del sa.timers[name]
                    self._sa_timer(sa, name, now)
            pending = sa.outstanding
            if pending is None or sa.state is IkeState.DEAD:
                continue
            expired = pending.give_up_at is not None and now >= pending.give_up_at
            if now < pending.next_send and not expired:
                continue
            if pending.tries > self.settings.retransmit_tries or expired:
                log.warning(
                    "IKE SA %d (%s): giving up after %d retransmits of message %d",
                    sa.ike_id,
                    sa.name,
                    pending.tries - 1,
                    pending.message_id,
                )
                self._destroy(sa, "peer not responding", dead_peer=True)
                continue
            log.info(
                "IKE SA %d: retransmit %d of request %d",
                sa.ike_id,
                pending.tries,
                pending.message_id,
            )
            self._send(sa, pending.data)
            pending.next_send = now + self._backoff(pending.tries)
            pending.tries += 1

    def _sa_timer(self, sa: IkeSa, name: str, now: float) -> None:
        """One of an SA's named timers fired."""
        if name == "dpd":
            self._liveness_check(sa, now)
        elif name == "rekey-ike":
            if not self.rekey_ike(sa.ike_id, now):
                sa.timers["rekey-ike"] = now + 5.0
        elif name == "expire-ike":
            log.info("IKE SA %s[%d] reached its hard lifetime", sa.name, sa.ike_id)
            self.terminate(sa.ike_id, now)
        elif name == "reauth":
            self._reauthenticate(sa, now)
        elif name.startswith("rekey-child-"):
            child_id = int(name.rsplit("-", 1)[1])
            child = sa.children.get(child_id)
            if child is not None and child.state == "INSTALLED":
                self.rekey_child(sa.ike_id, child_id, now)
        elif name.startswith("expire-child-"):
            child = sa.children.get(int(name.rsplit("-", 1)[1]))
            if child is not None:
                log.info("CHILD_SA %s{%d} reached its life_time", child.config.name, child.child_id)
                self._send_child_delete(sa, child, now, "life_time expired")
        elif name.startswith("create-child-") and sa.connection is not None:
            self.create_child(sa.ike_id, name.removeprefix("create-child-"), now)

    def _arm_ike_timers(self, sa: IkeSa, now: float) -> None:
        """Timers of an IKE SA: rekey (rekey_time less a random share of rand_time), reauth,
        and DPD (§2.4)."""
        conn = sa.connection
        if conn is None:
            return
        if conn.rekey_time > 0:
            sa.timers["rekey-ike"] = now + max(conn.rekey_time - self._jitter(conn.rand_time), 1)
            if conn.over_time > 0:  # hard lifetime: rekey_time + over_time (swanctl.conf)
                sa.timers["expire-ike"] = now + conn.rekey_time + conn.over_time
        if conn.reauth_time > 0 and sa.initiator:
            sa.timers["reauth"] = now + max(conn.reauth_time - self._jitter(conn.rand_time), 1)
        if conn.dpd_delay > 0:
            sa.timers["dpd"] = now + conn.dpd_delay

    def _liveness_check(self, sa: IkeSa, now: float) -> None:
        """DPD: an empty INFORMATIONAL when the peer was silent for dpd_delay (§1.4, §2.4)."""
        conn = sa.connection
        if conn is None or conn.dpd_delay <= 0 or sa.state is not IkeState.ESTABLISHED:
            return
        quiet = now - sa.last_peer_activity
        if quiet < conn.dpd_delay or sa.outstanding is not None:
            sa.timers["dpd"] = now + max(conn.dpd_delay - quiet, 0.5)
            return

        def alive(_m: Message, _p: tuple[Payload, ...], now: float) -> None:
            sa.timers["dpd"] = now + conn.dpd_delay

        self._request(sa, ExchangeType.INFORMATIONAL, [], now, alive)
        if conn.dpd_timeout > 0 and sa.outstanding is not None:
            sa.outstanding.give_up_at = now + conn.dpd_timeout

    def peer_moved(self, ike_id: int, remote: ev.Address, now: float) -> None:
        """Authentic UDP-encapsulated ESP came from a new NAT mapping: send IKE there too."""
        sa = self._sas.get(ike_id)
        if sa is not None and sa.encap and remote != sa.remote:
            log.info("IKE SA %d: peer's NAT mapping moved to %s:%d", ike_id, *remote)
            sa.remote = remote
            sa.last_peer_activity = max(sa.last_peer_activity, now)

    def peer_activity(self, ike_id: int, now: float) -> None:
        """The host saw authentic ESP for this IKE SA's children: no DPD needed yet."""
        sa = self._sas.get(ike_id)
        if sa is not None:
            sa.last_peer_activity = max(sa.last_peer_activity, now)

    def reauthenticate(self, ike_id: int, now: float) -> None:
        self._now = now
        sa = self._sas.get(ike_id)
        if sa is not None:
            self._reauthenticate(sa, now)

    def _reauthenticate(self, sa: IkeSa, now: float) -> None:
        """Make-before-break reauthentication: a new IKE SA, then the old one is deleted."""
        conn = sa.connection
        if conn is None or sa.state is not IkeState.ESTABLISHED:
            return
        children = [c.config.name for c in sa.children.values() if c.state != "DELETING"]
        log.info("IKE SA %s[%d]: reauthenticating", conn.name, sa.ike_id)
        new_id = self._initiate(
            conn.name,
            children[0] if children else None,
            sa.local,
            sa.remote,
            now,
            1,
            reauth_of=sa.ike_id,
        )
        new = self._sas[new_id]
        new.pending_extra_children = children[1:]

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
        self._now = now
        conn = self.connections[conn_name]
        if child_name is not None and child_name not in conn.children:
            raise KeyError(f"connection {conn_name!r} has no child {child_name!r}")
        existing = self.find_ike_sa(conn_name)
        if existing is not None and existing.state is IkeState.ESTABLISHED:
            if child_name is not None:
                self.create_child(existing.ike_id, child_name, now)
            return existing.ike_id
        if existing is not None:  # still connecting: the child follows once it is up
            if child_name is not None and child_name not in (
                existing.initial_child,
                *existing.pending_extra_children,
            ):
                existing.pending_extra_children.append(child_name)
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
    ) -> int:
        conn = self.connections[conn_name]
        sa = IkeSa(
            ike_id=self._new_ike_id(),
            initiator=True,
            spi_i=self._new_ike_spi(),
            spi_r=_ZERO_SPI,
            local=local,
            remote=remote,
            state=IkeState.INIT_SENT,
            created_at=now,
            connection=conn,
            initial_child=child_name,
            nat_fake=conn.encap,
        )
        sa.attempt = attempt
        sa.reauth_of = reauth_of
        group = first_ke_group(conn.proposals)
        if group is None:
            raise ValueError(f"connection {conn_name!r}: IKE proposals without a key exchange")
        sa.ke_group = int(group)
        sa.ni = self.random(self.settings.nonce_size)
        self._sas[sa.ike_id] = sa
        self._by_initiator_spi[sa.spi_i] = sa
        log.info("IKE SA %d (%s): initiating to %s:%d", sa.ike_id, conn.name, *remote)
        self._send_init_request(sa, now)
        return sa.ike_id

    def terminate(self, ike_id: int, now: float) -> bool:
        """Delete an IKE SA with the peer (INFORMATIONAL with Delete, §1.4.1)."""
        self._now = now
        sa = self._sas.get(ike_id)
        if sa is None or sa.state is IkeState.DEAD:
            return False
        if sa.state is not IkeState.ESTABLISHED:
            self._destroy(sa, "terminated locally")
            return True
        self._delete_ike(sa, now, "deleted by us")
        return True

    def terminate_all(self, now: float) -> None:
        for sa in list(self._sas.values()):
            self.terminate(sa.ike_id, now)

    def receive(self, data: bytes, local: ev.Address, remote: ev.Address, now: float) -> None:
        """Process one IKE message (without the non-ESP marker) received on ``local``."""
        self._now = now
        try:
            message = decode_message(data)
        except DecodeError as exc:
            self._reject_malformed(data, exc, local, remote, now)
            return
        header = message.header
        if header.exchange == ExchangeType.IKE_SA_INIT:
            self._trace("received", None, header, message.payloads)
            if header.is_response:
                self._init_response(data, message, local, remote, now)
            else:
                self._init_request(data, message, local, remote, now)
            return
        sa = self._by_spi.get((header.spi_i, header.spi_r))
        if sa is None:
            self._unknown_spi(message, local, remote, now)
            return
        if header.is_initiator == sa.initiator:
            self.drops.drop("initiator flag does not match our role", now)
            return
        if header.is_response:
            self._response(sa, data, message, local, remote, now)
        else:
            self._request_received(sa, data, message, local, remote, now)

    # ------------------------------------------------------------------ sending helpers

    def _new_ike_id(self) -> int:
        ike_id = self._next_ike_id
        self._next_ike_id += 1
        return ike_id

    def _new_ike_spi(self) -> bytes:
        while True:
            spi = self.random(8)
            if spi != _ZERO_SPI:
                return spi

    def _new_child_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.random(4), "big")
            if spi >= 256:  # 1..255 are reserved by IANA (RFC 4303 §2.1)
                return spi

    def _backoff(self, tries: int) -> float:
        return self.settings.retransmit_timeout * self.settings.retransmit_base ** (tries - 1)

    def _send(self, sa: IkeSa, data: bytes | Sequence[bytes]) -> None:
        for datagram in (data,) if isinstance(data, bytes) else data:
            self._send_to(datagram, sa.local, sa.remote)

    def _send_to(self, data: bytes, local: ev.Address, remote: ev.Address) -> None:
        if local[1] == NAT_T_PORT or remote[1] == NAT_T_PORT:
            data = IKE_MARKER + data
        self._datagrams.append(ev.Datagram(data, local, remote))

    def _header(self, sa: IkeSa, exchange: int, message_id: int, response: bool) -> IkeHeader:
        flags = (FLAG_INITIATOR if sa.initiator else 0) | (FLAG_RESPONSE if response else 0)
        return IkeHeader(sa.spi_i, sa.spi_r, 0, exchange, message_id, flags)

    def _enqueue(self, sa: IkeSa, start: Callable[[float], None], now: float) -> None:
        """Run ``start`` now if no request is outstanding, else when the window opens."""
        if sa.outstanding is None:
            start(now)
        else:
            sa.queued.append(start)

    def _request(
        self,
        sa: IkeSa,
        exchange: int,
        payloads: Sequence[Payload],
        now: float,
        on_response: Callable[[Message, tuple[Payload, ...], float], None],
        deletes_ike: bool = False,
    ) -> None:
        assert sa.sk_out is not None
        message_id = sa.next_request_id
        sa.next_request_id += 1
        header = self._header(sa, exchange, message_id, response=False)
        data = self._protect(sa, header, payloads)
        sa.outstanding = Outstanding(
            message_id, data, on_response, now, now + self._backoff(1), deletes_ike=deletes_ike
        )
        self._send(sa, data)

    def _respond(self, sa: IkeSa, request: IkeHeader, payloads: Sequence[Payload]) -> None:
        assert sa.sk_out is not None
        header = self._header(sa, int(request.exchange), request.message_id, response=True)
        data = self._protect(sa, header, payloads)
        sa.last_response = (request.message_id, data)
        self._send(sa, data)

    def _protect(
        self, sa: IkeSa, header: IkeHeader, payloads: Sequence[Payload]
    ) -> tuple[bytes, ...]:
        """One SK message, or SKF fragments when both sides support RFC 7383 and it is big."""
        assert sa.sk_out is not None
        self._trace("sending", sa, header, payloads)
        if not sa.fragmentation:
            return (build_protected(header, payloads, sa.sk_out),)
        version = 6 if ":" in sa.remote[0] else 4
        limit = ike_payload_limit(self.settings.fragment_size, version)
        marker = 4 if NAT_T_PORT in (sa.local[1], sa.remote[1]) else 0
        return tuple(fragment_message(header, payloads, sa.sk_out, limit, marker))

    def _unprotect(
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
        self._trace("received", sa, message.header, payloads)
        return payloads

    def _plain(self, sa: IkeSa | None, header: IkeHeader, payloads: Sequence[Payload]) -> bytes:
        """An unprotected message (IKE_SA_INIT, or an error reply outside any SA)."""
        self._trace("sending", sa, header, payloads)
        return build_plain(header, payloads)

    @staticmethod
    def _trace(verb: str, sa: IkeSa | None, header: IkeHeader, payloads: Sequence[Payload]) -> None:
        """Every message in and out at level 2 (charon's "parsed"/"generating" lines): payload
        types only, never their contents."""
        if log.isEnabledFor(logging.DEBUG):
            who = f"IKE SA {sa.ike_id}" if sa is not None else "IKE"
            log.debug("%s: %s %s", who, verb, message_summary(header, payloads))

    def _fail(self, sa: IkeSa, notify: int, detail: str, received: bool) -> None:
        self._events.append(ev.NegotiationFailed(sa.ike_id, sa.name, notify, detail, received))
        log.warning(
            "IKE SA %d (%s): %s %s: %s",
            sa.ike_id,
            sa.name,
            "received" if received else "sending",
            name_of(notify, NotifyType),
            detail,
        )

    def _destroy(
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
            self._child_down(sa, child, reason)
        sa.state = IkeState.DEAD
        sa.outstanding = None
        sa.queued.clear()
        sa.timers.clear()
        self._sas.pop(sa.ike_id, None)
        self._by_spi.pop((sa.spi_i, sa.spi_r), None)
        self._by_initiator_spi.pop(sa.spi_i, None)
        self._half_open.pop((sa.spi_i, sa.remote[0], sa.remote[1]), None)
        if sa.rekeyed_to is None and (was_established or notify_up):
            self._events.append(ev.IkeSaDown(sa.ike_id, sa.name, reason))
        log.info("IKE SA %d (%s) down: %s", sa.ike_id, sa.name, reason)
        conn = sa.connection
        if conn is None or sa.rekeyed_to is not None or reason in ("deleted by us",):
            return
        if not was_established and sa.initiator:
            self._retry_initiation(sa, reason, self._now)
            return
        if dead_peer or by_peer:
            self._after_loss(sa, lost, dead_peer)

    def _retry_initiation(self, sa: IkeSa, reason: str, now: float) -> None:
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
        )
        self._retries.append(
            (now + delay, conn.name, sa.initial_child, sa.local, sa.remote, sa.attempt + 1)
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
                self._events.append(ev.TrapRequested(conn.name, config.name))
        if restart:
            log.info(
                "IKE SA %s: %s, restarting %s",
                conn.name,
                "peer dead" if dead_peer else "closed by peer",
                ", ".join(restart),
            )
            new_id = self._initiate(conn.name, restart[0], sa.local, sa.remote, self._now, 1)
            self._sas[new_id].pending_extra_children = restart[1:]

    def _child_down(
        self, sa: IkeSa, child: ChildSa, reason: str, linger: float = 0.0, hold: float = 0.0
    ) -> None:
        sa.children.pop(child.child_id, None)
        for name in (f"rekey-child-{child.child_id}", f"expire-child-{child.child_id}"):
            sa.timers.pop(name, None)
        # A rekeyed SA gone: its replacement may now send (responder side, §2.8).
        for successor_id in (child.replacement, child.peer_rekey):
            successor = sa.children.get(successor_id) if successor_id is not None else None
            if successor is not None and not successor.outbound_active:
                successor.outbound_active = True
                self._events.append(ev.ChildSaActivated(sa.ike_id, successor.child_id))
        self._events.append(
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
        )

    # ------------------------------------------------------------------ malformed / unknown

    def _reject_malformed(
        self, data: bytes, exc: DecodeError, local: ev.Address, remote: ev.Address, now: float
    ) -> None:
        """§2.5/§3.1: unprotected errors only for IKE_SA_INIT requests; everything else dropped."""
        self.drops.drop(
            f"malformed IKE message ({name_of(exc.notify, NotifyType)})", now, exc.detail
        )
        if len(data) < 28 or exc.notify not in (
            NotifyType.INVALID_MAJOR_VERSION,
            NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
            NotifyType.INVALID_SYNTAX,
        ):
            return
        spi_i, spi_r, _np, _version, exchange, flags, message_id = struct.unpack_from(
            ">8s8sBBBBI", data
        )
        if exchange != ExchangeType.IKE_SA_INIT or flags & FLAG_RESPONSE or spi_r != _ZERO_SPI:
            return
        notify_data = b""
        if exc.notify == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD and exc.payload_type is not None:
            notify_data = bytes([exc.payload_type & 0xFF])
        header = IkeHeader(spi_i, _ZERO_SPI, 0, exchange, message_id, FLAG_RESPONSE)
        self._send_to(self._plain(None, header, [Notify(exc.notify, notify_data)]), local, remote)

    def _unknown_spi(
        self, message: Message, local: ev.Address, remote: ev.Address, now: float
    ) -> None:
        """§2.21.4: a protected request for an SA we do not know may get INVALID_IKE_SPI."""
        self.drops.drop("message for an unknown IKE SA", now)
        header = message.header
        if (
            header.is_response
            or not message.payloads
            or not isinstance(message.payloads[-1], SK | SKF)
        ):
            return
        if self.drops.counts["message for an unknown IKE SA"] % 10 != 1:
            return  # rate limit: answer one in ten
        reply = IkeHeader(
            header.spi_i,
            header.spi_r,
            0,
            ExchangeType.INFORMATIONAL,
            header.message_id,
            FLAG_RESPONSE | (0 if header.is_initiator else FLAG_INITIATOR),
        )
        self._send_to(self._plain(None, reply, [Notify(NotifyType.INVALID_IKE_SPI)]), local, remote)

    # ------------------------------------------------------------------ NAT detection (§2.23)

    def _nat_notifies(
        self, spi_i: bytes, spi_r: bytes, local: ev.Address, remote: ev.Address, fake: bool
    ) -> list[Notify]:
        src = (
            self.random(20)
            if fake
            else nat_detection_hash(spi_i, spi_r, _packed(local[0]), local[1])
        )
        dst = nat_detection_hash(spi_i, spi_r, _packed(remote[0]), remote[1])
        return [
            Notify(NotifyType.NAT_DETECTION_SOURCE_IP, src),
            Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, dst),
        ]

    def _check_nat(self, sa: IkeSa, message: Message, spi_r: bytes) -> None:
        sources = [
            n.data
            for n in message.notifies()
            if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP
        ]
        dests = [
            n.data
            for n in message.notifies()
            if n.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP
        ]
        if not sources and not dests:
            return
        expect_src = nat_detection_hash(sa.spi_i, spi_r, _packed(sa.remote[0]), sa.remote[1])
        expect_dst = nat_detection_hash(sa.spi_i, spi_r, _packed(sa.local[0]), sa.local[1])
        sa.nat_remote = bool(sources) and not any(
            hmac.compare_digest(s, expect_src) for s in sources
        )
        sa.nat_local = bool(dests) and not any(hmac.compare_digest(d, expect_dst) for d in dests)

    # ------------------------------------------------------------------ IKE_SA_INIT, initiator

    def _send_init_request(self, sa: IkeSa, now: float) -> None:
        conn = sa.connection
        assert conn is not None
        sa.key_exchange = new_key_exchange(KeId(sa.ke_group))
        payloads: list[Payload] = []
        if sa.cookie:
            payloads.append(Notify(NotifyType.COOKIE, sa.cookie))
        payloads += [
            SA(conn.proposals),
            KE(sa.ke_group, sa.key_exchange.public_value()),
            Nonce(sa.ni),
            *self._nat_notifies(sa.spi_i, _ZERO_SPI, sa.local, sa.remote, conn.encap),
            signature_hash_notify(),
        ]
        if conn.fragmentation != "no":
            payloads.append(Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        header = IkeHeader(sa.spi_i, _ZERO_SPI, 0, ExchangeType.IKE_SA_INIT, 0, FLAG_INITIATOR)
        data = self._plain(sa, header, payloads)
        sa.init_request = data
        sa.next_request_id = 1
        sa.outstanding = Outstanding(0, (data,), lambda *_: None, now, now + self._backoff(1))
        self._send(sa, data)

    def _init_response(
        self, data: bytes, message: Message, local: ev.Address, remote: ev.Address, now: float
    ) -> None:
        header = message.header
        sa = self._by_initiator_spi.get(header.spi_i)
        if sa is None or sa.state is not IkeState.INIT_SENT or header.message_id != 0:
            self.drops.drop("unexpected IKE_SA_INIT response", now)
            return
        conn = sa.connection
        assert conn is not None
        notifies = {int(n.notify_type): n for n in message.notifies()}
        if NotifyType.COOKIE in notifies:
            cookie = notifies[NotifyType.COOKIE].data
            if not 1 <= len(cookie) <= 64 or sa.cookie == cookie:
                self.drops.drop("bad COOKIE", now)
                return
            log.info("IKE SA %d: responder demands a COOKIE, retrying", sa.ike_id)
            sa.cookie = cookie
            self._send_init_request(sa, now)
            return
        if NotifyType.INVALID_KE_PAYLOAD in notifies:
            raw = notifies[NotifyType.INVALID_KE_PAYLOAD].data
            group = _GROUP.unpack(raw)[0] if len(raw) == 2 else None
            if (
                group is None
                or group == sa.ke_group
                or not offers_group(conn.proposals, group)
                or sa.ke_retries >= self.settings.max_ke_retries
            ):
                self._fail(sa, NotifyType.INVALID_KE_PAYLOAD, f"peer asks for group {group}", True)
                self._destroy(sa, "key exchange method not agreed")
                return
            log.info(
                "IKE SA %d: peer asks for KE group %s, retrying", sa.ike_id, name_of(group, KeId)
            )
            sa.ke_group = group
            sa.ke_retries += 1
            self._send_init_request(sa, now)
            return
        errors = [n for n in message.notifies() if is_error_notify(n.notify_type)]
        if errors:
            self._fail(sa, errors[0].notify_type, "IKE_SA_INIT refused", True)
            self._destroy(sa, f"peer refused: {name_of(errors[0].notify_type, NotifyType)}")
            return
        sa_payload = message.find(SA)
        ke = message.find(KE)
        nonce = message.find(Nonce)
        if not isinstance(sa_payload, SA) or not isinstance(ke, KE) or not isinstance(nonce, Nonce):
            self.drops.drop("IKE_SA_INIT response without SA, KE or Nonce", now)
            return
        if (
            header.spi_r == _ZERO_SPI
            or len(sa_payload.proposals) != 1
            or not (16 <= len(nonce.data) <= 256)
        ):
            self.drops.drop("invalid IKE_SA_INIT response", now)
            return
        chosen = sa_payload.proposals[0]
        if not proposal_accepted(chosen, conn.proposals):
            self._fail(
                sa,
                NotifyType.NO_PROPOSAL_CHOSEN,
                "responder chose a proposal we did not offer",
                False,
            )
            self._destroy(sa, "invalid proposal choice")
            return
        try:
            algorithms = algorithms_of(chosen)
            if (
                algorithms.ke is None
                or int(algorithms.ke) != int(ke.group)
                or int(ke.group) != sa.ke_group
            ):
                raise UnsupportedAlgorithm("KE payload group differs from the chosen one")
            assert sa.key_exchange is not None
            shared = sa.key_exchange.shared_secret(ke.data)
        except (CryptoError, ValueError) as exc:
            self._fail(sa, NotifyType.INVALID_SYNTAX, f"IKE_SA_INIT response: {exc}", False)
            self._destroy(sa, "key exchange failed")
            return
        sa.outstanding = None
        sa.spi_r = header.spi_r
        sa.nr = nonce.data
        sa.init_response = data
        self.auth.note_peer_offers(sa, message.payloads)
        sa.algorithms = algorithms
        sa.fragmentation = (
            conn.fragmentation != "no" and NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in (notifies)
        )
        self._by_spi[(sa.spi_i, sa.spi_r)] = sa
        self._check_nat(sa, message, sa.spi_r)
        self._derive_ike_keys(sa, shared)
        if sa.encap and sa.local[1] != NAT_T_PORT:
            sa.local = (sa.local[0], NAT_T_PORT)
            sa.remote = (sa.remote[0], NAT_T_PORT)
            self._events.append(ev.IkeSaUpdated(sa.ike_id, sa.local, sa.remote, True))
        log.info(
            "IKE SA %d: IKE_SA_INIT done, %s%s",
            sa.ike_id,
            algorithms.describe(),
            ", NAT detected"
            if (sa.nat_local or sa.nat_remote)
            else (", faking NAT (encap)" if sa.nat_fake else ""),
        )
        self._send_auth_request(sa, now)

    def _derive_ike_keys(self, sa: IkeSa, shared: bytes) -> None:
        alg = sa.algorithms
        assert alg is not None and alg.prf is not None
        self._key_ike_sa(sa, skeyseed(alg.prf, sa.ni, sa.nr, shared))

    def _key_ike_sa(self, sa: IkeSa, seed: bytes) -> None:
        """SK_d, SK_a, SK_e, SK_p from SKEYSEED (§2.14) and the SK payload ciphers."""
        alg = sa.algorithms
        assert alg is not None and alg.prf is not None
        integ_size = alg.integ.key_size if alg.integ else 0
        keys = derive_ike_keys(
            alg.prf, seed, sa.ni, sa.nr, sa.spi_i, sa.spi_r, alg.encr.key_size, integ_size
        )
        sa.keys = keys
        sk_i = SkCipher(alg.encr, keys.sk_ei, alg.integ, keys.sk_ai)
        sk_r = SkCipher(alg.encr, keys.sk_er, alg.integ, keys.sk_ar)
        sa.sk_out, sa.sk_in = (sk_i, sk_r) if sa.initiator else (sk_r, sk_i)

    # ------------------------------------------------------------------ IKE_AUTH, initiator

    def _send_auth_request(self, sa: IkeSa, now: float) -> None:
        conn = sa.connection
        assert conn is not None and sa.keys is not None and sa.algorithms is not None
        sa.state = IkeState.AUTH_SENT
        my_id = self._local_identity(conn, sa.local)
        sa.local_id = format_identity(my_id)
        id_payload = IDi(my_id.id_type, my_id.data)
        try:
            *certs, auth = self.auth.own_payloads(sa, conn, my_id, id_payload)
        except AuthFailure as exc:
            self._fail(sa, NotifyType.AUTHENTICATION_FAILED, f"cannot authenticate: {exc}", False)
            self._destroy(sa, "no credentials")
            return
        payloads: list[Payload] = [id_payload, *certs]
        if sa.reauth_of is None:
            payloads.append(Notify(NotifyType.INITIAL_CONTACT))
        payloads += self.auth.certreq([conn])
        remote_id = self._remote_identity(conn)
        if remote_id is not None and _concrete_id(remote_id):
            payloads.append(IDr(remote_id.id_type, remote_id.data))
        payloads.append(auth)
        if sa.initial_child is not None:
            child_cfg = conn.children[sa.initial_child]
            spi_in = self._new_child_spi()
            proposals = with_spi(without_ke(child_cfg.esp_proposals), spi_in.to_bytes(4, "big"))
            local_ts = _resolve_ts(child_cfg.local_ts, sa.local[0])
            remote_ts = _resolve_ts(child_cfg.remote_ts, sa.remote[0])
            sa.pending_child = PendingChild(child_cfg, spi_in, proposals, local_ts, remote_ts)
            payloads += [
                SA(proposals),
                TSi(tuple(s.to_wire() for s in local_ts)),
                TSr(tuple(s.to_wire() for s in remote_ts)),
            ]
        self._request(sa, ExchangeType.IKE_AUTH, payloads, now, self._auth_response)

    def _auth_response(self, message: Message, payloads: tuple[Payload, ...], now: float) -> None:
        sa = self._by_spi[(message.header.spi_i, message.header.spi_r)]
        conn = sa.connection
        assert conn is not None
        notifies = [p for p in payloads if isinstance(p, Notify)]
        codes = {int(n.notify_type) for n in notifies}
        if NotifyType.AUTHENTICATION_FAILED in codes:
            self._fail(
                sa, NotifyType.AUTHENTICATION_FAILED, "peer rejected our authentication", True
            )
            self._destroy(sa, "authentication failed")
            return
        id_r = first_of(payloads, IDr)
        auth = first_of(payloads, AUTH)
        if id_r is None or auth is None or not isinstance(id_r, IDr):
            errors = [n for n in notifies if is_error_notify(n.notify_type)]
            code = errors[0].notify_type if errors else NotifyType.INVALID_SYNTAX
            self._fail(sa, code, "IKE_AUTH response without IDr/AUTH", True)
            self._destroy(sa, "IKE_AUTH failed")
            return
        peer = Identity(id_r.id_type, id_r.data)
        mine = self._local_identity(conn, sa.local)
        try:
            how = self.auth.verify_peer(sa, conn, mine, id_r, payloads)
        except AuthFailure as exc:
            self._fail(
                sa,
                NotifyType.AUTHENTICATION_FAILED,
                f"responder '{format_identity(peer)}' failed authentication: {exc}",
                False,
            )
            self._request(
                sa,
                ExchangeType.INFORMATIONAL,
                [Notify(NotifyType.AUTHENTICATION_FAILED)],
                now,
                lambda *_: None,
            )
            self._destroy(sa, "peer authentication failed")
            return
        sa.remote_id = format_identity(peer)
        log.info("IKE SA %d: '%s' authenticated with %s", sa.ike_id, sa.remote_id, how)
        self._established(sa, now)
        pending, sa.pending_child = sa.pending_child, None
        if pending is None:
            return
        errors = [n for n in notifies if is_error_notify(n.notify_type)]
        if errors:
            self._fail(sa, errors[0].notify_type, f"Child SA {pending.config.name} refused", True)
            return
        self._complete_child_as_initiator(sa, pending, payloads, now)

    def _complete_child_as_initiator(
        self, sa: IkeSa, pending: PendingChild, payloads: tuple[Payload, ...], now: float
    ) -> None:
        sa_payload = first_of(payloads, SA)
        tsi = first_of(payloads, TSi)
        tsr = first_of(payloads, TSr)
        problem = None
        if sa_payload is None or tsi is None or tsr is None or len(sa_payload.proposals) != 1:
            problem = "Child SA response lacks SA, TSi or TSr"
        else:
            chosen = sa_payload.proposals[0]
            if len(chosen.spi) != 4 or not proposal_accepted(chosen, pending.proposals):
                problem = "responder chose an ESP proposal we did not offer"
            else:
                local_ts = tuple(Selector.from_wire(t) for t in tsi.selectors)
                remote_ts = tuple(Selector.from_wire(t) for t in tsr.selectors)
                if not all_within(local_ts, pending.local_ts) or not all_within(
                    remote_ts, pending.remote_ts
                ):
                    problem = "responder widened the traffic selectors"
        if problem is not None:
            self._fail(sa, NotifyType.NO_PROPOSAL_CHOSEN, problem, False)
            self._delete_child_spi(sa, pending.spi_in, now)
            return
        if any(
            isinstance(p, Notify) and p.notify_type == NotifyType.USE_TRANSPORT_MODE
            for p in payloads
        ):
            self._fail(sa, NotifyType.NO_PROPOSAL_CHOSEN, "peer wants transport mode", False)
            self._delete_child_spi(sa, pending.spi_in, now)
            return
        spi_out = int.from_bytes(chosen.spi, "big")
        self._install_child(
            sa,
            pending.config,
            pending.spi_in,
            spi_out,
            chosen,
            local_ts,
            remote_ts,
            now,
            we_initiated=True,
            ni=sa.ni,
            nr=sa.nr,
        )

    def _delete_child_spi(self, sa: IkeSa, spi_in: int, now: float) -> None:
        def send(now: float) -> None:
            self._request(
                sa,
                ExchangeType.INFORMATIONAL,
                [Delete(ProtocolId.ESP, (spi_in.to_bytes(4, "big"),), 4)],
                now,
                lambda *_: None,
            )

        self._enqueue(sa, send, now)

    # ------------------------------------------------------------------ IKE_SA_INIT, responder

    def _matching_connections(self, local: ev.Address, remote: ev.Address) -> list[Connection]:
        return [
            c
            for c in self.connections.values()
            if _addr_matches(c.local_addrs, local[0]) and _addr_matches(c.remote_addrs, remote[0])
        ]

    def _cookie_for(self, message: Message, remote: ev.Address, nonce: bytes) -> bytes:
        digest = hashlib.sha256(
            self._cookie_secret + nonce + _packed(remote[0]) + message.header.spi_i
        ).digest()
        return _COOKIE_VERSION + digest

    def _init_request(
        self, data: bytes, message: Message, local: ev.Address, remote: ev.Address, now: float
    ) -> None:
        header = message.header
        if header.spi_r != _ZERO_SPI or header.message_id != 0 or not header.is_initiator:
            self.drops.drop("invalid IKE_SA_INIT request header", now)
            return
        key = (header.spi_i, remote[0], remote[1])
        known = self._half_open.get(key)
        if known is not None:
            if known.init_request == data and known.last_response is not None:
                self._answer_retransmit(known, 0)
            else:
                self.drops.drop("IKE_SA_INIT for a half-open SA", now)
            return

        def reply(*notifies: Notify) -> None:
            h = IkeHeader(header.spi_i, _ZERO_SPI, 0, ExchangeType.IKE_SA_INIT, 0, FLAG_RESPONSE)
            self._send_to(self._plain(None, h, notifies), local, remote)

        sa_payload = message.find(SA)
        ke = message.find(KE)
        nonce = message.find(Nonce)
        if not isinstance(sa_payload, SA) or not isinstance(ke, KE) or not isinstance(nonce, Nonce):
            self.drops.drop("IKE_SA_INIT request without SA, KE or Nonce", now)
            reply(Notify(NotifyType.INVALID_SYNTAX))
            return
        if not 16 <= len(nonce.data) <= 256:
            reply(Notify(NotifyType.INVALID_SYNTAX))
            return
        if len(self._half_open) >= self.settings.cookie_threshold:
            expected = self._cookie_for(message, remote, nonce.data)
            first = message.payloads[0] if message.payloads else None
            if not (
                isinstance(first, Notify)
                and first.notify_type == NotifyType.COOKIE
                and hmac.compare_digest(first.data, expected)
            ):
                log.info(
                    "demanding a COOKIE from %s:%d (%d half-open SAs)",
                    *remote,
                    len(self._half_open),
                )
                reply(Notify(NotifyType.COOKIE, expected))
                return
        candidates = self._matching_connections(local, remote)
        chosen: Proposal | None = None
        conn: Connection | None = None
        for candidate in candidates:
            chosen = select_proposal(sa_payload.proposals, candidate.proposals)
            if chosen is not None:
                conn = candidate
                break
        if chosen is None or conn is None:
            offered = ", ".join(_describe_proposal(p) for p in sa_payload.proposals)
            self.drops.drop(
                "IKE_SA_INIT refused with NO_PROPOSAL_CHOSEN",
                now,
                f"{remote[0]} offered {offered}"
                if candidates
                else f"no connection for {remote[0]}",
            )
            reply(Notify(NotifyType.NO_PROPOSAL_CHOSEN))
            return
        try:
            algorithms = algorithms_of(chosen)
        except UnsupportedAlgorithm:
            reply(Notify(NotifyType.NO_PROPOSAL_CHOSEN))
            return
        if algorithms.ke is None or algorithms.ke not in supported_groups():
            reply(Notify(NotifyType.NO_PROPOSAL_CHOSEN))
            return
        if int(ke.group) != int(algorithms.ke):
            log.info(
                "IKE_SA_INIT from %s:%d: asking for KE group %s instead of %s",
                *remote,
                algorithms.ke.name,
                name_of(ke.group, KeId),
            )
            reply(Notify(NotifyType.INVALID_KE_PAYLOAD, _GROUP.pack(int(algorithms.ke))))
            return
        try:
            my_public, shared = respond_key_exchange(algorithms.ke, ke.data)
        except (InvalidPublicValue, CryptoError) as exc:
            self.drops.drop("invalid KE public value", now, str(exc))
            reply(Notify(NotifyType.INVALID_SYNTAX))
            return
        sa = IkeSa(
            ike_id=self._new_ike_id(),
            initiator=False,
            spi_i=header.spi_i,
            spi_r=self._new_ike_spi(),
            local=local,
            remote=remote,
            state=IkeState.INIT_DONE,
            created_at=now,
            candidates=tuple(c for c in candidates),
            ni=nonce.data,
            nr=self.random(self.settings.nonce_size),
            ke_group=int(algorithms.ke),
            algorithms=algorithms,
            init_request=data,
        )
        sa.connection = conn
        self.auth.note_peer_offers(sa, message.payloads)
        self._check_nat(sa, message, _ZERO_SPI)
        self._derive_ike_keys(sa, shared)
        payloads: list[Payload] = [
            SA((Proposal(chosen.number, chosen.protocol, b"", chosen.transforms),)),
            KE(int(algorithms.ke), my_public),
            Nonce(sa.nr),
            *self._nat_notifies(sa.spi_i, sa.spi_r, local, remote, fake=False),
            *self.auth.certreq(sa.candidates),
            signature_hash_notify(),
        ]
        if conn.fragmentation != "no" and any(
            n.notify_type == NotifyType.IKEV2_FRAGMENTATION_SUPPORTED for n in message.notifies()
        ):
            sa.fragmentation = True
            payloads.append(Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        response_header = IkeHeader(
            sa.spi_i, sa.spi_r, 0, ExchangeType.IKE_SA_INIT, 0, FLAG_RESPONSE
        )
        response = self._plain(sa, response_header, payloads)
        sa.init_response = response
        sa.last_response = (0, (response,))
        sa.expected_peer_id = 1
        self._sas[sa.ike_id] = sa
        self._by_spi[(sa.spi_i, sa.spi_r)] = sa
        self._half_open[key] = sa
        self._send(sa, response)
        log.info(
            "IKE SA %d: IKE_SA_INIT from %s:%d answered, %s%s",
            sa.ike_id,
            *remote,
            algorithms.describe(),
            ", NAT detected" if sa.encap else "",
        )

    # ------------------------------------------------------------------ requests on an SA

    def _request_received(
        self,
        sa: IkeSa,
        data: bytes,
        message: Message,
        local: ev.Address,
        remote: ev.Address,
        now: float,
    ) -> None:
        header = message.header
        last = message.payloads[-1] if message.payloads else None
        if header.message_id == sa.expected_peer_id - 1 and sa.last_response is not None:
            if sa.last_response[0] == header.message_id and self._retransmission_authentic(
                sa, data, message
            ):
                self._answer_retransmit(sa, header.message_id)
            return
        if header.message_id != sa.expected_peer_id:
            self.drops.drop(
                "request with an unexpected message ID",
                now,
                f"{header.message_id} != {sa.expected_peer_id}",
            )
            return
        if not isinstance(last, SK | SKF) or (isinstance(last, SKF) and not sa.fragmentation):
            self.drops.drop("request without an SK payload", now)
            return
        assert sa.sk_in is not None
        try:
            payloads = self._unprotect(sa, data, message, header.message_id, False, now)
            if payloads is None:
                return  # more fragments to come (RFC 7383 §2.6)
        except CryptoError as exc:
            self.drops.drop("integrity check failed", now, f"IKE SA {sa.ike_id}: {exc}")
            return
        except DecodeError as exc:
            self.drops.drop("malformed protected payloads", now, exc.detail)
            self._respond(sa, header, [Notify(exc.notify)])
            sa.expected_peer_id += 1
            return
        sa.expected_peer_id += 1
        sa.last_peer_activity = now
        self._follow_peer(sa, local, remote)
        exchange = header.exchange
        if exchange == ExchangeType.IKE_AUTH and sa.state is IkeState.INIT_DONE:
            self._auth_request(sa, header, payloads, now)
        elif exchange == ExchangeType.INFORMATIONAL and sa.state in (
            IkeState.ESTABLISHED,
            IkeState.DELETING,
            IkeState.AUTH_SENT,
        ):
            self._informational_request(sa, header, payloads, now)
        elif exchange == ExchangeType.CREATE_CHILD_SA and sa.state is IkeState.ESTABLISHED:
            self._create_child_request(sa, header, payloads, now)
        else:
            self.drops.drop(
                "request not valid in this state",
                now,
                f"{name_of(exchange, ExchangeType)} in {sa.state.label}",
            )
            sa.expected_peer_id -= 1

    def _answer_retransmit(self, sa: IkeSa, message_id: int) -> None:
        """A retransmitted request is answered from the cache, never processed again (§2.1).
        Logged at level 2 only: replayed requests must not flood the default log."""
        assert sa.last_response is not None
        log.debug(
            "IKE SA %d: received retransmit of request %d, retransmitting response",
            sa.ike_id,
            message_id,
        )
        self._send(sa, sa.last_response[1])

    def _retransmission_authentic(self, sa: IkeSa, data: bytes, message: Message) -> bool:
        """Answer a retransmitted request from the cache only if it is authentic; for a
        fragmented one, its first fragment is checked (RFC 7383 §2.6.1)."""
        assert sa.sk_in is not None
        last = message.payloads[-1] if message.payloads else None
        try:
            if isinstance(last, SK):
                open_protected(data, message, sa.sk_in)
                return True
            if isinstance(last, SKF) and last.fragment_number == 1:
                open_fragment(data, message, sa.sk_in)
                return True
        except (CryptoError, DecodeError):
            self.drops.drop("integrity check failed", self._now, "retransmitted request")
        return False

    def _follow_peer(self, sa: IkeSa, local: ev.Address, remote: ev.Address) -> None:
        """Follow the peer to port 4500 or a new NAT mapping (§2.23)."""
        if (local, remote) == (sa.local, sa.remote):
            return
        if sa.encap or remote[1] == NAT_T_PORT:
            sa.local, sa.remote = local, remote
            if remote[1] == NAT_T_PORT and not sa.encap:
                sa.nat_remote = True
            self._events.append(ev.IkeSaUpdated(sa.ike_id, local, remote, sa.encap))

    def _auth_request(
        self, sa: IkeSa, header: IkeHeader, payloads: tuple[Payload, ...], now: float
    ) -> None:
        self._half_open.pop((sa.spi_i, sa.remote[0], sa.remote[1]), None)
        for key, value in list(self._half_open.items()):
            if value is sa:
                del self._half_open[key]
        id_i = first_of(payloads, IDi)
        auth = first_of(payloads, AUTH)
        if not isinstance(id_i, IDi) or not isinstance(auth, AUTH):
            self._respond(sa, header, [Notify(NotifyType.INVALID_SYNTAX)])
            self._destroy(sa, "IKE_AUTH without IDi or AUTH", notify_up=False)
            return
        self.auth.note_peer_offers(sa, payloads)
        peer = Identity(id_i.id_type, id_i.data)
        id_r = first_of(payloads, IDr)
        wanted_local = Identity(id_r.id_type, id_r.data) if id_r is not None else None
        conn = self._connection_for_peer(sa, peer, wanted_local, int(auth.method))
        failure = f"no connection for initiator '{format_identity(peer)}'"
        if conn is not None:
            sa.connection = conn
            try:
                how = self.auth.verify_peer(
                    sa, conn, self._local_identity(conn, sa.local), id_i, payloads
                )
                failure = ""
            except AuthFailure as exc:
                failure = f"initiator '{format_identity(peer)}' failed authentication: {exc}"
        if conn is None or failure:
            self._fail(sa, NotifyType.AUTHENTICATION_FAILED, failure, False)
            self._respond(sa, header, [Notify(NotifyType.AUTHENTICATION_FAILED)])
            self._destroy(sa, "authentication failed", notify_up=False)
            return
        sa.remote_id = format_identity(peer)
        log.info("IKE SA %d: '%s' authenticated with %s", sa.ike_id, sa.remote_id, how)
        my_id = self._local_identity(conn, sa.local)
        sa.local_id = format_identity(my_id)
        my_id_payload = IDr(my_id.id_type, my_id.data)
        try:
            my_auth = self.auth.own_payloads(sa, conn, my_id, my_id_payload)
        except AuthFailure as exc:
            self._fail(sa, NotifyType.AUTHENTICATION_FAILED, f"cannot authenticate: {exc}", False)
            self._respond(sa, header, [Notify(NotifyType.AUTHENTICATION_FAILED)])
            self._destroy(sa, "no credentials", notify_up=False)
            return
        if any(
            isinstance(p, Notify) and p.notify_type == NotifyType.INITIAL_CONTACT for p in payloads
        ):
            self._initial_contact(sa)
        response: list[Payload] = [my_id_payload, *my_auth]
        self._established(sa, now)
        child_result = self._child_as_responder(sa, conn, payloads, now)
        response += child_result
        self._respond(sa, header, response)
        for child in sa.children.values():
            self._announce_child(sa, child)

    def _connection_for_peer(
        self, sa: IkeSa, peer: Identity, wanted_local: Identity | None, method: int
    ) -> Connection | None:
        """The first address-matching connection whose identities and authentication method
        fit (RFC 4301 §4.4.3 PAD)."""
        for conn in sa.candidates:
            remote_id = self._remote_identity(conn)
            if not method_fits(conn.remote, method):
                continue
            if remote_id is not None and not id_match(peer, remote_id):
                continue
            if wanted_local is not None:
                mine = self._local_identity(conn, sa.local)
                if not wanted_local.matches(mine) and not mine.matches(wanted_local):
                    continue
            return conn
        return None

    def _initial_contact(self, sa: IkeSa) -> None:
        """INITIAL_CONTACT: drop older IKE SAs between the same identities (§2.4)."""
        for other in list(self._sas.values()):
            if (
                other is not sa
                and other.state is IkeState.ESTABLISHED
                and other.remote_id == sa.remote_id
                and other.local_id == sa.local_id
            ):
                self._destroy(other, "replaced after INITIAL_CONTACT")

    def _child_as_responder(
        self, sa: IkeSa, conn: Connection, payloads: tuple[Payload, ...], now: float
    ) -> list[Payload]:
        """The first Child SA, in IKE_AUTH (§1.2); no SA payload means childless (RFC 6023)."""
        if first_of(payloads, SA) is None:
            return []
        choice = self._choose_child(sa, list(conn.children.values()), payloads, ike_auth=True)
        if isinstance(choice, list):
            return choice
        child = self._accept_child(sa, choice, now, ni=sa.ni, nr=sa.nr)
        _config, local_ts, remote_ts, chosen = choice
        return self._child_reply(chosen, child.spi_in, local_ts, remote_ts)

    def _install_child(
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
        self._arm_child_timers(sa, child, now)
        if announce:
            self._announce_child(sa, child)
        return child

    def _arm_child_timers(self, sa: IkeSa, child: ChildSa, now: float) -> None:
        """rekey_time minus a random share of rand_time, and the hard life_time (§2.8)."""
        cfg = child.config
        if cfg.rekey_time > 0:
            jitter = self._jitter(cfg.rand_time)
            sa.timers[f"rekey-child-{child.child_id}"] = now + max(cfg.rekey_time - jitter, 1.0)
        if cfg.life_time > 0:
            sa.timers[f"expire-child-{child.child_id}"] = now + cfg.life_time

    def _jitter(self, span: float) -> float:
        if span <= 0:
            return 0.0
        return span * int.from_bytes(self.random(4), "big") / 0xFFFFFFFF

    def _announce_child(self, sa: IkeSa, child: ChildSa) -> None:
        """Derive the Child SA keys (§2.17) and report it for installation."""
        assert sa.keys is not None and sa.algorithms is not None and sa.algorithms.prf
        alg = child.algorithms
        integ_size = alg.integ.key_size if alg.integ else 0
        keymat = child_keymat(
            sa.algorithms.prf,
            sa.keys.sk_d,
            child.ni,
            child.nr,
            2 * (alg.encr.key_size + integ_size),
            child.shared,
        )
        child.shared = b""
        encr_i, integ_i, encr_r, integ_r = split_child_keymat(keymat, alg.encr.key_size, integ_size)
        to_responder = (encr_i, integ_i)
        to_initiator = (encr_r, integ_r)
        # "Initiator" is the initiator of the exchange that created this Child SA (§2.17).
        out_keys, in_keys = (
            (to_responder, to_initiator) if child.we_initiated else (to_initiator, to_responder)
        )
        inbound = ev.ChildKeys(child.spi_in, alg.encr, in_keys[0], alg.integ, in_keys[1])
        outbound = ev.ChildKeys(child.spi_out, alg.encr, out_keys[0], alg.integ, out_keys[1])
        self._events.append(
            ev.ChildSaUp(
                sa.ike_id,
                child.child_id,
                child.config.name,
                inbound,
                outbound,
                alg.esn,
                child.config.replay_window,
                child.local_ts,
                child.remote_ts,
                sa.local,
                sa.remote,
                sa.encap,
                child.config.mode,
                child.outbound_active,
                child.config.rekey_bytes,
                child.config.rekey_packets,
                child.config.life_bytes,
                child.config.life_packets,
                sa.name,
            )
        )
        log.info(
            "CHILD_SA %s{%d} established with SPIs %08x_i %08x_o, %s, TS %s === %s",
            child.config.name,
            child.child_id,
            child.spi_in,
            child.spi_out,
            alg.describe(),
            " ".join(map(str, child.local_ts)),
            " ".join(map(str, child.remote_ts)),
        )

    def _established(self, sa: IkeSa, now: float) -> None:
        sa.state = IkeState.ESTABLISHED
        sa.established_at = now
        sa.last_peer_activity = now
        self._arm_ike_timers(sa, now)
        for name in sa.pending_extra_children:
            self.create_child(sa.ike_id, name, now)
        sa.pending_extra_children = []
        old = self._sas.get(sa.reauth_of) if sa.reauth_of is not None else None
        if old is not None and old.state is IkeState.ESTABLISHED:
            # Make-before-break reauthentication: the new SA is up, retire the old one.
            old.rekeyed_to = sa.ike_id
            self.terminate(old.ike_id, now)
        self._events.append(
            ev.IkeSaUp(sa.ike_id, sa.name, sa.local, sa.remote, sa.local_id, sa.remote_id)
        )
        log.info(
            "IKE SA %s[%d] established between %s[%s]...%s[%s]",
            sa.name,
            sa.ike_id,
            sa.local[0],
            sa.local_id,
            sa.remote[0],
            sa.remote_id,
        )

    # ------------------------------------------------------------------ INFORMATIONAL

    def _informational_request(
        self, sa: IkeSa, header: IkeHeader, payloads: tuple[Payload, ...], now: float
    ) -> None:
        reply: list[Payload] = []
        delete_ike = False
        closed: list[ChildConfig] = []
        for payload in payloads:
            if isinstance(payload, Delete):
                if payload.protocol == ProtocolId.IKE:
                    delete_ike = True
                elif payload.protocol in (ProtocolId.ESP, ProtocolId.AH):
                    before = {c.child_id: c for c in sa.children.values()}
                    answer = self._peer_deletes(sa, payload)
                    closed += [
                        c.config
                        for i, c in before.items()
                        if i not in sa.children
                        and c.replacement is None
                        and c.peer_rekey is None
                        and c.state != "DELETING"
                    ]
                    if answer is not None:
                        reply.append(answer)
            elif isinstance(payload, Notify) and payload.notify_type == (
                NotifyType.AUTHENTICATION_FAILED
            ):
                self._fail(
                    sa, NotifyType.AUTHENTICATION_FAILED, "peer rejected our authentication", True
                )
                delete_ike = True
        if delete_ike:
            self._respond(sa, header, [])
            self._destroy(sa, "deleted by peer", by_peer=True)
            return
        self._respond(sa, header, reply)
        if closed and sa.connection is not None:
            self._after_child_close(sa, closed, now)

    def _after_child_close(self, sa: IkeSa, closed: list[ChildConfig], now: float) -> None:
        """close_action for Child SAs the peer deleted (not rekeyed)."""
        assert sa.connection is not None
        for config in closed:
            if config.close_action == "start":
                self.create_child(sa.ike_id, config.name, now)
            elif config.close_action == "trap":
                self._events.append(ev.TrapRequested(sa.connection.name, config.name))

    # ------------------------------------------------------------------ responses on an SA

    def _response(
        self,
        sa: IkeSa,
        data: bytes,
        message: Message,
        local: ev.Address,
        remote: ev.Address,
        now: float,
    ) -> None:
        pending = sa.outstanding
        if pending is None or message.header.message_id != pending.message_id:
            self.drops.drop("response without a matching request", now)
            return
        last = message.payloads[-1] if message.payloads else None
        if not isinstance(last, SK | SKF) or (isinstance(last, SKF) and not sa.fragmentation):
            if pending.deletes_ike and _only_invalid_ike_spi(message):
                # §2.21.4: not authentic, but it can only end a deletion we started anyway:
                # the peer has forgotten the SA (the response to our Delete was lost).
                log.info("IKE SA %d: peer no longer knows it (INVALID_IKE_SPI)", sa.ike_id)
                sa.outstanding = None
                pending.on_response(message, (), now)
                return
            self.drops.drop("response without an SK payload", now)
            return
        assert sa.sk_in is not None
        try:
            payloads = self._unprotect(sa, data, message, pending.message_id, True, now)
            if payloads is None:
                return
        except CryptoError as exc:
            self.drops.drop("integrity check failed", now, f"IKE SA {sa.ike_id}: {exc}")
            return
        except DecodeError as exc:
            self.drops.drop("malformed protected payloads", now, exc.detail)
            return
        sa.outstanding = None
        sa.last_peer_activity = now
        self._follow_peer(sa, local, remote)
        pending.on_response(message, payloads, now)
        if sa.state is not IkeState.DEAD and sa.outstanding is None and sa.queued:
            sa.queued.pop(0)(now)

    # ------------------------------------------------------------------ identities and PSK

    @staticmethod
    def _resolve(selectors: Sequence[Selector], address: str) -> tuple[Selector, ...]:
        return _resolve_ts(selectors, address)

    def _local_identity(self, conn: Connection, local: ev.Address) -> Identity:
        return self.auth.local_identity(conn, local[0])

    def _remote_identity(self, conn: Connection) -> Identity | None:
        return conn.remote.id


# ---------------------------------------------------------------------- helpers


def _describe_proposal(proposal: Proposal) -> str:
    try:
        return format_proposal(proposal)
    except (ValueError, KeyError):
        return "/".join(f"{int(t.type)}:{int(t.id)}" for t in proposal.transforms)


def _only_invalid_ike_spi(message: Message) -> bool:
    """An unprotected INFORMATIONAL carrying just INVALID_IKE_SPI (§2.21.4)."""
    return message.header.exchange == ExchangeType.INFORMATIONAL and [
        n.notify_type for n in message.notifies()
    ] == [NotifyType.INVALID_IKE_SPI]


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def _id_body(payload: IDi | IDr) -> bytes:
    """ID payload body as signed in §2.15: type, three reserved octets, data."""
    return bytes([int(payload.id_type), 0, 0, 0]) + payload.data


def _addr_matches(specs: Sequence[str], address: str) -> bool:
    """Does ``address`` fit one of a connection's local_addrs/remote_addrs entries?"""
    if not specs:
        return True
    ip = ipaddress.ip_address(address)
    for spec in specs:
        spec = spec.strip()
        if spec in ("%any", "%any4", "%any6", ""):
            if (spec == "%any4" and ip.version != 4) or (spec == "%any6" and ip.version != 6):
                continue
            return True
        try:
            if "-" in spec:
                lo, hi = (ipaddress.ip_address(x.strip()) for x in spec.split("-", 1))
                if lo.version == ip.version and lo <= ip <= hi:  # type: ignore[operator]
                    return True
            elif ip in ipaddress.ip_network(spec, strict=False):
                return True
        except ValueError:
            continue  # a host name: resolved by the daemon, not matched here
    return False


def _resolve_ts(selectors: Sequence[Selector], address: str) -> tuple[Selector, ...]:
    """Replace 'dynamic' selectors with the host's own address (swanctl.conf semantics)."""
    return resolve_dynamic(selectors, address)


def _concrete_id(identity: Identity) -> bool:
    """An identity we may name in IDr: not %any and, for DNs, without wildcards."""
    return not identity.is_any and b"*" not in identity.data
