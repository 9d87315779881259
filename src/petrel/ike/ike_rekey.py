"""IKE SA rekeying with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.18) and its collisions (§2.8.1).

The new IKE SA gets new SPIs and keys (SKEYSEED = prf_old(SK_d_old, g^ir | Ni | Nr)); the Child
SAs move to it; the initiator of the surviving rekey deletes the old IKE SA.
A mixin of :class:`petrel.ike.engine.IkeEngine`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..crypto.errors import CryptoError, InvalidPublicValue, UnsupportedAlgorithm
from ..crypto.kdf import rekey_skeyseed
from ..crypto.ke import KeyExchange, new_key_exchange, respond_key_exchange
from ..wire.payloads import KE, SA, Delete, Nonce, Notify, Payload, Proposal, first_of
from ..wire.registry import ExchangeType, KeId, NotifyType, ProtocolId, is_error_notify
from . import events as ev
from .negotiation import algorithms_of, offers_group, proposal_accepted, select_proposal, with_spi
from .sa import IkeSa, IkeState

if TYPE_CHECKING:
    from ..wire.payloads import IkeHeader, Message
    from .engine import IkeEngine

log = logging.getLogger("petrel.ike")


class IkeRekeyMixin:
    """Rekeying of the IKE SA itself."""

    def rekey_ike(self: IkeEngine, ike_id: int, now: float) -> bool:
        self._now = now
        sa = self._sas.get(ike_id)
        if sa is None or sa.state is not IkeState.ESTABLISHED or sa.rekeying_ike:
            return False
        sa.rekeying_ike = True
        self._enqueue(sa, lambda now: self._start_ike_rekey(sa, now), now)
        return True

    def _start_ike_rekey(self: IkeEngine, sa: IkeSa, now: float, group: int | None = None) -> None:
        conn = sa.connection
        if sa.state is not IkeState.ESTABLISHED or conn is None or sa.algorithms is None:
            sa.rekeying_ike = False
            return
        new_spi = self._new_ike_spi()
        proposals = with_spi(conn.proposals, new_spi)
        group = group or int(sa.algorithms.ke or 0)
        key_exchange = new_key_exchange(KeId(group))
        ni = self.random(self.settings.nonce_size)
        payloads: list[Payload] = [SA(proposals), Nonce(ni), KE(group, key_exchange.public_value())]

        def on_response(message: Message, reply: tuple[Payload, ...], now: float) -> None:
            self._ike_rekey_response(sa, new_spi, proposals, ni, key_exchange, reply, now)

        log.info("IKE SA %d: rekeying the IKE SA", sa.ike_id)
        self._request(sa, ExchangeType.CREATE_CHILD_SA, payloads, now, on_response)

    def _ike_rekey_response(
        self: IkeEngine,
        sa: IkeSa,
        new_spi: bytes,
        proposals: tuple[Proposal, ...],
        ni: bytes,
        key_exchange: KeyExchange,
        reply: tuple[Payload, ...],
        now: float,
    ) -> None:
        conn = sa.connection
        assert conn is not None
        errors = {
            int(p.notify_type): p
            for p in reply
            if isinstance(p, Notify) and is_error_notify(p.notify_type)
        }
        if NotifyType.INVALID_KE_PAYLOAD in errors:
            data = errors[NotifyType.INVALID_KE_PAYLOAD].data
            group = int.from_bytes(data, "big") if len(data) == 2 else 0
            if group and group != int(key_exchange.group) and offers_group(conn.proposals, group):
                self._start_ike_rekey(sa, now, group)
                return
        if errors:
            sa.rekeying_ike = False
            retry = 10.0 + self._jitter(10.0)
            code = next(iter(errors))
            if code == NotifyType.TEMPORARY_FAILURE:
                retry = 1.0 + self._jitter(2.0)
            log.info(
                "IKE SA %d: IKE rekey refused (%s), retrying in %.0f s",
                sa.ike_id,
                NotifyType(code).name if code in NotifyType._value2member_map_ else code,
                retry,
            )
            sa.timers["rekey-ike"] = now + retry
            return
        sa_payload = first_of(reply, SA)
        nonce = first_of(reply, Nonce)
        ke = first_of(reply, KE)
        try:
            if (
                not isinstance(sa_payload, SA)
                or not isinstance(nonce, Nonce)
                or not isinstance(ke, KE)
                or len(sa_payload.proposals) != 1
                or not 16 <= len(nonce.data) <= 256
            ):
                raise ValueError("IKE rekey response lacks SA, Nonce or KE")
            chosen = sa_payload.proposals[0]
            if len(chosen.spi) != 8 or not proposal_accepted(chosen, proposals):
                raise ValueError("responder chose a proposal we did not offer")
            alg = algorithms_of(chosen)
            if (
                alg.ke is None
                or int(alg.ke) != int(ke.group) != 0
                or int(ke.group) != int(key_exchange.group)
            ):
                raise ValueError("KE group differs from the chosen one")
            shared = key_exchange.shared_secret(ke.data)
        except (CryptoError, ValueError) as exc:
            sa.rekeying_ike = False
            self._fail(sa, NotifyType.INVALID_SYNTAX, f"IKE rekey: {exc}", False)
            sa.timers["rekey-ike"] = now + 30.0
            return
        new = self._ike_sa_from_rekey(
            sa, True, new_spi, chosen.spi, ni, nonce.data, shared, chosen, now
        )
        sa.our_ike_rekey = new.ike_id
        self._settle_ike_rekey(sa, now)

    def _ike_rekey_request(
        self: IkeEngine, sa: IkeSa, header: IkeHeader, payloads: tuple[Payload, ...], now: float
    ) -> None:
        conn = sa.connection
        assert conn is not None
        sa_payload = first_of(payloads, SA)
        nonce = first_of(payloads, Nonce)
        ke = first_of(payloads, KE)
        if (
            not isinstance(sa_payload, SA)
            or not isinstance(nonce, Nonce)
            or not isinstance(ke, KE)
            or not 16 <= len(nonce.data) <= 256
        ):
            self._respond(sa, header, [Notify(NotifyType.INVALID_SYNTAX)])
            return
        if sa.outstanding is not None and not sa.rekeying_ike:
            # A Child SA exchange of ours is in flight: let the peer retry (§2.25).
            self._respond(sa, header, [Notify(NotifyType.TEMPORARY_FAILURE)])
            return
        offered = tuple(p for p in sa_payload.proposals if len(p.spi) == 8)
        chosen = select_proposal(offered, conn.proposals)
        try:
            alg = algorithms_of(chosen) if chosen is not None else None
        except UnsupportedAlgorithm:
            alg = None
        if chosen is None or alg is None or alg.ke is None:
            self._respond(sa, header, [Notify(NotifyType.NO_PROPOSAL_CHOSEN)])
            return
        if int(ke.group) != int(alg.ke):
            self._respond(
                sa, header, [Notify(NotifyType.INVALID_KE_PAYLOAD, int(alg.ke).to_bytes(2, "big"))]
            )
            return
        try:
            public, shared = respond_key_exchange(alg.ke, ke.data)
        except (InvalidPublicValue, CryptoError):
            self._respond(sa, header, [Notify(NotifyType.INVALID_SYNTAX)])
            return
        nr = self.random(self.settings.nonce_size)
        new_spi = self._new_ike_spi()
        new = self._ike_sa_from_rekey(
            sa, False, chosen.spi, new_spi, nonce.data, nr, shared, chosen, now
        )
        sa.peer_ike_rekey = new.ike_id
        reply = Proposal(chosen.number, chosen.protocol, new_spi, chosen.transforms)
        self._respond(sa, header, [SA((reply,)), Nonce(nr), KE(int(alg.ke), public)])
        if sa.our_ike_rekey is not None:
            self._settle_ike_rekey(sa, now)

    def _ike_sa_from_rekey(
        self: IkeEngine,
        old: IkeSa,
        we_initiated: bool,
        spi_i: bytes,
        spi_r: bytes,
        ni: bytes,
        nr: bytes,
        shared: bytes,
        chosen: Proposal,
        now: float,
    ) -> IkeSa:
        """The new IKE SA of a rekey, keyed per §2.18, Child SAs moved unless a rekey of ours
        already took them (then a collision decides)."""
        assert old.keys is not None and old.algorithms is not None and old.algorithms.prf
        alg = algorithms_of(chosen)
        new = IkeSa(
            ike_id=self._new_ike_id(),
            initiator=we_initiated,
            spi_i=spi_i,
            spi_r=spi_r,
            local=old.local,
            remote=old.remote,
            state=IkeState.ESTABLISHED,
            created_at=now,
            connection=old.connection,
            ni=ni,
            nr=nr,
            ke_group=int(alg.ke or 0),
            algorithms=alg,
        )
        new.local_id, new.remote_id = old.local_id, old.remote_id
        new.nat_local, new.nat_remote, new.nat_fake = old.nat_local, old.nat_remote, old.nat_fake
        new.established_at = now
        new.last_peer_activity = now
        new.rekey_ni, new.rekey_nr = ni, nr
        seed = rekey_skeyseed(old.algorithms.prf, old.keys.sk_d, shared, ni, nr)
        self._key_ike_sa(new, seed)
        self._sas[new.ike_id] = new
        self._by_spi[(new.spi_i, new.spi_r)] = new
        if not (old.our_ike_rekey or old.peer_ike_rekey):
            self._move_children(old, new)
        self._events.append(ev.IkeSaRekeyed(old.ike_id, new.ike_id, new.name))
        self._arm_ike_timers(new, now)
        log.info(
            "IKE SA %s[%d] rekeyed as [%d] (SPIs %s_i %s_r)",
            new.name,
            old.ike_id,
            new.ike_id,
            spi_i.hex(),
            spi_r.hex(),
        )
        return new

    def _move_children(self: IkeEngine, old: IkeSa, new: IkeSa) -> None:
        for child_id, child in list(old.children.items()):
            new.children[child_id] = child
            for name in (f"rekey-child-{child_id}", f"expire-child-{child_id}"):
                if name in old.timers:
                    new.timers[name] = old.timers.pop(name)
        old.children.clear()
        old.rekeyed_to = new.ike_id

    def _settle_ike_rekey(self: IkeEngine, old: IkeSa, now: float) -> None:
        """Our IKE rekey completed: delete the old SA, or settle a collision (§2.8.1)."""
        ours = self._sas.get(old.our_ike_rekey) if old.our_ike_rekey else None
        theirs = self._sas.get(old.peer_ike_rekey) if old.peer_ike_rekey else None
        old.rekeying_ike = False
        if ours is None:
            return
        if theirs is not None and min(ours.ni, ours.nr) < min(theirs.ni, theirs.nr):
            log.info(
                "IKE rekey collision: ours [%d] loses to the peer's [%d]",
                ours.ike_id,
                theirs.ike_id,
            )
            self._move_children(ours if ours.children else old, theirs)
            old.rekeyed_to = theirs.ike_id
            self._delete_ike(ours, now, "redundant after a rekey collision")
            return
        if theirs is not None:
            log.info(
                "IKE rekey collision: ours [%d] wins over the peer's [%d]",
                ours.ike_id,
                theirs.ike_id,
            )
            self._move_children(theirs if theirs.children else old, ours)
        elif old.children:
            self._move_children(old, ours)
        old.rekeyed_to = ours.ike_id
        self._delete_ike(old, now, "rekeyed")

    def _delete_ike(self: IkeEngine, sa: IkeSa, now: float, reason: str) -> None:
        """Send Delete for an IKE SA and destroy it once answered (or given up on)."""
        sa.state = IkeState.DELETING

        def send(now: float) -> None:
            if sa.state is IkeState.DEAD:
                return
            self._request(
                sa,
                ExchangeType.INFORMATIONAL,
                [Delete(ProtocolId.IKE)],
                now,
                lambda _m, _p, _now: self._destroy(sa, reason),
                deletes_ike=True,
            )

        self._enqueue(sa, send, now)
