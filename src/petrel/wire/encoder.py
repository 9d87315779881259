"""IKEv2 message encoder: :mod:`petrel.wire.payloads` values -> octets (RFC 7296 §3, RFC 7383).

Reserved fields are written as zero (§3.1, §3.2).  Canonical form where the wire allows a
choice: the Key Length attribute comes first among a transform's attributes (§3.3.5).  Values
that cannot be put on the wire raise ``ValueError`` (an SK payload that is not last, a field
that does not fit, a 9-octet SPI, ...).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from .layout import (
    AF_TV,
    ATTR,
    CRITICAL,
    DEFINED_FLAGS,
    DELETE_FIELDS,
    GENERIC,
    HEADER,
    KE_FIELDS,
    LAST,
    MORE_PROPOSALS,
    MORE_TRANSFORMS,
    NOTIFY_FIELDS,
    PROPOSAL,
    SKF_FIELDS,
    SKF_HEADER_LEN,
    TRANSFORM,
    TS_FIELDS,
    U8_RES3,
    U16,
)
from .payloads import (
    AUTH,
    CERT,
    CERTREQ,
    CP,
    EAP,
    GENERIC_HEADER_LEN,
    IKE_HEADER_LEN,
    KE,
    SA,
    SK,
    SKF,
    Delete,
    IDi,
    IDr,
    IkeHeader,
    Message,
    Nonce,
    Notify,
    Payload,
    Transform,
    TSi,
    TSr,
    UnknownPayload,
    VendorID,
)
from .registry import (
    PayloadType,
    TransformAttr,
)


def encode_header(header: IkeHeader) -> bytes:
    """The 28-octet IKE header (§3.1), written as given (Length included); reserved flags zero."""
    if len(header.spi_i) != 8 or len(header.spi_r) != 8:
        raise ValueError("IKE SPIs must be 8 octets")
    if not (0 <= header.major <= 15 and 0 <= header.minor <= 15):
        raise ValueError("IKE version numbers must fit in four bits")
    try:
        return HEADER.pack(
            header.spi_i,
            header.spi_r,
            header.next_payload,
            header.major << 4 | header.minor,
            header.exchange,
            header.flags & DEFINED_FLAGS,
            header.message_id,
            header.length,
        )
    except struct.error as exc:
        raise ValueError(f"IKE header field out of range: {exc}") from None


def encode_message(msg: Message) -> bytes:
    """The whole message; the header's Next Payload and Length are recomputed."""
    first, chain = encode_payloads(msg.payloads)
    h = msg.header
    length = IKE_HEADER_LEN + len(chain)
    header = IkeHeader(
        h.spi_i, h.spi_r, first, h.exchange, h.message_id, h.flags, h.major, h.minor, length
    )
    return encode_header(header) + chain


def encode_payloads(payloads: Iterable[Payload]) -> tuple[int, bytes]:
    """Encode a payload chain; returns (type of the first payload or 0, chain octets).

    Each generic header's Next Payload names the following payload, except that of an SK/SKF
    payload, which names its first inner payload (§3.14); SK/SKF must therefore be last.
    """
    items = tuple(payloads)
    parts: list[bytes] = []
    last = len(items) - 1
    try:
        for index, payload in enumerate(items):
            encoder = _ENCODERS.get(type(payload))
            if encoder is None:
                raise ValueError(f"cannot encode {type(payload).__name__}")
            body = encoder(payload)
            if isinstance(payload, SK | SKF):
                if index != last:
                    raise ValueError("an SK/SKF payload must be the last payload")
                following = payload.inner_next_payload
            else:
                following = _type_of(items[index + 1]) if index < last else PayloadType.NONE
            length = GENERIC_HEADER_LEN + len(body)
            if length > 0xFFFF:
                raise ValueError(f"{type(payload).__name__} payload of {length} octets")
            parts.append(GENERIC.pack(following, CRITICAL if payload.critical else 0, length))
            parts.append(body)
    except struct.error as exc:
        raise ValueError(f"payload field out of range: {exc}") from None
    first = _type_of(items[0]) if items else PayloadType.NONE
    return first, b"".join(parts)


def sk_generic_header(inner_next_payload: int, body_length: int, critical: bool = False) -> bytes:
    """The 4-octet generic header of an SK payload with a ``body_length``-octet body (§3.14)."""
    flags = CRITICAL if critical else 0
    return GENERIC.pack(inner_next_payload, flags, GENERIC_HEADER_LEN + body_length)


def skf_header(
    inner_next_payload: int, number: int, total: int, body_length: int, critical: bool = False
) -> bytes:
    """The 8-octet header of an SKF payload with a ``body_length``-octet body (RFC 7383)."""
    flags = CRITICAL if critical else 0
    length = SKF_HEADER_LEN + body_length
    return GENERIC.pack(inner_next_payload, flags, length) + SKF_FIELDS.pack(number, total)


def _type_of(payload: Payload) -> int:
    if isinstance(payload, UnknownPayload):
        return payload.type_value
    return payload.payload_type


