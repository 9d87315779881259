"""IKE messages counted by exchange, direction and kind (charon's counters plugin names).

Each message is counted once, where it is built (before protection, so retransmissions and
fragments are not counted again) or once it is parsed and authenticated (a reassembled
message once), globally and by connection name.
"""

from __future__ import annotations

from collections import Counter

from ..wire.payloads import IkeHeader
from ..wire.registry import ExchangeType

__all__ = ["MESSAGE_COUNTERS", "MessageCounters"]

_PREFIX = {
    ExchangeType.IKE_SA_INIT: "ike-init",
    ExchangeType.IKE_AUTH: "ike-auth",
    ExchangeType.CREATE_CHILD_SA: "create-child",
    ExchangeType.INFORMATIONAL: "info",
}

MESSAGE_COUNTERS = tuple(
    f"{prefix}-{way}-{kind}"
    for prefix in _PREFIX.values()
    for way in ("in", "out")
    for kind in ("req", "resp")
)
"""``ike-init-in-req`` … ``info-out-resp``, in charon's order."""


class MessageCounters:
    """Counts of IKE messages sent and received: ``total`` and ``by_conn[name]``."""

    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self.by_conn: dict[str, Counter[str]] = {}

    def count(self, header: IkeHeader, incoming: bool, conn: str | None) -> None:
        """One message of ``header``'s exchange; other exchange types are not counted."""
        prefix = _PREFIX.get(header.exchange)  # type: ignore[call-overload]
        if prefix is None:
            return
        kind = "resp" if header.is_response else "req"
        name = f"{prefix}-{'in' if incoming else 'out'}-{kind}"
        self.total[name] += 1
        if conn:
            self.by_conn.setdefault(conn, Counter())[name] += 1
