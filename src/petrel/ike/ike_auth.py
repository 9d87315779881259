"""IKE_AUTH (RFC 7296 §1.2, §2.15, §2.4): identities and authentication through the
authenticators of :mod:`petrel.ike.auth`, INITIAL_CONTACT, and the first Child SA with
traffic selector narrowing (§2.9), as initiator and as responder."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..credentials.identities import format_identity, id_match
from ..policy.connection import ChildConfig, Connection
from ..policy.identity import Identity
from ..policy.selectors import Selector, all_within, narrow, resolve_dynamic
from ..wire.payloads import (
    AUTH,
    SA,
    IDi,
    IDr,
    Message,
    Notify,
    Payload,
    Proposal,
    TSi,
    TSr,
    first_of,
)
from ..wire.registry import ExchangeType, NotifyType, is_error_notify
from . import events as ev
from .auth import AuthFailure
from .auth.exchange import method_fits
from .child_create import accept_child, child_reply, choose_child
from .child_delete import delete_spi, spi_bytes
from .childless import plan_initiator, refusal_as_responder
from .config_payload import replied_addresses
from .ike_delete import delete_ike
from .mobike import agreed as mobike_agreed
from .negotiation import proposal_accepted, valid_esp_spi, with_spi, without_ke
from .roaming import note_answer as note_mobike
from .roaming import offer as mobike_offer
from .sa import IkeSa, IkeState
from .services import IkeServices
from .task import Notification, Responder, Task
from .uniqueness import enforce as enforce_uniqueness
from .vips import assign as assign_vips
from .vips_client import proposed_local_ts
from .vips_client import request as vip_request

log = logging.getLogger("petrel.ike")


@dataclass
class _ProposedChild:
    """The Child SA we proposed in IKE_AUTH and whose answer we await."""

    config: ChildConfig
    spi_in: int
    proposals: tuple[Proposal, ...]
    local_ts: tuple[Selector, ...]
    remote_ts: tuple[Selector, ...]


class IkeAuth(Task):
    """IKE_AUTH as initiator, with the first Child SA (``sa.initial_child``) unless the IKE SA
    is childless (:mod:`petrel.ike.childless`)."""

    exchange = ExchangeType.IKE_AUTH

    def __init__(self) -> None:
        self.child: _ProposedChild | None = None

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        conn = sa.connection
        assert conn is not None and sa.keys is not None and sa.algorithms is not None
        refused, first_child = plan_initiator(sa, conn)
        if refused is not None:
            log.warning("IKE SA %d (%s): %s", sa.ike_id, sa.name, refused)
            ctx.destroy(sa, "childless IKE SA impossible")
            return None
        sa.state = IkeState.AUTH_SENT
        my_id = ctx.local_identity(conn, sa.local)
        sa.local_id = format_identity(my_id)
        id_payload = IDi(my_id.id_type, my_id.data)
        try:
            *certs, auth = ctx.auth.own_payloads(sa, conn, my_id, id_payload)
        except AuthFailure as exc:
            ctx.fail(sa, NotifyType.AUTHENTICATION_FAILED, f"cannot authenticate: {exc}", False)
            ctx.destroy(sa, "no credentials")
            return None
        payloads: list[Payload] = [id_payload, *certs]
        if sa.reauth_of is None:
            payloads.append(Notify(NotifyType.INITIAL_CONTACT))
        payloads += ctx.auth.certreq([conn])
        remote_id = ctx.remote_identity(conn)
        if remote_id is not None and _concrete_id(remote_id):
            payloads.append(IDr(remote_id.id_type, remote_id.data))
        payloads.append(auth)
        payloads += vip_request(conn)
        if first_child is not None:
            child_cfg = conn.children[first_child]
            spi_in = ctx.new_child_spi()
            proposals = with_spi(without_ke(child_cfg.esp_proposals), spi_bytes(spi_in))
            local_ts = ctx.resolve(proposed_local_ts(conn, child_cfg.local_ts), sa.local[0])
            remote_ts = ctx.resolve(child_cfg.remote_ts, sa.remote[0])
            self.child = _ProposedChild(child_cfg, spi_in, proposals, local_ts, remote_ts)
            payloads += [
                SA(proposals),
                TSi(tuple(s.to_wire() for s in local_ts)),
                TSr(tuple(s.to_wire() for s in remote_ts)),
            ]
        payloads += mobike_offer(conn)  # RFC 4555 §4.2.1
        return payloads

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        conn = sa.connection
        assert conn is not None
        notifies = [p for p in payloads if isinstance(p, Notify)]
        codes = {int(n.notify_type) for n in notifies}
        if NotifyType.AUTHENTICATION_FAILED in codes:
            ctx.fail(sa, NotifyType.AUTHENTICATION_FAILED, "peer rejected our authentication", True)
            ctx.destroy(sa, "authentication failed")
            return False
        id_r = first_of(payloads, IDr)
        auth = first_of(payloads, AUTH)
        if id_r is None or auth is None or not isinstance(id_r, IDr):
            errors = [n for n in notifies if is_error_notify(n.notify_type)]
            code = errors[0].notify_type if errors else NotifyType.INVALID_SYNTAX
            ctx.fail(sa, code, "IKE_AUTH response without IDr/AUTH", True)
            ctx.destroy(sa, "IKE_AUTH failed")
            return False
        peer = Identity(id_r.id_type, id_r.data)
        mine = ctx.local_identity(conn, sa.local)
        try:
            how = ctx.auth.verify_peer(sa, conn, mine, id_r, payloads)
        except AuthFailure as exc:
            ctx.fail(
                sa,
                NotifyType.AUTHENTICATION_FAILED,
                f"responder '{format_identity(peer)}' failed authentication: {exc}",
                False,
            )
            failed = [Notify(NotifyType.AUTHENTICATION_FAILED)]
            ctx.request(sa, Notification(failed), failed, now)
            ctx.destroy(sa, "peer authentication failed")
            return False
        sa.remote_id = format_identity(peer)
        log.info("IKE SA %d: '%s' authenticated with %s", sa.ike_id, sa.remote_id, how)
        note_mobike(sa, conn, notifies)
        if conn.vips:
            sa.local_vips = replied_addresses(payloads)
            if not sa.local_vips:
                established(ctx, sa, now)
                ctx.fail(sa, NotifyType.FAILED_CP_REQUIRED, "no virtual IP assigned", True)
                delete_ike(ctx, sa, now, "no virtual IP assigned")
                return False
            log.info("IKE SA %d: virtual IP %s assigned", sa.ike_id, ", ".join(sa.local_vips))
            ctx.events.append(ev.VirtualIpsAssigned(sa.ike_id, sa.local_vips))
        established(ctx, sa, now)
        pending, self.child = self.child, None
        if pending is None:
            return False
        errors = [n for n in notifies if is_error_notify(n.notify_type)]
        if errors:
            ctx.fail(sa, errors[0].notify_type, f"Child SA {pending.config.name} refused", True)
            return False
        _complete_child(ctx, sa, pending, payloads, now)
        return False


def _complete_child(
    ctx: IkeServices, sa: IkeSa, pending: _ProposedChild, payloads: tuple[Payload, ...], now: float
) -> None:
    sa_payload = first_of(payloads, SA)
    tsi = first_of(payloads, TSi)
    tsr = first_of(payloads, TSr)
    problem = None
    if sa_payload is None or tsi is None or tsr is None or len(sa_payload.proposals) != 1:
        problem = "Child SA response lacks SA, TSi or TSr"
    else:
        chosen = sa_payload.proposals[0]
        if not valid_esp_spi(chosen.spi) or not proposal_accepted(chosen, pending.proposals):
            problem = "responder chose an ESP proposal we did not offer, or a reserved SPI"
        else:
            try:
                local_ts = tuple(Selector.from_wire(t) for t in tsi.selectors)
                remote_ts = tuple(Selector.from_wire(t) for t in tsr.selectors)
            except ValueError as exc:
                problem = f"invalid traffic selectors: {exc}"
            else:
                if not all_within(local_ts, pending.local_ts) or not all_within(
                    remote_ts, pending.remote_ts
                ):
                    problem = "responder widened the traffic selectors"
                elif sa.local_vips:
                    # We proposed the whole range while our virtual IP was unknown: keep only
                    # what "dynamic" means now, the assigned address (charon narrows so too).
                    local_ts = narrow(local_ts, _with_virtual_ips(pending.config, sa))
                    if not local_ts:
                        problem = "responder's TSi does not include our virtual IP"
    if problem is not None:
        ctx.fail(sa, NotifyType.NO_PROPOSAL_CHOSEN, problem, False)
        delete_spi(ctx, sa, pending.spi_in, now)
        return
    if any(
        isinstance(p, Notify) and p.notify_type == NotifyType.USE_TRANSPORT_MODE for p in payloads
    ):
        ctx.fail(sa, NotifyType.NO_PROPOSAL_CHOSEN, "peer wants transport mode", False)
        delete_spi(ctx, sa, pending.spi_in, now)
        return
    spi_out = int.from_bytes(chosen.spi, "big")
    ctx.install_child(
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


def _with_virtual_ips(config: ChildConfig, sa: IkeSa) -> tuple[Selector, ...]:
    """The child's local selectors with "dynamic" meaning each of our virtual IPs."""
    return tuple(sel for vip in sa.local_vips for sel in resolve_dynamic(config.local_ts, vip))