def _encode_sa(sa: SA) -> bytes:
    parts: list[bytes] = []
    last = len(sa.proposals) - 1
    for index, proposal in enumerate(sa.proposals):
        transforms = _encode_transforms(proposal.transforms)
        spi = proposal.spi
        parts.append(
            PROPOSAL.pack(
                LAST if index == last else MORE_PROPOSALS,
                PROPOSAL.size + len(spi) + len(transforms),
                proposal.number,
                proposal.protocol,
                len(spi),
                len(proposal.transforms),
            )
        )
        parts.append(spi)
        parts.append(transforms)
    return b"".join(parts)


def _encode_transforms(transforms: tuple[Transform, ...]) -> bytes:
    parts: list[bytes] = []
    last = len(transforms) - 1
    for index, transform in enumerate(transforms):
        attributes = _encode_attributes(transform)
        parts.append(
            TRANSFORM.pack(
                LAST if index == last else MORE_TRANSFORMS,
                TRANSFORM.size + len(attributes),
                transform.type,
                transform.id,
            )
        )
        parts.append(attributes)
    return b"".join(parts)


def _encode_attributes(transform: Transform) -> bytes:
    parts: list[bytes] = []
    if transform.key_length is not None:
        parts.append(ATTR.pack(AF_TV | TransformAttr.KEY_LENGTH, transform.key_length))
    for attr_type, tv, value in transform.other_attributes:
        if not 0 <= attr_type <= 0x7FFF or attr_type == TransformAttr.KEY_LENGTH:
            raise ValueError(f"transform attribute type {attr_type} not encodable here")
        if tv:
            if len(value) != 2:
                raise ValueError("a TV attribute value is 2 octets")
            parts.append(U16.pack(AF_TV | attr_type) + value)
        else:
            parts.append(ATTR.pack(attr_type, len(value)) + value)
    return b"".join(parts)


def _encode_ke(ke: KE) -> bytes:
    return KE_FIELDS.pack(ke.group) + ke.data


def _encode_id(ident: IDi | IDr) -> bytes:
    return U8_RES3.pack(ident.id_type) + ident.data


def _encode_cert(cert: CERT | CERTREQ) -> bytes:
    return bytes((cert.encoding,)) + cert.data


def _encode_auth(auth: AUTH) -> bytes:
    return U8_RES3.pack(auth.method) + auth.data


def _encode_data(payload: Nonce | VendorID | UnknownPayload) -> bytes:
    return payload.data


def _encode_notify(notify: Notify) -> bytes:
    return (
        NOTIFY_FIELDS.pack(notify.protocol, len(notify.spi), notify.notify_type)
        + notify.spi
        + (notify.data)
    )


def _encode_delete(delete: Delete) -> bytes:
    if any(len(spi) != delete.spi_size for spi in delete.spis):
        raise ValueError("every SPI of a Delete payload must be spi_size octets")
    if delete.spi_size == 0 and delete.spis:
        raise ValueError("a Delete payload cannot list empty SPIs")
    return DELETE_FIELDS.pack(delete.protocol, delete.spi_size, len(delete.spis)) + b"".join(
        delete.spis
    )


def _encode_selectors(payload: TSi | TSr) -> bytes:
    parts = [U8_RES3.pack(len(payload.selectors))]
    for ts in payload.selectors:
        if len(ts.start_addr) != len(ts.end_addr):
            raise ValueError("traffic selector addresses of different families")
        parts.append(
            TS_FIELDS.pack(
                ts.ts_type,
                ts.ip_protocol,
                TS_FIELDS.size + 2 * len(ts.start_addr),
                ts.start_port,
                ts.end_port,
            )
        )
        parts.append(ts.start_addr)
        parts.append(ts.end_addr)
    return b"".join(parts)


def _encode_cp(cp: CP) -> bytes:
    parts = [U8_RES3.pack(cp.cfg_type)]
    for attr in cp.attributes:
        if not 0 <= attr.type <= 0x7FFF:
            raise ValueError(f"configuration attribute type {attr.type} out of range")
        parts.append(ATTR.pack(attr.type, len(attr.value)))
        parts.append(attr.value)
    return b"".join(parts)


def _encode_eap(eap: EAP) -> bytes:
    return eap.message


def _encode_sk(sk: SK) -> bytes:
    return sk.body


def _encode_skf(skf: SKF) -> bytes:
    return SKF_FIELDS.pack(skf.fragment_number, skf.total_fragments) + skf.body


_ENCODERS: dict[type, Callable[[Payload], bytes]] = {  # type: ignore[dict-item]
    SA: _encode_sa,
    KE: _encode_ke,
    IDi: _encode_id,
    IDr: _encode_id,
    CERT: _encode_cert,
    CERTREQ: _encode_cert,
    AUTH: _encode_auth,
    Nonce: _encode_data,
    Notify: _encode_notify,
    Delete: _encode_delete,
    VendorID: _encode_data,
    TSi: _encode_selectors,
    TSr: _encode_selectors,
    CP: _encode_cp,
    EAP: _encode_eap,
    SK: _encode_sk,
    SKF: _encode_skf,
    UnknownPayload: _encode_data,
}
