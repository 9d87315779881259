"""IKE_SA_INIT (RFC 7296 §1.2, §2.6, §2.10, §2.23): proposals, KE, nonces, NAT detection,
COOKIE and INVALID_KE_PAYLOAD retries as initiator; the unauthenticated answer as responder."""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Sequence

from ..crypto.errors import CryptoError, InvalidPublicValue, UnsupportedAlgorithm
from ..crypto.ke import KeyExchange, supported_groups
from ..crypto.proposals import format_proposal
from ..policy.connection import Connection
from ..wire.payloads import FLAG_RESPONSE, KE, SA, IkeHeader, Message, Nonce, Notify, Payload
from ..wire.payloads import Proposal as WireProposal
from ..wire.registry import (
    ExchangeType,
    KeId,
    NotifyType,
    TransformType,
    is_error_notify,
    name_of,
)
from . import events as ev
from .auth.exchange import signature_hash_notify
from .keys import check_nat, derive_keys, nat_notifies
from .negotiation import algorithms_of, offers_group, proposal_accepted, select_proposal
from .puzzle import parse_puzzle, solution_payload, solve
from .sa import IkeSa, IkeState
from .services import NAT_T_PORT, ZERO_SPI, IkeServices
from .task import Task

log = logging.getLogger("petrel.ike")

_GROUP = struct.Struct(">H")


