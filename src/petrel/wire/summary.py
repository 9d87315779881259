"""One-line message summaries for logs, in the shape charon prints them:
``IKE_AUTH request 1 [ IDi N(INITIAL_CONTACT) AUTH SA TSi TSr ]``.

Only payload *types* (and notify type names) appear — never payload contents — so a summary
can be logged at any level without exposing keys, nonces or identities' secrets.
"""

from __future__ import annotations

from collections.abc import Iterable

from .payloads import SK, SKF, Delete, IkeHeader, Notify, Payload, UnknownPayload
from .registry import ExchangeType, NotifyType, PayloadType, ProtocolId, name_of

_SHORT = {PayloadType.NONCE: "No", PayloadType.VENDOR_ID: "V"}  # as charon prints them


def payload_label(payload: Payload) -> str:
    """``SA``, ``No``, ``N(NAT_DETECTION_SOURCE_IP)``, ``D(ESP)``, ``SKF(2/3)``, ``UNKNOWN_99``."""
    if isinstance(payload, Notify):
        return f"N({name_of(payload.notify_type, NotifyType)})"
    if isinstance(payload, Delete):
        return f"D({name_of(payload.protocol, ProtocolId)})"
    if isinstance(payload, SKF):
        return f"SKF({payload.fragment_number}/{payload.total_fragments})"
    if isinstance(payload, SK):
        return "SK"
    if isinstance(payload, UnknownPayload):
        return f"UNKNOWN_{payload.type_value}"
    return _SHORT.get(payload.payload_type) or name_of(payload.payload_type, PayloadType)


def message_summary(header: IkeHeader, payloads: Iterable[Payload]) -> str:
    """``<exchange> request|response <message id> [ <payload labels> ]``."""
    kind = "response" if header.is_response else "request"
    labels = " ".join(payload_label(p) for p in payloads)
    return f"{name_of(header.exchange, ExchangeType)} {kind} {header.message_id} [ {labels} ]"
