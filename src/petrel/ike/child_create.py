"""CREATE_CHILD_SA for a new Child SA (RFC 7296 §1.3.1, §2.9, §2.25): the initiator task,
the responder, and the Child SA choice IKE_AUTH shares (§1.2)."""

from __future__ import annotations

import logging

from ..crypto.errors import CryptoError, InvalidPublicValue, UnsupportedAlgorithm
from ..crypto.ke import KeyExchange
from ..policy.connection import ChildConfig
from ..policy.selectors import Selector, all_within, narrow
from ..wire.payloads import KE, SA, Message, Nonce, Notify, Payload, Proposal, TSi, TSr, first_of
from ..wire.registry import ExchangeType, KeId, NotifyType, ProtocolId, is_error_notify, name_of
from .child_delete import delete_spi, spi_bytes
from .negotiation import (
    algorithms_of,
    first_ke_group,
    offers_group,
    proposal_accepted,
    select_proposal,
    strip_ke,
    valid_esp_spi,
    with_spi,
    without_ke,
)
from .sa import ChildSa, ChildState, IkeSa, IkeState
from .services import IkeServices
from .task import Responder, Task
from .timers import TimerKey

log = logging.getLogger("petrel.ike")

TEMPORARY_FAILURE_RETRY = (1.0, 3.0)  # seconds, a random delay in this range (§2.25)

Choice = tuple[ChildConfig, tuple[Selector, ...], tuple[Selector, ...], Proposal]


def create_child(ctx: IkeServices, sa: IkeSa, child_name: str, now: float) -> bool:
    """Queue another Child SA for ``child_name`` (§1.3.1)."""
    if sa.connection is None or child_name not in sa.connection.children:
        return False
    ctx.queue(sa, ChildCreate(sa.connection.children[child_name]), now)
    return True