class IkeInit(Task):
    """IKE_SA_INIT as initiator; owns the key exchange and the COOKIE/KE retry state."""

    exchange = ExchangeType.IKE_SA_INIT

    def __init__(self) -> None:
        self.key_exchange: KeyExchange | None = None
        self.cookie = b""
        self.solution = b""  # RFC 8019 puzzle solution returned with the cookie
        self.ke_retries = 0

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        conn = sa.connection
        assert conn is not None
        self.key_exchange = ctx.key_exchanges.new(KeId(sa.ke_group))
        payloads: list[Payload] = []
        if self.cookie:
            payloads.append(Notify(NotifyType.COOKIE, self.cookie))
            if self.solution:
                payloads.append(solution_payload(self.solution))
        payloads += [
            SA(conn.proposals),
            KE(sa.ke_group, self.key_exchange.public_value()),
            Nonce(sa.ni),
            *nat_notifies(ctx.random, sa.spi_i, ZERO_SPI, sa.local, sa.remote, conn.encap),
            signature_hash_notify(),
        ]
        if conn.fragmentation != "no":
            payloads.append(Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        return payloads

    def process_init_response(
        self, ctx: IkeServices, sa: IkeSa, data: bytes, message: Message, now: float
    ) -> bool:
        """The (unprotected) response; True to send the request again.  The request stays
        outstanding unless the response is acted upon."""
        header = message.header
        conn = sa.connection
        assert conn is not None
        notifies = {int(n.notify_type): n for n in message.notifies()}
        if NotifyType.COOKIE in notifies:
            cookie = notifies[NotifyType.COOKIE].data
            if not 1 <= len(cookie) <= 64 or self.cookie == cookie:
                ctx.drops.drop("bad COOKIE", now)
                return False
            self.cookie = cookie
            self.solution = _solve(ctx, sa, notifies.get(NotifyType.PUZZLE), cookie)
            log.info(
                "IKE SA %d: responder demands a COOKIE%s, retrying",
                sa.ike_id,
                " and a solved puzzle" if self.solution else "",
            )
            return True
        if NotifyType.PUZZLE in notifies:  # RFC 8019 §7.1.2: a PUZZLE without a COOKIE
            ctx.drops.drop("PUZZLE without a COOKIE", now)
            return False
        if NotifyType.INVALID_KE_PAYLOAD in notifies:
            raw = notifies[NotifyType.INVALID_KE_PAYLOAD].data
            group = _GROUP.unpack(raw)[0] if len(raw) == 2 else None
            if (
                group is None
                or group == sa.ke_group
                or not offers_group(conn.proposals, group)
                or self.ke_retries >= ctx.settings.max_ke_retries
            ):
                ctx.fail(sa, NotifyType.INVALID_KE_PAYLOAD, f"peer asks for group {group}", True)
                ctx.destroy(sa, "key exchange method not agreed")
                return False
            log.info(
                "IKE SA %d: peer asks for KE group %s, retrying", sa.ike_id, name_of(group, KeId)
            )
            sa.ke_group = group
            self.ke_retries += 1
            return True
        errors = [n for n in message.notifies() if is_error_notify(n.notify_type)]
        if errors:
            ctx.fail(sa, errors[0].notify_type, "IKE_SA_INIT refused", True)
            ctx.destroy(sa, f"peer refused: {name_of(errors[0].notify_type, NotifyType)}")
            return False
        sa_payload = message.find(SA)
        ke = message.find(KE)
        nonce = message.find(Nonce)
        if not isinstance(sa_payload, SA) or not isinstance(ke, KE) or not isinstance(nonce, Nonce):
            ctx.drops.drop("IKE_SA_INIT response without SA, KE or Nonce", now)
            return False
        if (
            header.spi_r == ZERO_SPI
            or len(sa_payload.proposals) != 1
            or not (16 <= len(nonce.data) <= 256)
        ):
            ctx.drops.drop("invalid IKE_SA_INIT response", now)
            return False
        chosen = sa_payload.proposals[0]
        if not proposal_accepted(chosen, conn.proposals):
            ctx.fail(
                sa,
                NotifyType.NO_PROPOSAL_CHOSEN,
                "responder chose a proposal we did not offer",
                False,
            )
            ctx.destroy(sa, "invalid proposal choice")
            return False
        try:
            algorithms = algorithms_of(chosen)
            if (
                algorithms.ke is None
                or int(algorithms.ke) != int(ke.group)
                or int(ke.group) != sa.ke_group
            ):
                raise UnsupportedAlgorithm("KE payload group differs from the chosen one")
            assert self.key_exchange is not None
            shared = self.key_exchange.shared_secret(ke.data)
        except (CryptoError, ValueError) as exc:
            ctx.fail(sa, NotifyType.INVALID_SYNTAX, f"IKE_SA_INIT response: {exc}", False)
            ctx.destroy(sa, "key exchange failed")
            return False
        sa.outstanding = None
        sa.spi_r = header.spi_r
        sa.nr = nonce.data
        sa.init_response = data
        ctx.auth.note_peer_offers(sa, message.payloads)
        sa.algorithms = algorithms
        sa.fragmentation = (
            conn.fragmentation != "no" and NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in (notifies)
        )
        sa.peer_childless = NotifyType.CHILDLESS_IKEV2_SUPPORTED in notifies
        ctx.by_spi[(sa.spi_i, sa.spi_r)] = sa
        check_nat(sa, message, sa.spi_r)
        sa.nat_dest_hash = next(
            (
                n.data
                for n in message.notifies()
                if n.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP
            ),
            b"",
        )
        derive_keys(sa, shared, ctx.random)
        # §2.23: to port 4500 when there is a NAT; RFC 4555 §3.3: also when both may do
        # MOBIKE (the responder did NAT detection), so no later move needs a port change.
        natt = NotifyType.NAT_DETECTION_SOURCE_IP in notifies
        if (sa.encap or (conn.mobike and natt)) and sa.local[1] != NAT_T_PORT:
            sa.local = (sa.local[0], NAT_T_PORT)
            sa.remote = (sa.remote[0], NAT_T_PORT)
            ctx.events.append(ev.IkeSaUpdated(sa.ike_id, sa.local, sa.remote, sa.encap))
        log.info(
            "IKE SA %d: IKE_SA_INIT done, %s%s",
            sa.ike_id,
            algorithms.describe(),
            ", NAT detected"
            if (sa.nat_local or sa.nat_remote)
            else (", faking NAT (encap)" if sa.nat_fake else ""),
        )
        return False  # IKE_AUTH, queued behind this task, follows


def _solve(ctx: IkeServices, sa: IkeSa, puzzle: Notify | None, cookie: bytes) -> bytes:
    """Solve a PUZZLE (RFC 8019 §7.1.2) if it names a PRF we offered and its difficulty is
    at most ``puzzle_max_solve``; otherwise b"" (the cookie alone is returned)."""
    conn = sa.connection
    asked = parse_puzzle(puzzle.data) if puzzle is not None else None
    if asked is None or conn is None:
        return b""
    prf_id, difficulty = asked
    offered = {
        int(t.id) for p in conn.proposals for t in p.transforms if int(t.type) == TransformType.PRF
    }
    if prf_id not in offered or difficulty > ctx.settings.puzzle_max_solve:
        log.info("IKE SA %d: puzzle (PRF %d, %d bits) not solved", sa.ike_id, prf_id, difficulty)
        return b""
    try:
        return solve(prf_id, cookie, difficulty, ctx.random)
    except UnsupportedAlgorithm:
        return b""


# ---------------------------------------------------------------------- responder


def respond_init(
    ctx: IkeServices,
    data: bytes,
    message: Message,
    local: ev.Address,
    remote: ev.Address,
    now: float,
) -> None:
    """Answer an IKE_SA_INIT request that :mod:`~petrel.ike.admission` let through: a
    half-open IKE SA, or an error notify (§2.7)."""
    header = message.header
    if header.spi_r != ZERO_SPI or header.message_id != 0 or not header.is_initiator:
        ctx.drops.drop("invalid IKE_SA_INIT request header", now)
        return
    key = (header.spi_i, remote[0], remote[1])
    known = ctx.half_open.get(key)
    if known is not None:
        if known.init_request == data and known.last_response is not None:
            log.debug(
                "IKE SA %d: received retransmit of request 0, retransmitting response",
                known.ike_id,
            )
            ctx.send(known, known.last_response[1])
        else:
            ctx.drops.drop("IKE_SA_INIT for a half-open SA", now)
        return

    def reply(*notifies: Notify) -> None:
        h = IkeHeader(header.spi_i, ZERO_SPI, 0, ExchangeType.IKE_SA_INIT, 0, FLAG_RESPONSE)
        ctx.send_to(ctx.plain(None, h, notifies), local, remote)

    sa_payload = message.find(SA)
    ke = message.find(KE)
    nonce = message.find(Nonce)
    if not isinstance(sa_payload, SA) or not isinstance(ke, KE) or not isinstance(nonce, Nonce):
        ctx.drops.drop("IKE_SA_INIT request without SA, KE or Nonce", now)
        reply(Notify(NotifyType.INVALID_SYNTAX))
        return
    if not 16 <= len(nonce.data) <= 256:
        reply(Notify(NotifyType.INVALID_SYNTAX))
        return
    candidates = _matching_connections(ctx, local, remote)
    chosen: WireProposal | None = None
    conn: Connection | None = None
    for candidate in candidates:
        chosen = select_proposal(sa_payload.proposals, candidate.proposals)
        if chosen is not None:
            conn = candidate
            break
    if chosen is None or conn is None:
        offered = ", ".join(_describe_proposal(p) for p in sa_payload.proposals)
        ctx.drops.drop(
            "IKE_SA_INIT refused with NO_PROPOSAL_CHOSEN",
            now,
            f"{remote[0]} offered {offered}" if candidates else f"no connection for {remote[0]}",
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
        my_public, shared = ctx.key_exchanges.respond(algorithms.ke, ke.data)
    except (InvalidPublicValue, CryptoError) as exc:
        ctx.drops.drop("invalid KE public value", now, str(exc))
        reply(Notify(NotifyType.INVALID_SYNTAX))
        return
    sa = IkeSa(
        ike_id=ctx.new_ike_id(),
        initiator=False,
        spi_i=header.spi_i,
        spi_r=ctx.new_ike_spi(),
        local=local,
        remote=remote,
        state=IkeState.INIT_DONE,
        created_at=now,
        candidates=tuple(c for c in candidates),
        ni=nonce.data,
        nr=ctx.nonce(),
        ke_group=int(algorithms.ke),
        algorithms=algorithms,
        init_request=data,
    )
    sa.connection = conn
    ctx.auth.note_peer_offers(sa, message.payloads)
    check_nat(sa, message, ZERO_SPI)
    derive_keys(sa, shared, ctx.random)
    payloads: list[Payload] = [
        SA((WireProposal(chosen.number, chosen.protocol, b"", chosen.transforms),)),
        KE(int(algorithms.ke), my_public),
        Nonce(sa.nr),
        *nat_notifies(ctx.random, sa.spi_i, sa.spi_r, local, remote, fake=False),
        *ctx.auth.certreq(sa.candidates),
        signature_hash_notify(),
    ]
    if conn.fragmentation != "no" and any(
        n.notify_type == NotifyType.IKEV2_FRAGMENTATION_SUPPORTED for n in message.notifies()
    ):
        sa.fragmentation = True
        payloads.append(Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    if conn.childless != "never":  # RFC 6023 §3: IKE_AUTH may come without a Child SA
        payloads.append(Notify(NotifyType.CHILDLESS_IKEV2_SUPPORTED))
    response_header = IkeHeader(sa.spi_i, sa.spi_r, 0, ExchangeType.IKE_SA_INIT, 0, FLAG_RESPONSE)
    response = ctx.plain(sa, response_header, payloads)
    sa.init_response = response
    sa.last_response = (0, (response,))
    sa.expected_peer_id = 1
    ctx.sas[sa.ike_id] = sa
    ctx.by_spi[(sa.spi_i, sa.spi_r)] = sa
    ctx.half_open[key] = sa
    ctx.send(sa, response)
    log.info(
        "IKE SA %d: IKE_SA_INIT from %s:%d answered, %s%s",
        sa.ike_id,
        *remote,
        algorithms.describe(),
        ", NAT detected" if sa.encap else "",
    )


def _matching_connections(
    ctx: IkeServices, local: ev.Address, remote: ev.Address
) -> list[Connection]:
    return [
        c
        for c in ctx.connections.values()
        if addr_matches(c.local_addrs, local[0]) and addr_matches(c.remote_addrs, remote[0])
    ]


def _describe_proposal(proposal: WireProposal) -> str:
    try:
        return format_proposal(proposal)
    except (ValueError, KeyError):
        return "/".join(f"{int(t.type)}:{int(t.id)}" for t in proposal.transforms)


def addr_matches(specs: Sequence[str], address: str) -> bool:
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