class IkeAuthResponder(Responder):
    """IKE_AUTH as responder: pick the connection (PAD), check the initiator, answer with
    our identity, AUTH and the first Child SA."""

    def __init__(self) -> None:
        self.failed: tuple[str, bool] | None = None  # reason to destroy the SA, notify_up

    def process_request(
        self, ctx: IkeServices, sa: IkeSa, payloads: tuple[Payload, ...], now: float
    ) -> list[Payload]:
        ctx.half_open.pop((sa.spi_i, sa.remote[0], sa.remote[1]), None)
        for key, value in list(ctx.half_open.items()):
            if value is sa:
                del ctx.half_open[key]
        id_i = first_of(payloads, IDi)
        auth = first_of(payloads, AUTH)
        if not isinstance(id_i, IDi) or not isinstance(auth, AUTH):
            self.failed = ("IKE_AUTH without IDi or AUTH", False)
            return [Notify(NotifyType.INVALID_SYNTAX)]
        ctx.auth.note_peer_offers(sa, payloads)
        peer = Identity(id_i.id_type, id_i.data)
        id_r = first_of(payloads, IDr)
        wanted_local = Identity(id_r.id_type, id_r.data) if id_r is not None else None
        conn = _connection_for_peer(ctx, sa, peer, wanted_local, int(auth.method))
        failure = f"no connection for initiator '{format_identity(peer)}'"
        if conn is not None:
            sa.connection = conn
            try:
                how = ctx.auth.verify_peer(
                    sa, conn, ctx.local_identity(conn, sa.local), id_i, payloads
                )
                failure = ""
            except AuthFailure as exc:
                failure = f"initiator '{format_identity(peer)}' failed authentication: {exc}"
        if conn is None or failure:
            ctx.fail(sa, NotifyType.AUTHENTICATION_FAILED, failure, False)
            self.failed = ("authentication failed", False)
            return [Notify(NotifyType.AUTHENTICATION_FAILED)]
        refused = refusal_as_responder(conn, payloads)
        if refused is not None:
            ctx.fail(sa, NotifyType.INVALID_SYNTAX, refused, False)
            self.failed = ("childless IKE SA refused", False)
            return [Notify(NotifyType.INVALID_SYNTAX)]
        sa.remote_id = format_identity(peer)
        log.info("IKE SA %d: '%s' authenticated with %s", sa.ike_id, sa.remote_id, how)
        my_id = ctx.local_identity(conn, sa.local)
        sa.local_id = format_identity(my_id)
        my_id_payload = IDr(my_id.id_type, my_id.data)
        try:
            my_auth = ctx.auth.own_payloads(sa, conn, my_id, my_id_payload)
        except AuthFailure as exc:
            ctx.fail(sa, NotifyType.AUTHENTICATION_FAILED, f"cannot authenticate: {exc}", False)
            self.failed = ("no credentials", False)
            return [Notify(NotifyType.AUTHENTICATION_FAILED)]
        initial_contact = any(
            isinstance(p, Notify) and p.notify_type == NotifyType.INITIAL_CONTACT for p in payloads
        )
        if enforce_uniqueness(ctx, sa, initial_contact, now):
            ctx.fail(
                sa,
                NotifyType.AUTHENTICATION_FAILED,
                f"an IKE SA with '{sa.remote_id}' exists (unique = keep)",
                False,
            )
            self.failed = ("cancelled by the uniqueness policy", False)
            return [Notify(NotifyType.AUTHENTICATION_FAILED)]
        response: list[Payload] = [my_id_payload, *my_auth, *mobike_agreed(sa, payloads)]
        established(ctx, sa, now)
        config_reply, child_may_follow = assign_vips(ctx, sa, conn, payloads)
        response += config_reply
        if child_may_follow:
            response += _child_as_responder(ctx, sa, conn, payloads, now)
        return response

    def complete(self, ctx: IkeServices, sa: IkeSa, now: float) -> None:
        if self.failed is not None:
            reason, notify_up = self.failed
            ctx.destroy(sa, reason, notify_up=notify_up)
            return
        for child in sa.children.values():
            ctx.announce_child(sa, child)


