"""Duplicate IKE SAs between the same identities, under the connection's ``unique`` policy
(strongSwan's semantics; RFC 7296 §2.4 for INITIAL_CONTACT).

``no`` (the default) keeps duplicates unless the new IKE SA's IKE_AUTH carried INITIAL_CONTACT,
which drops the older ones at once (the peer lost them); ``never`` keeps them even then;
``replace`` deletes the older IKE SAs of the same connection (Delete sent); ``keep`` refuses
the new one while an established one of the same connection exists.  Checked by the responder
in IKE_AUTH.
"""

from __future__ import annotations

import logging

from .ike_delete import delete_ike
from .sa import IkeSa, IkeState
from .services import IkeServices

log = logging.getLogger("petrel.ike")


def enforce(ctx: IkeServices, sa: IkeSa, initial_contact: bool, now: float) -> bool:
    """Apply the policy of ``sa``'s connection for the new IKE SA ``sa`` (identities set);
    True when the new one is to be refused (``keep``)."""
    conn = sa.connection
    policy = conn.unique if conn is not None else "no"
    if policy == "never" or (policy == "no" and not initial_contact):
        return False
    duplicates = [
        other
        for other in ctx.sas.values()
        if other is not sa
        and other.state is IkeState.ESTABLISHED
        and (other.local_id, other.remote_id) == (sa.local_id, sa.remote_id)
    ]
    if initial_contact:
        for other in duplicates:
            ctx.destroy(other, "replaced after INITIAL_CONTACT")
        return False
    same = [d for d in duplicates if d.connection is not None and d.connection.name == conn.name]
    if policy == "replace":
        for other in same:
            log.info(
                "IKE SA %d: deleting duplicate IKE SA %d for peer '%s' (unique = replace)",
                sa.ike_id,
                other.ike_id,
                sa.remote_id,
            )
            delete_ike(ctx, other, now, "replaced (unique = replace)")
        return False
    return bool(same)  # keep: the first one stays
