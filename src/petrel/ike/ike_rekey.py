"""IKE SA rekeying with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.18) and its collisions (§2.8.1).

The new IKE SA gets new SPIs and keys (SKEYSEED = prf_old(SK_d_old, g^ir | Ni | Nr)); the Child
SAs move to it; the initiator of the surviving rekey deletes the old IKE SA.
"""

from __future__ import annotations

import logging

from ..crypto.errors import CryptoError, InvalidPublicValue, UnsupportedAlgorithm
from ..crypto.kdf import rekey_skeyseed
from ..crypto.ke import KeyExchange
from ..wire.payloads import KE, SA, Message, Nonce, Notify, Payload, Proposal, first_of
from ..wire.registry import ExchangeType, KeId, NotifyType, ProtocolId, is_error_notify
from . import events as ev
from .ike_delete import delete_ike
from .keys import key_ike_sa
from .negotiation import algorithms_of, offers_group, proposal_accepted, select_proposal, with_spi
from .roaming import carry_update
from .sa import IkeSa, IkeState
from .services import IkeServices
from .task import Responder, Task
from .timers import REKEY_IKE, TimerKey

log = logging.getLogger("petrel.ike")


def is_ike_rekey(payloads: tuple[Payload, ...]) -> bool:
    """A CREATE_CHILD_SA whose SA payload proposes an IKE SA (§1.3.2)."""
    sa_payload = first_of(payloads, SA)
    return (
        isinstance(sa_payload, SA)
        and bool(sa_payload.proposals)
        and int(sa_payload.proposals[0].protocol) == ProtocolId.IKE
    )


class IkeRekey(Task):
    """Our rekey of the IKE SA."""

    exchange = ExchangeType.CREATE_CHILD_SA
    rekeys_ike = True

    def __init__(self) -> None:
        self.group: int | None = None  # the peer's INVALID_KE_PAYLOAD choice
        self.new_spi = b""
        self.proposals: tuple[Proposal, ...] = ()
        self.ni = b""
        self.key_exchange: KeyExchange | None = None

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        conn = sa.connection
        if sa.state is not IkeState.ESTABLISHED or conn is None or sa.algorithms is None:
            return None
        if sa.rekeyed_to is not None:
            return None  # already replaced (we answered the peer's rekey): nothing to rekey
        self.new_spi = ctx.new_ike_spi()
        self.proposals = with_spi(conn.proposals, self.new_spi)
        group = self.group or int(sa.algorithms.ke or 0)
        self.key_exchange = ctx.key_exchanges.new(KeId(group))
        self.ni = ctx.nonce()
        log.info("IKE SA %d: rekeying the IKE SA", sa.ike_id)
        return [SA(self.proposals), Nonce(self.ni), KE(group, self.key_exchange.public_value())]

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        conn = sa.connection
        key_exchange = self.key_exchange
        assert conn is not None and key_exchange is not None
        errors = {
            int(p.notify_type): p
            for p in payloads
            if isinstance(p, Notify) and is_error_notify(p.notify_type)
        }
        if NotifyType.INVALID_KE_PAYLOAD in errors:
            data = errors[NotifyType.INVALID_KE_PAYLOAD].data
            group = int.from_bytes(data, "big") if len(data) == 2 else 0
            if group and group != int(key_exchange.group) and offers_group(conn.proposals, group):
                self.group = group
                return True
        if errors:
            retry = 10.0 + ctx.jitter(10.0)
            code = next(iter(errors))
            if code == NotifyType.TEMPORARY_FAILURE:
                retry = 1.0 + ctx.jitter(2.0)
            log.info(
                "IKE SA %d: IKE rekey refused (%s), retrying in %.0f s",
                sa.ike_id,
                NotifyType(code).name if code in NotifyType._value2member_map_ else code,
                retry,
            )
            sa.timers[REKEY_IKE] = now + retry
            return False
        sa_payload = first_of(payloads, SA)
        nonce = first_of(payloads, Nonce)
        ke = first_of(payloads, KE)
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
            if len(chosen.spi) != 8 or not proposal_accepted(chosen, self.proposals):
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
            ctx.fail(sa, NotifyType.INVALID_SYNTAX, f"IKE rekey: {exc}", False)
            sa.timers[REKEY_IKE] = now + 30.0
            return False
        new = ike_sa_from_rekey(
            ctx, sa, True, self.new_spi, chosen.spi, self.ni, nonce.data, shared, chosen, now
        )
        sa.our_ike_rekey = new.ike_id
        settle_ike_rekey(ctx, sa, now)
        ctx.kick(new, now)  # a carried address update (roaming.carry_update)
        return False


