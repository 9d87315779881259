"""CREATE_CHILD_SA for Child SAs (RFC 7296 §1.3.1, §1.3.3, §2.8, §2.8.1): extra Child SAs,
rekeying with and without PFS, make-before-break, simultaneous-rekey collisions, deletes.

A mixin of :class:`petrel.ike.engine.IkeEngine`: it works on the engine's SAs and helpers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..crypto.errors import CryptoError, InvalidPublicValue, UnsupportedAlgorithm
from ..crypto.ke import KeyExchange, new_key_exchange, respond_key_exchange
from ..policy.connection import ChildConfig
from ..policy.selectors import Selector, all_within, narrow
from ..wire.payloads import KE, SA, Delete, Nonce, Notify, Payload, Proposal, TSi, TSr, first_of
from ..wire.registry import ExchangeType, KeId, NotifyType, ProtocolId, is_error_notify, name_of
from .negotiation import (
    algorithms_of,
    first_ke_group,
    offers_group,
    proposal_accepted,
    select_proposal,
    strip_ke,
    with_spi,
    without_ke,
)
from .sa import ChildSa, IkeSa, IkeState

if TYPE_CHECKING:
    from ..wire.payloads import IkeHeader, Message
    from .engine import IkeEngine

log = logging.getLogger("petrel.ike")

REKEY_LINGER = 2.0  # seconds an old inbound SA keeps receiving after its replacement is up
# Seconds outbound traffic of a Child SA that the peer deleted without a replacement waits for
# a new SA of that child (strongSwan deletes an expired SA, then re-creates it at once).
PEER_DELETE_HOLD = 2.0
TEMPORARY_FAILURE_RETRY = (1.0, 3.0)  # seconds, a random delay in this range (§2.25)


def _spi(value: int) -> bytes:
    return value.to_bytes(4, "big")


class CreateChildMixin:
    """Child SA creation, rekeying and deletion on an established IKE SA."""

    # ---------------------------------------------------------------- commands

    def create_child(self: IkeEngine, ike_id: int, child_name: str, now: float) -> bool:
        """Negotiate another Child SA for ``child_name`` on an established IKE SA (§1.3.1)."""
        self._now = now
        sa = self._sas.get(ike_id)
        if sa is None or sa.connection is None or child_name not in sa.connection.children:
            return False
        config = sa.connection.children[child_name]
        self._enqueue(sa, lambda now: self._start_create_child(sa, config, now), now)
        return True

    def rekey_child(self: IkeEngine, ike_id: int, child_id: int, now: float) -> bool:
        """Rekey a Child SA (§1.3.3): new SA first, then delete the old one."""
        self._now = now
        sa = self._sas.get(ike_id)
        child = sa.children.get(child_id) if sa else None
        if sa is None or child is None or child.state != "INSTALLED":
            return False
        child.state = "REKEYING"

        def start(now: float) -> None:
            if sa.children.get(child_id) is child and child.state == "REKEYING":
                self._start_create_child(sa, child.config, now, rekey_of=child)

        self._enqueue(sa, start, now)
        return True

    def delete_child(self: IkeEngine, ike_id: int, child_id: int, now: float) -> bool:
        """Delete a Child SA with the peer (INFORMATIONAL with Delete, §1.4.1)."""
        self._now = now
        sa = self._sas.get(ike_id)
        child = sa.children.get(child_id) if sa else None
        if sa is None or child is None or child.state == "DELETING":
            return False
        self._send_child_delete(sa, child, now, "deleted by us")
        return True

    # ---------------------------------------------------------------- initiator

    def _start_create_child(
        self: IkeEngine,
        sa: IkeSa,
        config: ChildConfig,
        now: float,
        rekey_of: ChildSa | None = None,
        group: int | None = None,
    ) -> None:
        if sa.state is not IkeState.ESTABLISHED:
            if rekey_of is not None:
                rekey_of.state = "INSTALLED"
            return
        spi_in = self._new_child_spi()
        proposals = with_spi(config.esp_proposals, _spi(spi_in))
        ni = self.random(self.settings.nonce_size)
        if group is None:
            group = first_ke_group(proposals)
        key_exchange: KeyExchange | None = new_key_exchange(KeId(group)) if group else None
        if rekey_of is not None:
            local_ts, remote_ts = rekey_of.local_ts, rekey_of.remote_ts
        else:
            local_ts = self._resolve(config.local_ts, sa.local[0])
            remote_ts = self._resolve(config.remote_ts, sa.remote[0])
        payloads: list[Payload] = []
        if rekey_of is not None:
            payloads.append(Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, _spi(rekey_of.spi_in)))
        payloads += [SA(proposals), Nonce(ni)]
        if key_exchange is not None:
            payloads.append(KE(key_exchange.group, key_exchange.public_value()))
        payloads += [
            TSi(tuple(s.to_wire() for s in local_ts)),
            TSr(tuple(s.to_wire() for s in remote_ts)),
        ]

        def on_response(message: Message, reply: tuple[Payload, ...], now: float) -> None:
            self._create_child_response(
                sa,
                config,
                rekey_of,
                spi_in,
                proposals,
                ni,
                key_exchange,
                local_ts,
                remote_ts,
                reply,
                now,
            )

        what = f"rekeying {config.name}{{{rekey_of.child_id}}}" if rekey_of else "creating"
        log.info("IKE SA %d: CREATE_CHILD_SA %s %s", sa.ike_id, what, config.name)
        self._request(sa, ExchangeType.CREATE_CHILD_SA, payloads, now, on_response)

    def _create_child_response(
        self: IkeEngine,
        sa: IkeSa,
        config: ChildConfig,
        rekey_of: ChildSa | None,
        spi_in: int,
        proposals: tuple[Proposal, ...],
        ni: bytes,
        key_exchange: KeyExchange | None,
        local_ts: tuple[Selector, ...],
        remote_ts: tuple[Selector, ...],
        reply: tuple[Payload, ...],
        now: float,
    ) -> None:
        notifies = [p for p in reply if isinstance(p, Notify)]
        errors = {int(n.notify_type): n for n in notifies if is_error_notify(n.notify_type)}
        if NotifyType.INVALID_KE_PAYLOAD in errors:
            data = errors[NotifyType.INVALID_KE_PAYLOAD].data
            group = int.from_bytes(data, "big") if len(data) == 2 else 0
            if (
                group
                and offers_group(config.esp_proposals, group)
                and (key_exchange is None or group != int(key_exchange.group))
            ):
                log.info(
                    "IKE SA %d: peer wants KE %s for the Child SA, retrying",
                    sa.ike_id,
                    name_of(group, KeId),
                )
                self._start_create_child(sa, config, now, rekey_of, group)
                return
        if NotifyType.TEMPORARY_FAILURE in errors:
            delay = TEMPORARY_FAILURE_RETRY[0] + self._jitter(
                TEMPORARY_FAILURE_RETRY[1] - TEMPORARY_FAILURE_RETRY[0]
            )
            log.info("IKE SA %d: TEMPORARY_FAILURE, retrying in %.1f s", sa.ike_id, delay)
            if rekey_of is not None:
                sa.timers[f"rekey-child-{rekey_of.child_id}"] = now + delay
                rekey_of.state = "INSTALLED"
            else:
                sa.timers[f"create-child-{config.name}"] = now + delay
            return
        if errors:
            code = next(iter(errors))
            self._fail(sa, code, f"CREATE_CHILD_SA for {config.name} refused", True)
            if rekey_of is not None and rekey_of.state == "REKEYING":
                rekey_of.state = "INSTALLED"
                if code == NotifyType.CHILD_SA_NOT_FOUND:
                    self._child_down(sa, rekey_of, "peer no longer has it")
            return
        sa_payload = first_of(reply, SA)
        nonce = first_of(reply, Nonce)
        tsi = first_of(reply, TSi)
        tsr = first_of(reply, TSr)
        ke = first_of(reply, KE)
        problem = None
        chosen = None
        shared = b""
        if (
            not isinstance(sa_payload, SA)
            or not isinstance(nonce, Nonce)
            or not isinstance(tsi, TSi)
            or not isinstance(tsr, TSr)
            or len(sa_payload.proposals) != 1
            or not 16 <= len(nonce.data) <= 256
        ):
            problem = "CREATE_CHILD_SA response lacks SA, Nonce, TSi or TSr"
        else:
            chosen = sa_payload.proposals[0]
            if len(chosen.spi) != 4 or not proposal_accepted(chosen, proposals):
                problem = "responder chose an ESP proposal we did not offer"
        if problem is None and chosen is not None:
            try:
                alg = algorithms_of(chosen)
                if alg.ke is not None:
                    if (
                        key_exchange is None
                        or not isinstance(ke, KE)
                        or int(ke.group) != int(alg.ke)
                        or int(key_exchange.group) != int(alg.ke)
                    ):
                        raise UnsupportedAlgorithm("KE payload does not match the chosen group")
                    shared = key_exchange.shared_secret(ke.data)
                new_local = tuple(Selector.from_wire(t) for t in tsi.selectors)  # type: ignore[union-attr]
                new_remote = tuple(Selector.from_wire(t) for t in tsr.selectors)  # type: ignore[union-attr]
                if not all_within(new_local, local_ts) or not all_within(new_remote, remote_ts):
                    problem = "responder widened the traffic selectors"
            except (CryptoError, ValueError) as exc:
                problem = f"invalid CREATE_CHILD_SA response: {exc}"
        if problem is not None or chosen is None or not isinstance(nonce, Nonce):
            self._fail(sa, NotifyType.NO_PROPOSAL_CHOSEN, problem or "invalid response", False)
            if rekey_of is not None and rekey_of.state == "REKEYING":
                rekey_of.state = "INSTALLED"
            if chosen is not None and len(chosen.spi) == 4:
                self._delete_child_spi(sa, spi_in, now)
            return
        new = self._install_child(
            sa,
            config,
            spi_in,
            int.from_bytes(chosen.spi, "big"),
            chosen,
            new_local,
            new_remote,
            now,
            we_initiated=True,
            ni=ni,
            nr=nonce.data,
            shared=shared,
        )
        if rekey_of is None:
            return
        rekey_of.our_rekey = new.child_id
        self._after_rekey(sa, rekey_of, now)

    # ---------------------------------------------------------------- responder

    def _create_child_request(
        self: IkeEngine, sa: IkeSa, header: IkeHeader, payloads: tuple[Payload, ...], now: float
    ) -> None:
        sa_payload = first_of(payloads, SA)
        if (
            isinstance(sa_payload, SA)
            and sa_payload.proposals
            and int(sa_payload.proposals[0].protocol) == ProtocolId.IKE
        ):
            self._ike_rekey_request(sa, header, payloads, now)
            return
        reply = self._create_child_reply(sa, payloads, now)
        self._respond(sa, header, reply)
        # Announced after the response is queued: the new inbound SA is ready before the
        # peer can use it, and no key leaves with an unsent reply.
        for child_id in self._announce_queue:
            child = sa.children.get(child_id)
            if child is not None:
                self._announce_child(sa, child)
        self._announce_queue.clear()

    def _create_child_reply(
        self: IkeEngine, sa: IkeSa, payloads: tuple[Payload, ...], now: float
    ) -> list[Payload]:
        conn = sa.connection
        assert conn is not None
        nonce = first_of(payloads, Nonce)
        ke = first_of(payloads, KE)
        if not isinstance(nonce, Nonce) or not 16 <= len(nonce.data) <= 256:
            return [Notify(NotifyType.INVALID_SYNTAX)]
        if sa.rekeying_ike:
            return [Notify(NotifyType.TEMPORARY_FAILURE)]  # §2.25: our IKE rekey is in flight
        rekey = next(
            (p for p in payloads if isinstance(p, Notify) and p.notify_type == NotifyType.REKEY_SA),
            None,
        )
        old: ChildSa | None = None
        if rekey is not None:
            old_spi = int.from_bytes(rekey.spi, "big") if len(rekey.spi) == 4 else -1
            old = next((c for c in sa.children.values() if c.spi_out == old_spi), None)
            if old is None or old.state == "DELETING":
                return [Notify(NotifyType.CHILD_SA_NOT_FOUND, b"", rekey.protocol, rekey.spi)]
        choice = self._choose_child(
            sa, [old.config] if old is not None else list(conn.children.values()), payloads
        )
        if isinstance(choice, list):
            return choice
        config, local_ts, remote_ts, chosen = choice
        alg = algorithms_of(chosen)
        nr = self.random(self.settings.nonce_size)
        reply_ke: list[Payload] = []
        shared = b""
        if alg.ke is not None:
            if not isinstance(ke, KE) or int(ke.group) != int(alg.ke):
                return [Notify(NotifyType.INVALID_KE_PAYLOAD, int(alg.ke).to_bytes(2, "big"))]
            try:
                public, shared = respond_key_exchange(alg.ke, ke.data)
            except (InvalidPublicValue, CryptoError):
                return [Notify(NotifyType.INVALID_SYNTAX)]
            reply_ke.append(KE(int(alg.ke), public))
        new = self._accept_child(
            sa, choice, now, ni=nonce.data, nr=nr, shared=shared, outbound_active=old is None
        )
        self._announce_queue.append(new.child_id)
        if old is not None:
            old.peer_rekey = new.child_id
            log.info(
                "IKE SA %d: peer rekeys %s{%d} as {%d}",
                sa.ike_id,
                config.name,
                old.child_id,
                new.child_id,
            )
            if old.state in ("REKEYING", "REKEYED") and old.our_rekey is not None:
                self._after_rekey(sa, old, now)
        reply = self._child_reply(chosen, new.spi_in, local_ts, remote_ts)
        return [reply[0], Nonce(nr), *reply_ke, *reply[1:]]

    def _accept_child(
        self: IkeEngine,
        sa: IkeSa,
        choice: tuple[ChildConfig, tuple[Selector, ...], tuple[Selector, ...], Proposal],
        now: float,
        *,
        ni: bytes,
        nr: bytes,
        shared: bytes = b"",
        outbound_active: bool = True,
    ) -> ChildSa:
        """Responder: install the Child SA of :meth:`_choose_child`'s choice under a fresh
        inbound SPI; announced by the caller once its response is sent."""
        config, local_ts, remote_ts, chosen = choice
        return self._install_child(
            sa,
            config,
            self._new_child_spi(),
            int.from_bytes(chosen.spi, "big"),
            chosen,
            local_ts,
            remote_ts,
            now,
            announce=False,
            we_initiated=False,
            ni=ni,
            nr=nr,
            shared=shared,
            outbound_active=outbound_active,
        )

    def _choose_child(
        self: IkeEngine,
        sa: IkeSa,
        configs: list[ChildConfig],
        payloads: tuple[Payload, ...],
        ike_auth: bool = False,
    ) -> tuple[ChildConfig, tuple[Selector, ...], tuple[Selector, ...], Proposal] | list[Payload]:
        """Responder's choice (§2.9, §3.3): the first child whose selectors narrow the
        proposed ones to something non-empty, and an ESP proposal of its; or the error notify."""
        sa_payload, tsi, tsr = (first_of(payloads, k) for k in (SA, TSi, TSr))
        if not isinstance(sa_payload, SA) or not isinstance(tsi, TSi) or not isinstance(tsr, TSr):
            return [Notify(NotifyType.INVALID_SYNTAX)]
        try:
            their_ts = tuple(Selector.from_wire(t) for t in tsi.selectors)
            our_ts = tuple(Selector.from_wire(t) for t in tsr.selectors)
        except ValueError:
            return [Notify(NotifyType.INVALID_SYNTAX)]
        for config in configs:
            remote_ts = narrow(their_ts, self._resolve(config.remote_ts, sa.remote[0]))
            local_ts = narrow(our_ts, self._resolve(config.local_ts, sa.local[0]))
            if remote_ts and local_ts:
                break
        else:
            self._fail(
                sa, NotifyType.TS_UNACCEPTABLE, "no child matches the traffic selectors", False
            )
            return [Notify(NotifyType.TS_UNACCEPTABLE)]
        offered = tuple(p for p in sa_payload.proposals if len(p.spi) == 4)
        mine = config.esp_proposals
        if ike_auth:  # no KE payload in IKE_AUTH: PFS settings do not apply (§1.2)
            offered = tuple(strip_ke(p) for p in offered)
            mine = without_ke(mine)
        chosen = select_proposal(offered, mine)
        try:
            if chosen is not None:
                algorithms_of(chosen)
        except UnsupportedAlgorithm:
            chosen = None
        if chosen is None:
            self._fail(
                sa,
                NotifyType.NO_PROPOSAL_CHOSEN,
                f"child {config.name}: no ESP proposal chosen",
                False,
            )
            return [Notify(NotifyType.NO_PROPOSAL_CHOSEN)]
        return config, local_ts, remote_ts, chosen

    @staticmethod
    def _child_reply(
        chosen: Proposal,
        spi_in: int,
        local_ts: tuple[Selector, ...],
        remote_ts: tuple[Selector, ...],
    ) -> list[Payload]:
        """SA (the chosen proposal with our SPI), TSi and TSr of a responder's answer."""
        reply = Proposal(chosen.number, chosen.protocol, _spi(spi_in), chosen.transforms)
        return [
            SA((reply,)),
            TSi(tuple(s.to_wire() for s in remote_ts)),
            TSr(tuple(s.to_wire() for s in local_ts)),
        ]

    # ---------------------------------------------------------------- rekey completion

    def _after_rekey(self: IkeEngine, sa: IkeSa, old: ChildSa, now: float) -> None:
        """Our rekey of ``old`` completed: delete the old SA, or settle a collision (§2.8.1)."""
        ours = sa.children.get(old.our_rekey) if old.our_rekey is not None else None
        theirs = sa.children.get(old.peer_rekey) if old.peer_rekey is not None else None
        if ours is None:
            return
        if theirs is None:
            old.state = "REKEYED"
            old.replacement = ours.child_id
            self._send_child_delete(sa, old, now, "rekeyed", linger=True)
            return
        # Both sides rekeyed ``old``: the new SA created with the lowest of the four nonces is
        # redundant; its initiator deletes it.  The winner's initiator deletes the old SA.
        lost = ours.lowest_nonce() < theirs.lowest_nonce()
        log.info(
            "rekey collision on %s{%d}: ours {%d} %s the peer's {%d}",
            old.config.name,
            old.child_id,
            ours.child_id,
            "loses to" if lost else "wins over",
            theirs.child_id,
        )
        old.replacement = (theirs if lost else ours).child_id
        old.state = "REKEYED"
        if lost:
            self._send_child_delete(sa, ours, now, "redundant after a rekey collision")
        else:
            self._send_child_delete(sa, old, now, "rekeyed", linger=True)

    # ---------------------------------------------------------------- deletes

    def _send_child_delete(
        self: IkeEngine, sa: IkeSa, child: ChildSa, now: float, reason: str, linger: bool = False
    ) -> None:
        if child.state == "DELETING":
            return
        child.state = "DELETING"
        for name in (f"rekey-child-{child.child_id}", f"expire-child-{child.child_id}"):
            sa.timers.pop(name, None)

        def send(now: float) -> None:
            if sa.children.get(child.child_id) is not child:
                return  # the peer deleted it meanwhile
            self._request(
                sa,
                ExchangeType.INFORMATIONAL,
                [Delete(ProtocolId.ESP, (_spi(child.spi_in),), 4)],
                now,
                lambda _m, _p, now: self._child_deleted(sa, child, reason, linger),
            )

        self._enqueue(sa, send, now)

    def _child_deleted(
        self: IkeEngine, sa: IkeSa, child: ChildSa, reason: str, linger: bool
    ) -> None:
        if sa.children.get(child.child_id) is child:
            self._child_down(sa, child, reason, linger=REKEY_LINGER if linger else 0.0)

    def _peer_deletes(self: IkeEngine, sa: IkeSa, delete: Delete) -> Delete | None:
        """Handle a Delete for Child SAs (§1.4.1); returns the Delete to answer with."""
        ours = []
        for spi in delete.spis:
            spi_out = int.from_bytes(spi, "big")
            for child in list(sa.children.values()):
                if child.spi_out != spi_out:
                    continue
                ours_too = child.state == "DELETING"
                if not ours_too:
                    # Both deleting at once: answer without it (§1.4.1).
                    ours.append(_spi(child.spi_in))
                rekeyed = child.replacement is not None or child.peer_rekey is not None
                self._child_down(
                    sa,
                    child,
                    "rekeyed" if rekeyed else "deleted by peer",
                    linger=REKEY_LINGER if rekeyed else 0.0,
                    hold=0.0 if rekeyed or ours_too else PEER_DELETE_HOLD,
                )
        return Delete(delete.protocol, tuple(ours), 4) if ours else None
