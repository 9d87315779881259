"""INFORMATIONAL requests of the peer (RFC 7296 §1.4, §1.5): Deletes of the IKE SA or its
Child SAs, error notifies, empty liveness checks, and MOBIKE updates (:mod:`.mobike`)."""

from __future__ import annotations

from ..policy.connection import ChildConfig
from ..wire.payloads import Delete, Notify, Payload
from ..wire.registry import NotifyType, ProtocolId
from . import events as ev
from .child_create import create_child
from .child_delete import peer_deletes
from .mobike import MOBIKE_NOTIFIES
from .mobike import answer as answer_mobike
from .sa import ChildState, IkeSa
from .services import IkeServices
from .task import Responder


class InformationalResponder(Responder):
    """The peer's INFORMATIONAL request, which came from ``remote`` to ``local``."""

    def __init__(self, local: ev.Address, remote: ev.Address) -> None:
        self.delete_ike = False
        self.closed: list[ChildConfig] = []
        self.local, self.remote = local, remote

    def process_request(
        self, ctx: IkeServices, sa: IkeSa, payloads: tuple[Payload, ...], now: float
    ) -> list[Payload]:
        reply: list[Payload] = []
        for payload in payloads:
            if isinstance(payload, Delete):
                if payload.protocol == ProtocolId.IKE:
                    self.delete_ike = True
                elif payload.protocol in (ProtocolId.ESP, ProtocolId.AH):
                    before = {c.child_id: c for c in sa.children.values()}
                    answer = peer_deletes(ctx, sa, payload)
                    self.closed += [
                        c.config
                        for i, c in before.items()
                        if i not in sa.children
                        and c.replacement is None
                        and c.peer_rekey is None
                        and c.state != ChildState.DELETING
                    ]
                    if answer is not None:
                        reply.append(answer)
            elif isinstance(payload, Notify) and payload.notify_type == (
                NotifyType.AUTHENTICATION_FAILED
            ):
                ctx.fail(
                    sa, NotifyType.AUTHENTICATION_FAILED, "peer rejected our authentication", True
                )
                self.delete_ike = True
        mobike = [p for p in payloads if isinstance(p, Notify) and p.notify_type in MOBIKE_NOTIFIES]
        if mobike and not self.delete_ike:
            reply += answer_mobike(ctx, sa, mobike, self.local, self.remote)
        return [] if self.delete_ike else reply

    def complete(self, ctx: IkeServices, sa: IkeSa, now: float) -> None:
        if self.delete_ike:
            ctx.destroy(sa, "deleted by peer", by_peer=True)
        elif self.closed and sa.connection is not None:
            # close_action for Child SAs the peer deleted (not rekeyed).
            for config in self.closed:
                if config.close_action == "start":
                    create_child(ctx, sa, config.name, now)
                elif config.close_action == "trap":
                    ctx.events.append(ev.TrapRequested(sa.connection.name, config.name))
