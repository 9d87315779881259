"""Rekeying a Child SA with CREATE_CHILD_SA and REKEY_SA (RFC 7296 §1.3.3, §2.8):
make-before-break, with and without PFS, and simultaneous-rekey collisions (§2.8.1)."""

from __future__ import annotations

import logging

from ..wire.payloads import Notify, Payload
from ..wire.registry import NotifyType
from .child_create import ChildCreate, ChildCreateResponder
from .child_delete import delete_child
from .sa import ChildSa, ChildState, IkeSa
from .services import IkeServices

log = logging.getLogger("petrel.ike")


def rekey_child(ctx: IkeServices, sa: IkeSa, child: ChildSa, now: float) -> bool:
    """Queue the rekey of an installed Child SA: new SA first, then delete the old one."""
    if child.state != ChildState.INSTALLED:
        return False
    child.state = ChildState.REKEYING
    ctx.queue(sa, ChildRekey(child), now)
    return True


class ChildRekey(ChildCreate):
    """CREATE_CHILD_SA with REKEY_SA as initiator."""

    def __init__(self, old: ChildSa) -> None:
        super().__init__(old.config)
        self.rekey_of = old
        self.started = False

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        old = self.rekey_of
        assert old is not None
        if not self.started and (
            sa.children.get(old.child_id) is not old or old.state != ChildState.REKEYING
        ):
            return None  # deleted, or no longer to rekey, while it waited
        self.started = True  # a retry (INVALID_KE_PAYLOAD) goes ahead regardless
        return super().build_request(ctx, sa, now)

    def installed(self, ctx: IkeServices, sa: IkeSa, new: ChildSa, now: float) -> None:
        assert self.rekey_of is not None
        self.rekey_of.our_rekey = new.child_id
        after_rekey(ctx, sa, self.rekey_of, now)


class ChildRekeyResponder(ChildCreateResponder):
    """CREATE_CHILD_SA with REKEY_SA as responder: the new SA receives at once and sends
    once the old one is deleted (§2.8)."""

    def old_child(
        self, ctx: IkeServices, sa: IkeSa, payloads: tuple[Payload, ...]
    ) -> ChildSa | list[Payload] | None:
        rekey = next(
            p for p in payloads if isinstance(p, Notify) and p.notify_type == NotifyType.REKEY_SA
        )
        old_spi = int.from_bytes(rekey.spi, "big") if len(rekey.spi) == 4 else -1
        old = next((c for c in sa.children.values() if c.spi_out == old_spi), None)
        if old is None or old.state == ChildState.DELETING:
            return [Notify(NotifyType.CHILD_SA_NOT_FOUND, b"", rekey.protocol, rekey.spi)]
        return old

    def accepted(
        self, ctx: IkeServices, sa: IkeSa, old: ChildSa | None, new: ChildSa, now: float
    ) -> None:
        assert old is not None
        old.peer_rekey = new.child_id
        log.info(
            "IKE SA %d: peer rekeys %s{%d} as {%d}",
            sa.ike_id,
            old.config.name,
            old.child_id,
            new.child_id,
        )
        if old.state in (ChildState.REKEYING, ChildState.REKEYED) and old.our_rekey is not None:
            after_rekey(ctx, sa, old, now)


def is_child_rekey(payloads: tuple[Payload, ...]) -> bool:
    return any(isinstance(p, Notify) and p.notify_type == NotifyType.REKEY_SA for p in payloads)


def after_rekey(ctx: IkeServices, sa: IkeSa, old: ChildSa, now: float) -> None:
    """Our rekey of ``old`` completed: delete the old SA, or settle a collision (§2.8.1)."""
    ours = sa.children.get(old.our_rekey) if old.our_rekey is not None else None
    theirs = sa.children.get(old.peer_rekey) if old.peer_rekey is not None else None
    if ours is None:
        return
    if theirs is None:
        old.state = ChildState.REKEYED
        old.replacement = ours.child_id
        delete_child(ctx, sa, old, now, "rekeyed", linger=True)
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
    old.state = ChildState.REKEYED
    if lost:
        delete_child(ctx, sa, ours, now, "redundant after a rekey collision")
    else:
        delete_child(ctx, sa, old, now, "rekeyed", linger=True)
