"""Counts of IKE messages and engine events, fed by the daemon (sans-I/O, bounded).

Messages are classified from the fixed IKE header (RFC 7296 §3.1): exchange type, and
request or response by the R flag.  A datagram we send again byte for byte is a
retransmission (§2.1: a retransmitted request, or a cached response answering one); every
outgoing datagram is distinct otherwise (fresh IVs), so comparing digests of the last
datagrams sent is exact.  Input is hostile: anything shorter than a header is not counted
here (the engine counts it as a drop), unknown exchange types count as ``other``.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict

from ..ike import events as ev
from ..wire.registry import ExchangeType, NotifyType, name_of

IKE_HEADER = 28
_FLAG_RESPONSE = 0x20
_NON_ESP_MARKER = b"\0\0\0\0"
_RECENT_SENT = 512
MAX_REASONS = 64
"""Distinct free-text reasons kept as labels; more are counted as ``other``."""


def _exchange(code: int) -> str:
    return ExchangeType(code).name if code in ExchangeType._value2member_map_ else "other"


class IkeCounts:
    """What the daemon saw: messages, retransmissions, SA events, failures, rekeys."""

    def __init__(self) -> None:
        # (exchange, "in"/"out", "request"/"response") → count
        self.messages: Counter[tuple[str, str, str]] = Counter()
        self.retransmits: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()  # (notify, "sent"/"received")
        self.ike_down: Counter[str] = Counter()  # by reason
        self.events: Counter[str] = Counter()  # ike_established, child_established, rekeys
        self._sent: OrderedDict[bytes, None] = OrderedDict()

    # ---------------------------------------------------------------- datagrams

    def datagram(self, data: bytes, outgoing: bool) -> None:
        """One IKE datagram, with or without the non-ESP marker of port 4500."""
        if data[:4] == _NON_ESP_MARKER:
            data = data[4:]
        if len(data) < IKE_HEADER:
            return
        exchange = _exchange(data[18])
        kind = "response" if data[19] & _FLAG_RESPONSE else "request"
        if outgoing:
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if digest in self._sent:
                self.retransmits[(exchange, kind)] += 1
                return
            self._sent[digest] = None
            if len(self._sent) > _RECENT_SENT:
                self._sent.popitem(last=False)
        self.messages[(exchange, "out" if outgoing else "in", kind)] += 1

    # ---------------------------------------------------------------- events

    def event(self, event: ev.Event) -> None:
        if isinstance(event, ev.IkeSaUp):
            self.events["ike_established"] += 1
        elif isinstance(event, ev.ChildSaUp):
            self.events["child_established"] += 1
        elif isinstance(event, ev.IkeSaRekeyed):
            self.events["ike_rekeyed"] += 1
        elif isinstance(event, ev.ChildSaDown) and event.reason == "rekeyed":
            self.events["child_rekeyed"] += 1
        elif isinstance(event, ev.IkeSaDown):
            self._bounded(self.ike_down, event.reason)
        elif isinstance(event, ev.NegotiationFailed):
            notify = name_of(event.notify, NotifyType)
            self.failures[(notify, "received" if event.received else "sent")] += 1

    @staticmethod
    def _bounded(counter: Counter[str], reason: str) -> None:
        if reason not in counter and len(counter) >= MAX_REASONS:
            reason = "other"
        counter[reason] += 1
