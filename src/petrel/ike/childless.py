"""Childless IKE SAs (RFC 6023), with strongSwan's ``childless`` policy of a connection.

``allow`` (the default) accepts an IKE_AUTH without a Child SA as responder and initiates
IKE_AUTH with the first Child SA; ``prefer`` initiates childless when the responder announced
CHILDLESS_IKEV2_SUPPORTED; ``force`` accepts and initiates only childless IKE SAs; ``never``
refuses them as responder (and does not announce support in IKE_SA_INIT).  An IKE SA
initiated without any Child SA needs the announcement (§3).  A Child SA taken out of IKE_AUTH
is created by CREATE_CHILD_SA right after it, with its own key exchange when its proposals
carry one.
"""

from __future__ import annotations

from ..policy.connection import Connection
from ..wire.payloads import SA, Payload, TSi, TSr, first_of
from .child_create import ChildCreate
from .sa import IkeSa


def plan_initiator(sa: IkeSa, conn: Connection) -> tuple[str | None, str | None]:
    """Before our IKE_AUTH request: (why we cannot go on, or None; the Child SA to propose in
    IKE_AUTH, or None).  A first Child SA the policy keeps out of IKE_AUTH is queued first
    behind it (``sa.initial_child`` stays, for a retried initiation)."""
    child = sa.initial_child
    if not sa.peer_childless:
        if conn.childless == "force":
            return "peer does not support childless IKE_SA initiation (RFC 6023)", None
        if child is None:
            return "IKE SA without a Child SA, but the peer does not support childless ones", None
        return None, child
    if child is not None and conn.childless in ("prefer", "force"):
        sa.tasks.appendleft(ChildCreate(conn.children[child]))
        return None, None
    return None, child


def refusal_as_responder(conn: Connection, payloads: tuple[Payload, ...]) -> str | None:
    """Why an IKE_AUTH request is refused under the connection's policy, or None."""
    childless = all(first_of(payloads, kind) is None for kind in (SA, TSi, TSr))
    if childless and conn.childless == "never":
        return "peer tried to initiate a childless IKE SA (childless = never)"
    if not childless and conn.childless == "force":
        return "peer did not initiate a childless IKE SA (childless = force)"
    return None
