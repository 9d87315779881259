"""IKE_AUTH paused while the host fetches CRLs from distribution points (RFC 5280 §4.2.1.13).

Fetching is I/O, so the core never does it: when a peer's signature verifies but a
certificate of its chain lacks a current CRL, the authenticator raises
:class:`~petrel.credentials.authenticate.CrlsNeeded`. The engine then parks the exchange in an
:class:`AwaitingCrls` on the IKE SA, emits one :class:`~petrel.ike.events.FetchCrl` per URI not
already being fetched (a fetch in flight is shared by every SA that needs it), and drops the
peer's retransmissions of a parked request. The host answers each fetch with
``IkeEngine.crl_fetched``; when the last one an exchange waits for has ended, the exchange is
run again from its stored message with those URIs marked as tried, so it cannot ask twice.
A parked exchange waits at most ``crl_wait_timeout`` (a typed SA timer); then what is still
pending counts as a failed fetch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..credentials.authenticate import CrlsNeeded
from ..crypto.pki_errors import CredentialError
from ..crypto.x509 import load_crl
from ..wire.payloads import IkeHeader, Message, Payload
from . import events as ev
from .sa import IkeSa, IkeState
from .services import IkeServices
from .task import Responder, Task
from .timers import CRL_WAIT

log = logging.getLogger("petrel.ike")


@dataclass(slots=True)
class AwaitingCrls:
    """One parked IKE_AUTH: as responder (``responder``, the request's ``header``) or as
    initiator (``task``, the response ``message``), with the decrypted ``payloads``."""

    payloads: tuple[Payload, ...]
    pending: set[str] = field(default_factory=set)  # URIs whose fetch has not ended
    responder: Responder | None = None
    header: IkeHeader | None = None
    task: Task | None = None
    message: Message | None = None


def parked_request(sa: IkeSa, header: IkeHeader) -> bool:
    """Is this request (a retransmission) the one whose answer awaits CRL fetches?"""
    parked = sa.awaiting_crls
    return (
        parked is not None
        and parked.header is not None
        and (header.message_id == parked.header.message_id)
    )


def answer(
    ctx: IkeServices,
    sa: IkeSa,
    responder: Responder,
    header: IkeHeader,
    payloads: tuple[Payload, ...],
    now: float,
) -> None:
    """Answer a request through ``responder``, unless it must wait for CRLs."""
    try:
        reply = responder.process_request(ctx, sa, payloads, now)
    except CrlsNeeded as need:
        parked = AwaitingCrls(payloads, responder=responder, header=header)
        _await(ctx, sa, parked, need.uris, now)
        return
    ctx.respond(sa, header, reply)
    responder.complete(ctx, sa, now)


def handle_response(
    ctx: IkeServices,
    sa: IkeSa,
    task: Task,
    message: Message,
    payloads: tuple[Payload, ...],
    now: float,
) -> None:
    """Hand a response to its ``task`` (unless it must wait for CRLs), then open the window."""
    try:
        again = task.process_response(ctx, sa, message, payloads, now)
    except CrlsNeeded as need:
        parked = AwaitingCrls(payloads, task=task, message=message)
        _await(ctx, sa, parked, need.uris, now)
        return
    if again and sa.state is not IkeState.DEAD:
        ctx.run(sa, task, now)
    ctx.kick(sa, now)


def _await(
    ctx: IkeServices, sa: IkeSa, parked: AwaitingCrls, uris: tuple[str, ...], now: float
) -> None:
    """Park the exchange until the host has fetched ``uris``; a URI already being fetched
    is waited for, not fetched again; past ``max_crl_fetches`` in flight, one is not fetched
    (it counts as a failed fetch, and the revocation policy decides)."""
    sa.crl_tried = sa.crl_tried | set(uris)
    sa.awaiting_crls = parked
    sa.timers[CRL_WAIT] = now + ctx.settings.crl_wait_timeout
    for uri in uris:
        if uri in ctx.crl_fetches:
            parked.pending.add(uri)
        elif len(ctx.crl_fetches) >= ctx.settings.max_crl_fetches:
            ctx.drops.drop("CRL fetch refused: too many in flight", now, uri)
        else:
            log.info("IKE SA %d: fetching CRL from '%s'", sa.ike_id, uri)
            ctx.crl_fetches.add(uri)
            parked.pending.add(uri)
            ctx.events.append(ev.FetchCrl(uri))
    if not parked.pending:
        _resume(ctx, sa, now)


def crl_fetched(
    ctx: IkeServices, uri: str, data: bytes | None, now: float, error: str = ""
) -> None:
    """A fetch ended: cache the CRL (its signature and freshness are checked when used), then
    resume every exchange that has nothing else to wait for."""
    ctx.now = now
    if uri not in ctx.crl_fetches:
        return  # never asked for, or answered twice
    ctx.crl_fetches.discard(uri)
    if data is None:
        log.warning("CRL fetching from '%s' failed: %s", uri, error or "no data")
    else:
        try:
            crl = load_crl(data)
        except CredentialError as exc:
            log.warning("CRL fetched from '%s' but unusable: %s", uri, exc)
        else:
            ctx.auth.store.add_fetched_crl(uri, crl)
            log.info(
                "fetched CRL of '%s' from '%s', next update %s",
                crl.issuer,
                uri,
                crl.next_update or "not given",
            )
    for sa in list(ctx.sas.values()):
        parked = sa.awaiting_crls
        if parked is not None and uri in parked.pending:
            parked.pending.discard(uri)
            if not parked.pending:
                _resume(ctx, sa, now)


def crl_wait_expired(ctx: IkeServices, sa: IkeSa, now: float) -> None:
    """The host has not answered in time (it always should): the fetches still pending count
    as failed for this exchange, and the revocation policy decides."""
    parked = sa.awaiting_crls
    if parked is None:
        return
    log.warning(
        "IKE SA %d: no answer for CRL fetches from %s in time",
        sa.ike_id,
        ", ".join(f"'{u}'" for u in sorted(parked.pending)),
    )
    parked.pending.clear()
    _resume(ctx, sa, now)


def _resume(ctx: IkeServices, sa: IkeSa, now: float) -> None:
    """Run a parked IKE_AUTH again, now that its CRL fetches have ended."""
    parked, sa.awaiting_crls = sa.awaiting_crls, None
    sa.timers.pop(CRL_WAIT, None)
    if parked is None or sa.state is IkeState.DEAD or sa.ike_id not in ctx.sas:
        return
    if parked.responder is not None and parked.header is not None:
        answer(ctx, sa, parked.responder, parked.header, parked.payloads, now)
    elif parked.task is not None and parked.message is not None:
        handle_response(ctx, sa, parked.task, parked.message, parked.payloads, now)