class ChildCreate(Task):
    """CREATE_CHILD_SA as initiator; :class:`~petrel.ike.child_rekey.ChildRekey` extends it
    to replace an existing Child SA."""

    exchange = ExchangeType.CREATE_CHILD_SA
    rekey_of: ChildSa | None = None

    def __init__(self, config: ChildConfig) -> None:
        self.config = config
        self.group: int | None = None  # the peer's INVALID_KE_PAYLOAD choice
        self.spi_in = 0
        self.proposals: tuple[Proposal, ...] = ()
        self.ni = b""
        self.key_exchange: KeyExchange | None = None
        self.local_ts: tuple[Selector, ...] = ()
        self.remote_ts: tuple[Selector, ...] = ()

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        rekey_of, config = self.rekey_of, self.config
        if sa.state is not IkeState.ESTABLISHED:
            if rekey_of is not None:
                rekey_of.state = ChildState.INSTALLED
            return None
        self.spi_in = ctx.new_child_spi()
        self.proposals = with_spi(config.esp_proposals, spi_bytes(self.spi_in))
        self.ni = ctx.nonce()
        group = self.group if self.group is not None else first_ke_group(self.proposals)
        self.key_exchange = ctx.key_exchanges.new(KeId(group)) if group else None
        if rekey_of is not None:
            self.local_ts, self.remote_ts = rekey_of.local_ts, rekey_of.remote_ts
        else:
            self.local_ts = ctx.resolve(config.local_ts, sa.local_ts_address)
            self.remote_ts = ctx.resolve(config.remote_ts, sa.remote_ts_address)
        payloads: list[Payload] = []
        if rekey_of is not None:
            payloads.append(
                Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, spi_bytes(rekey_of.spi_in))
            )
        payloads += [SA(self.proposals), Nonce(self.ni)]
        if self.key_exchange is not None:
            payloads.append(KE(self.key_exchange.group, self.key_exchange.public_value()))
        payloads += [
            TSi(tuple(s.to_wire() for s in self.local_ts)),
            TSr(tuple(s.to_wire() for s in self.remote_ts)),
        ]
        what = f"rekeying {config.name}{{{rekey_of.child_id}}}" if rekey_of else "creating"
        log.info("IKE SA %d: CREATE_CHILD_SA %s %s", sa.ike_id, what, config.name)
        return payloads

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        config, rekey_of, key_exchange = self.config, self.rekey_of, self.key_exchange
        reply = payloads
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
                self.group = group
                return True
        if NotifyType.TEMPORARY_FAILURE in errors:
            delay = TEMPORARY_FAILURE_RETRY[0] + ctx.jitter(
                TEMPORARY_FAILURE_RETRY[1] - TEMPORARY_FAILURE_RETRY[0]
            )
            log.info("IKE SA %d: TEMPORARY_FAILURE, retrying in %.1f s", sa.ike_id, delay)
            if rekey_of is not None:
                sa.timers[TimerKey.rekey_child(rekey_of.child_id)] = now + delay
                rekey_of.state = ChildState.INSTALLED
            else:
                sa.timers[TimerKey.create_child(config.name)] = now + delay
            return False
        if errors:
            code = next(iter(errors))
            ctx.fail(sa, code, f"CREATE_CHILD_SA for {config.name} refused", True)
            if rekey_of is not None and rekey_of.state == ChildState.REKEYING:
                rekey_of.state = ChildState.INSTALLED
                if code == NotifyType.CHILD_SA_NOT_FOUND:
                    ctx.child_down(sa, rekey_of, "peer no longer has it")
            return False
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
            if not valid_esp_spi(chosen.spi) or not proposal_accepted(chosen, self.proposals):
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
                if not all_within(new_local, self.local_ts) or not all_within(
                    new_remote, self.remote_ts
                ):
                    problem = "responder widened the traffic selectors"
            except (CryptoError, ValueError) as exc:
                problem = f"invalid CREATE_CHILD_SA response: {exc}"
        if problem is not None or chosen is None or not isinstance(nonce, Nonce):
            ctx.fail(sa, NotifyType.NO_PROPOSAL_CHOSEN, problem or "invalid response", False)
            if rekey_of is not None and rekey_of.state == ChildState.REKEYING:
                rekey_of.state = ChildState.INSTALLED
            if chosen is not None and len(chosen.spi) == 4:
                delete_spi(ctx, sa, self.spi_in, now)
            return False
        new = ctx.install_child(
            sa,
            config,
            self.spi_in,
            int.from_bytes(chosen.spi, "big"),
            chosen,
            new_local,
            new_remote,
            now,
            we_initiated=True,
            ni=self.ni,
            nr=nonce.data,
            shared=shared,
        )
        self.installed(ctx, sa, new, now)
        return False

    def installed(self, ctx: IkeServices, sa: IkeSa, new: ChildSa, now: float) -> None:
        """The new Child SA is up (a rekey then retires the old one)."""