def _connection_for_peer(
    ctx: IkeServices, sa: IkeSa, peer: Identity, wanted_local: Identity | None, method: int
) -> Connection | None:
    """The first address-matching connection whose identities and authentication method
    fit (RFC 4301 §4.4.3 PAD)."""
    for conn in sa.candidates:
        remote_id = ctx.remote_identity(conn)
        if not method_fits(conn.remote, method):
            continue
        if remote_id is not None and not id_match(peer, remote_id):
            continue
        if wanted_local is not None:
            mine = ctx.local_identity(conn, sa.local)
            if not wanted_local.matches(mine) and not mine.matches(wanted_local):
                continue
        return conn
    return None


def _child_as_responder(
    ctx: IkeServices, sa: IkeSa, conn: Connection, payloads: tuple[Payload, ...], now: float
) -> list[Payload]:
    """The first Child SA, in IKE_AUTH (§1.2); no SA payload means childless (RFC 6023)."""
    if first_of(payloads, SA) is None:
        return []
    choice = choose_child(ctx, sa, list(conn.children.values()), payloads, ike_auth=True)
    if isinstance(choice, list):
        return choice
    child = accept_child(ctx, sa, choice, now, ni=sa.ni, nr=sa.nr)
    _config, local_ts, remote_ts, chosen = choice
    return child_reply(chosen, child.spi_in, local_ts, remote_ts)


def established(ctx: IkeServices, sa: IkeSa, now: float) -> None:
    """IKE_AUTH succeeded: timers, and the end of the SA it reauthenticates
    (make-before-break). Child SAs queued behind IKE_AUTH follow when the window opens."""
    sa.state = IkeState.ESTABLISHED
    sa.established_at = now
    sa.last_peer_activity = now
    ctx.arm_ike_timers(sa, now)
    old = ctx.sas.get(sa.reauth_of) if sa.reauth_of is not None else None
    if old is not None and old.state is IkeState.ESTABLISHED:
        # Make-before-break reauthentication: the new SA is up, retire the old one.
        old.rekeyed_to = sa.ike_id
        ctx.now = now
        delete_ike(ctx, old, now, "deleted by us")
    ctx.events.append(
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


def _concrete_id(identity: Identity) -> bool:
    """An identity we may name in IDr: not %any and, for DNs, without wildcards."""
    return not identity.is_any and b"*" not in identity.data