class IkeRekeyResponder(Responder):
    """The peer rekeys the IKE SA."""

    def __init__(self) -> None:
        self.accepted = False

    def process_request(
        self, ctx: IkeServices, sa: IkeSa, payloads: tuple[Payload, ...], now: float
    ) -> list[Payload]:
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
            return [Notify(NotifyType.INVALID_SYNTAX)]
        if sa.outstanding is not None and not sa.rekeying_ike:
            # A Child SA exchange of ours is in flight: let the peer retry (§2.25).
            return [Notify(NotifyType.TEMPORARY_FAILURE)]
        offered = tuple(p for p in sa_payload.proposals if len(p.spi) == 8)
        chosen = select_proposal(offered, conn.proposals)
        try:
            alg = algorithms_of(chosen) if chosen is not None else None
        except UnsupportedAlgorithm:
            alg = None
        if chosen is None or alg is None or alg.ke is None:
            return [Notify(NotifyType.NO_PROPOSAL_CHOSEN)]
        if int(ke.group) != int(alg.ke):
            return [Notify(NotifyType.INVALID_KE_PAYLOAD, int(alg.ke).to_bytes(2, "big"))]
        try:
            public, shared = ctx.key_exchanges.respond(alg.ke, ke.data)
        except (InvalidPublicValue, CryptoError):
            return [Notify(NotifyType.INVALID_SYNTAX)]
        nr = ctx.nonce()
        new_spi = ctx.new_ike_spi()
        new = ike_sa_from_rekey(
            ctx, sa, False, chosen.spi, new_spi, nonce.data, nr, shared, chosen, now
        )
        sa.peer_ike_rekey = new.ike_id
        self.accepted = True
        reply = Proposal(chosen.number, chosen.protocol, new_spi, chosen.transforms)
        return [SA((reply,)), Nonce(nr), KE(int(alg.ke), public)]

    def complete(self, ctx: IkeServices, sa: IkeSa, now: float) -> None:
        new = ctx.sas.get(sa.peer_ike_rekey) if self.accepted and sa.peer_ike_rekey else None
        if new is not None:
            ctx.kick(new, now)  # the peer has our answer: a carried address update may go
        if self.accepted and sa.our_ike_rekey is not None:
            settle_ike_rekey(ctx, sa, now)


def ike_sa_from_rekey(
    ctx: IkeServices,
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
        ike_id=ctx.new_ike_id(),
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
    inherit(old, new)
    carry_update(old, new)
    new.established_at = now
    new.last_peer_activity = now
    seed = rekey_skeyseed(old.algorithms.prf, old.keys.sk_d, shared, ni, nr)
    key_ike_sa(new, seed, ctx.random)
    ctx.sas[new.ike_id] = new
    ctx.by_spi[(new.spi_i, new.spi_r)] = new
    if not (old.our_ike_rekey or old.peer_ike_rekey):
        move_children(old, new)
    ctx.events.append(ev.IkeSaRekeyed(old.ike_id, new.ike_id, new.name))
    ctx.arm_ike_timers(new, now)
    log.info(
        "IKE SA %s[%d] rekeyed as [%d] (SPIs %s_i %s_r)",
        new.name,
        old.ike_id,
        new.ike_id,
        spi_i.hex(),
        spi_r.hex(),
    )
    return new


def inherit(old: IkeSa, new: IkeSa) -> None:
    """What a rekeyed IKE SA keeps (as charon's inherit_pre): identities, NAT state, who
    first initiated, and the extensions negotiated once for the lineage (RFC 7383
    fragmentation, RFC 4555 MOBIKE, RFC 6023 childless support)."""
    new.local_id, new.remote_id = old.local_id, old.remote_id
    new.nat_local, new.nat_remote, new.nat_fake = old.nat_local, old.nat_remote, old.nat_fake
    new.original_initiator = old.original_initiator
    new.nat_dest_hash = old.nat_dest_hash  # new SPIs: the next check updates (§3.8)
    new.fragmentation, new.mobike = old.fragmentation, old.mobike
    new.peer_childless = old.peer_childless


def move_children(old: IkeSa, new: IkeSa) -> None:
    for child_id, child in list(old.children.items()):
        new.children[child_id] = child
        for key in TimerKey.of_child(child_id):
            if key in old.timers:
                new.timers[key] = old.timers.pop(key)
    old.children.clear()
    # The leases move too, unless an earlier move took them (a rekey collision, §2.8.1).
    if old.remote_vips:
        new.remote_vips, old.remote_vips = old.remote_vips, ()
    if old.local_vips:
        new.local_vips, old.local_vips = old.local_vips, ()
    old.rekeyed_to = new.ike_id


def settle_ike_rekey(ctx: IkeServices, old: IkeSa, now: float) -> None:
    """Our IKE rekey completed: delete the old SA, or settle a collision (§2.8.1)."""
    ours = ctx.sas.get(old.our_ike_rekey) if old.our_ike_rekey else None
    theirs = ctx.sas.get(old.peer_ike_rekey) if old.peer_ike_rekey else None
    if ours is None:
        return
    if theirs is not None and min(ours.ni, ours.nr) < min(theirs.ni, theirs.nr):
        log.info(
            "IKE rekey collision: ours [%d] loses to the peer's [%d]",
            ours.ike_id,
            theirs.ike_id,
            extra={"petrel_sa": (old.name, old.ike_id)},
        )
        move_children(ours if ours.children else old, theirs)
        old.rekeyed_to = theirs.ike_id
        delete_ike(ctx, ours, now, "redundant after a rekey collision")
        return
    if theirs is not None:
        log.info(
            "IKE rekey collision: ours [%d] wins over the peer's [%d]",
            ours.ike_id,
            theirs.ike_id,
            extra={"petrel_sa": (old.name, old.ike_id)},
        )
        move_children(theirs if theirs.children else old, ours)
    elif old.children:
        move_children(old, ours)
    old.rekeyed_to = ours.ike_id
    delete_ike(ctx, old, now, "rekeyed")