class ChildCreateResponder(Responder):
    """CREATE_CHILD_SA for a Child SA as responder; keys are announced once answered."""

    def __init__(self) -> None:
        self.announce: list[int] = []

    def old_child(
        self, ctx: IkeServices, sa: IkeSa, payloads: tuple[Payload, ...]
    ) -> ChildSa | list[Payload] | None:
        """The Child SA the request replaces (a rekey), or the error to answer with."""
        return None

    def accepted(
        self, ctx: IkeServices, sa: IkeSa, old: ChildSa | None, new: ChildSa, now: float
    ) -> None:
        """The new Child SA is installed (a rekey then settles with the old one)."""

    def process_request(
        self, ctx: IkeServices, sa: IkeSa, payloads: tuple[Payload, ...], now: float
    ) -> list[Payload]:
        conn = sa.connection
        assert conn is not None
        nonce = first_of(payloads, Nonce)
        ke = first_of(payloads, KE)
        if not isinstance(nonce, Nonce) or not 16 <= len(nonce.data) <= 256:
            return [Notify(NotifyType.INVALID_SYNTAX)]
        if sa.rekeying_ike:
            return [Notify(NotifyType.TEMPORARY_FAILURE)]  # §2.25: our IKE rekey is in flight
        old = self.old_child(ctx, sa, payloads)
        if isinstance(old, list):
            return old
        choice = choose_child(
            ctx, sa, [old.config] if old is not None else list(conn.children.values()), payloads
        )
        if isinstance(choice, list):
            return choice
        _config, local_ts, remote_ts, chosen = choice
        alg = algorithms_of(chosen)
        nr = ctx.nonce()
        reply_ke: list[Payload] = []
        shared = b""
        if alg.ke is not None:
            if not isinstance(ke, KE) or int(ke.group) != int(alg.ke):
                return [Notify(NotifyType.INVALID_KE_PAYLOAD, int(alg.ke).to_bytes(2, "big"))]
            try:
                public, shared = ctx.key_exchanges.respond(alg.ke, ke.data)
            except (InvalidPublicValue, CryptoError):
                return [Notify(NotifyType.INVALID_SYNTAX)]
            reply_ke.append(KE(int(alg.ke), public))
        new = accept_child(
            ctx, sa, choice, now, ni=nonce.data, nr=nr, shared=shared, outbound_active=old is None
        )
        self.announce.append(new.child_id)
        self.accepted(ctx, sa, old, new, now)
        reply = child_reply(chosen, new.spi_in, local_ts, remote_ts)
        return [reply[0], Nonce(nr), *reply_ke, *reply[1:]]

    def complete(self, ctx: IkeServices, sa: IkeSa, now: float) -> None:
        # Announced after the response is queued: the new inbound SA is ready before the
        # peer can use it, and no key leaves with an unsent reply.
        for child_id in self.announce:
            child = sa.children.get(child_id)
            if child is not None:
                ctx.announce_child(sa, child)


# ---------------------------------------------------------------------- shared with IKE_AUTH


def accept_child(
    ctx: IkeServices,
    sa: IkeSa,
    choice: Choice,
    now: float,
    *,
    ni: bytes,
    nr: bytes,
    shared: bytes = b"",
    outbound_active: bool = True,
) -> ChildSa:
    """Responder: install the Child SA of :func:`choose_child`'s choice under a fresh
    inbound SPI; announced by the caller once its response is sent."""
    config, local_ts, remote_ts, chosen = choice
    return ctx.install_child(
        sa,
        config,
        ctx.new_child_spi(),
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


def choose_child(
    ctx: IkeServices,
    sa: IkeSa,
    configs: list[ChildConfig],
    payloads: tuple[Payload, ...],
    ike_auth: bool = False,
) -> Choice | list[Payload]:
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
        remote_ts = narrow(their_ts, ctx.resolve(config.remote_ts, sa.remote_ts_address))
        local_ts = narrow(our_ts, ctx.resolve(config.local_ts, sa.local_ts_address))
        if remote_ts and local_ts:
            break
    else:
        ctx.fail(sa, NotifyType.TS_UNACCEPTABLE, "no child matches the traffic selectors", False)
        return [Notify(NotifyType.TS_UNACCEPTABLE)]
    offered = tuple(p for p in sa_payload.proposals if valid_esp_spi(p.spi))
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
        ctx.fail(
            sa,
            NotifyType.NO_PROPOSAL_CHOSEN,
            f"child {config.name}: no ESP proposal chosen",
            False,
        )
        return [Notify(NotifyType.NO_PROPOSAL_CHOSEN)]
    return config, local_ts, remote_ts, chosen


def child_reply(
    chosen: Proposal,
    spi_in: int,
    local_ts: tuple[Selector, ...],
    remote_ts: tuple[Selector, ...],
) -> list[Payload]:
    """SA (the chosen proposal with our SPI), TSi and TSr of a responder's answer."""
    reply = Proposal(chosen.number, chosen.protocol, spi_bytes(spi_in), chosen.transforms)
    return [
        SA((reply,)),
        TSi(tuple(s.to_wire() for s in remote_ts)),
        TSr(tuple(s.to_wire() for s in local_ts)),
    ]
