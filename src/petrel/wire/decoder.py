"""IKEv2 message decoder: octets -> :mod:`petrel.wire.payloads` values (RFC 7296 §3, RFC 7383).

Every octet is hostile: each length is checked against the octets that remain and any problem
raises :class:`~petrel.wire.errors.DecodeError` carrying the notify the RFC prescribes, never
``IndexError`` or ``struct.error``.  Reserved fields and bits are ignored (§3.1, §3.2).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from .errors import DecodeError
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
    TRANSFORM,
    TS_FIELDS,
    TS_LAYOUT,
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
    ConfigAttribute,
    Delete,
    IDi,
    IDr,
    IkeHeader,
    Message,
    Nonce,
    Notify,
    Payload,
    Proposal,
    TrafficSelector,
    Transform,
    TSi,
    TSr,
    UnknownPayload,
    VendorID,
)
from .registry import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    EncrId,
    EsnId,
    ExchangeType,
    IdType,
    IntegId,
    KeId,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformAttr,
    TransformType,
    TsType,
    coerce,
)

_INVALID_SYNTAX = NotifyType.INVALID_SYNTAX
_TYPE_SK = int(PayloadType.SK)
_TYPE_SKF = int(PayloadType.SKF)


def _lookup(enum: type[IntEnum]) -> Callable[[int], IntEnum | int]:
    """A fast equivalent of ``registry.coerce(enum, v)``: the member for ``v`` or ``v`` itself."""
    table = {member.value: coerce(enum, member.value) for member in enum}
    get = table.get
    return lambda value: get(value, value)


_payload_type = _lookup(PayloadType)
_exchange = _lookup(ExchangeType)
_protocol = _lookup(ProtocolId)
_transform_type = _lookup(TransformType)
_ke_id = _lookup(KeId)
_id_type = _lookup(IdType)
_cert_encoding = _lookup(CertEncoding)
_auth_method = _lookup(AuthMethod)
_notify_type = _lookup(NotifyType)
_ts_type = _lookup(TsType)
_cfg_type = _lookup(CfgType)
_cfg_attr = _lookup(CfgAttr)
_transform_ids: dict[int, Callable[[int], IntEnum | int]] = {
    TransformType.ENCR: _lookup(EncrId),
    TransformType.PRF: _lookup(PrfId),
    TransformType.INTEG: _lookup(IntegId),
    TransformType.ESN: _lookup(EsnId),
}
for _t in TransformType:
    if _t == TransformType.KE or _t.name.startswith("ADDKE"):
        _transform_ids[_t] = _ke_id


def _syntax(detail: str, payload_type: int | None) -> DecodeError:
    return DecodeError(_INVALID_SYNTAX, detail, payload_type)


def decode_header(data: bytes | bytearray | memoryview) -> IkeHeader:
    """Decode the IKE header (§3.1) of the datagram ``data``.

    The Length field must equal ``len(data)``; a major version other than 2 raises
    INVALID_MAJOR_VERSION (§1.5, §2.5).  Reserved flag bits are dropped.
    """
    if len(data) < IKE_HEADER_LEN:
        raise _syntax(f"IKE header truncated ({len(data)} octets)", None)
    spi_i, spi_r, next_payload, version, exchange, flags, message_id, length = HEADER.unpack_from(
        data, 0
    )
    major = version >> 4
    if major != 2:
        raise DecodeError(NotifyType.INVALID_MAJOR_VERSION, f"major version {major}")
    if length != len(data):
        raise _syntax(f"IKE header length {length} but message has {len(data)} octets", None)
    return IkeHeader(
        spi_i=spi_i,
        spi_r=spi_r,
        next_payload=_payload_type(next_payload),
        exchange=_exchange(exchange),
        message_id=message_id,
        flags=flags & DEFINED_FLAGS,
        major=major,
        minor=version & 0x0F,
        length=length,
    )


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Decode a whole IKE message (no non-ESP marker).  An SK/SKF payload stays encrypted."""
    header = decode_header(data)
    view = memoryview(data)[IKE_HEADER_LEN:]
    return Message(header, _decode_chain(header.next_payload, view))


def decode_payloads(first: int, data: bytes | bytearray | memoryview) -> tuple[Payload, ...]:
    """Decode the payload chain ``data`` whose first payload has type ``first`` (§3.2).

    Used on the decrypted contents of an SK payload; the chain must fill ``data`` exactly.
    """
    return _decode_chain(first, memoryview(data))


def _decode_chain(next_type: int, view: memoryview) -> tuple[Payload, ...]:
    payloads: list[Payload] = []
    pos = 0
    end = len(view)
    while next_type != 0:
        if end - pos < GENERIC_HEADER_LEN:
            raise _syntax("payload header truncated", next_type)
        following, flags, length = GENERIC.unpack_from(view, pos)
        if length < GENERIC_HEADER_LEN:
            raise _syntax(f"payload length {length} below 4", next_type)
        if length > end - pos:
            raise _syntax(f"payload length {length} overruns {end - pos} octets", next_type)
        body = view[pos + GENERIC_HEADER_LEN : pos + length]
        critical = bool(flags & CRITICAL)
        pos += length
        if next_type in (_TYPE_SK, _TYPE_SKF):
            # §3.14: the Next Payload field of SK names the first inner payload; SK is last.
            if pos != end:
                raise _syntax("encrypted payload is not the last payload", next_type)
            if next_type == _TYPE_SK:
                payloads.append(SK(_payload_type(following), bytes(body), critical))
            else:
                payloads.append(_decode_skf(body, critical, following))
            return tuple(payloads)
        decoder = _DECODERS.get(next_type)
        if decoder is not None:
            payloads.append(decoder(body, critical))
        elif critical:
            # §2.5: an unrecognised payload with the critical bit set rejects the message.
            raise DecodeError(
                NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
                f"unsupported critical payload type {next_type}",
                int(next_type),
            )
        else:
            payloads.append(UnknownPayload(int(next_type), bytes(body)))
        next_type = following
    if pos != end:
        raise _syntax(f"{end - pos} octets after the last payload", None)
    return tuple(payloads)


def _decode_sa(body: memoryview, critical: bool) -> SA:
    """§3.3: one or more proposals, numbered consecutively, the last one marked as last."""
    ptype = PayloadType.SA
    proposals: list[Proposal] = []
    pos = 0
    end = len(body)
    if end == 0:
        raise _syntax("SA payload without proposals", ptype)
    while True:
        if end - pos < PROPOSAL.size:
            raise _syntax("proposal truncated", ptype)
        last, length, number, protocol, spi_size, count = PROPOSAL.unpack_from(body, pos)
        if last not in (LAST, MORE_PROPOSALS):
            raise _syntax(f"proposal Last Substruc {last}", ptype)
        if length < PROPOSAL.size + spi_size or length > end - pos:
            raise _syntax(f"proposal length {length} invalid", ptype)
        if number == 0 or (proposals and number != proposals[-1].number + 1):
            raise _syntax(f"proposal number {number} out of sequence", ptype)
        if protocol == ProtocolId.IKE and spi_size not in (0, 8):
            raise _syntax(f"IKE proposal SPI size {spi_size}", ptype)
        if protocol in (ProtocolId.ESP, ProtocolId.AH) and spi_size != 4:
            raise _syntax(f"ESP/AH proposal SPI size {spi_size}", ptype)
        spi_end = pos + PROPOSAL.size + spi_size
        transforms = _decode_transforms(body[spi_end : pos + length], count)
        spi = bytes(body[pos + PROPOSAL.size : spi_end])
        proposals.append(Proposal(number, _protocol(protocol), spi, transforms))
        pos += length
        if last == LAST:
            if pos != end:
                raise _syntax("octets after the last proposal", ptype)
            return SA(tuple(proposals), critical)
        if pos == end:
            raise _syntax("proposal list ends without a last proposal", ptype)


def _decode_transforms(body: memoryview, count: int) -> tuple[Transform, ...]:
    """§3.3.2: exactly ``count`` transforms filling ``body``, the last one marked as last."""
    ptype = PayloadType.SA
    transforms: list[Transform] = []
    pos = 0
    end = len(body)
    while pos < end:
        if end - pos < TRANSFORM.size:
            raise _syntax("transform truncated", ptype)
        last, length, ttype, tid = TRANSFORM.unpack_from(body, pos)
        if last not in (LAST, MORE_TRANSFORMS):
            raise _syntax(f"transform Last Substruc {last}", ptype)
        if length < TRANSFORM.size or length > end - pos:
            raise _syntax(f"transform length {length} invalid", ptype)
        if length == TRANSFORM.size:  # the common case: no attributes
            key_length, others = None, ()
        else:
            key_length, others = _decode_attributes(body[pos + TRANSFORM.size : pos + length])
        id_lookup = _transform_ids.get(ttype)
        transforms.append(
            Transform(
                _transform_type(ttype),
                id_lookup(tid) if id_lookup is not None else tid,
                key_length,
                others,
            )
        )
        pos += length
        if (last == LAST) != (pos == end):
            raise _syntax("transform Last Substruc does not match the proposal length", ptype)
    if len(transforms) != count:
        raise _syntax(f"proposal says {count} transforms but holds {len(transforms)}", ptype)
    return tuple(transforms)


def _decode_attributes(
    body: memoryview,
) -> tuple[int | None, tuple[tuple[int, bool, bytes], ...]]:
    """§3.3.5: TV (AF=1, 2-octet value) and TLV attributes; Key Length (14) must be TV, once."""
    ptype = PayloadType.SA
    key_length: int | None = None
    others: list[tuple[int, bool, bytes]] = []
    pos = 0
    end = len(body)
    while pos < end:
        if end - pos < ATTR.size:
            raise _syntax("transform attribute truncated", ptype)
        type_field, value = ATTR.unpack_from(body, pos)
        attr_type = type_field & 0x7FFF
        if type_field & AF_TV:
            if attr_type == TransformAttr.KEY_LENGTH:
                if key_length is not None:
                    raise _syntax("duplicate Key Length attribute", ptype)
                key_length = value
            else:
                others.append((attr_type, True, bytes(body[pos + 2 : pos + 4])))
            pos += ATTR.size
            continue
        if attr_type == TransformAttr.KEY_LENGTH:
            raise _syntax("Key Length attribute in TLV form", ptype)
        if value > end - pos - ATTR.size:
            raise _syntax(f"transform attribute length {value} overruns", ptype)
        start = pos + ATTR.size
        others.append((attr_type, False, bytes(body[start : start + value])))
        pos = start + value
    return key_length, tuple(others)


def _decode_ke(body: memoryview, critical: bool) -> KE:
    """§3.4: Diffie-Hellman Group Num, two reserved octets, key exchange data."""
    if len(body) < KE_FIELDS.size:
        raise _syntax("KE payload truncated", PayloadType.KE)
    (group,) = KE_FIELDS.unpack_from(body, 0)
    return KE(_ke_id(group), bytes(body[KE_FIELDS.size :]), critical)


def _id_fields(body: memoryview, ptype: PayloadType) -> tuple[IdType | int, bytes]:
    """§3.5: ID Type, three reserved octets, identification data."""
    if len(body) < U8_RES3.size:
        raise _syntax("ID payload truncated", ptype)
    (id_type,) = U8_RES3.unpack_from(body, 0)
    return _id_type(id_type), bytes(body[U8_RES3.size :])  # type: ignore[return-value]


def _decode_idi(body: memoryview, critical: bool) -> IDi:
    return IDi(*_id_fields(body, PayloadType.IDi), critical)


def _decode_idr(body: memoryview, critical: bool) -> IDr:
    return IDr(*_id_fields(body, PayloadType.IDr), critical)


def _decode_cert(body: memoryview, critical: bool) -> CERT:
    """§3.6: Cert Encoding octet, certificate data."""
    if len(body) < 1:
        raise _syntax("CERT payload truncated", PayloadType.CERT)
    return CERT(_cert_encoding(body[0]), bytes(body[1:]), critical)


def _decode_certreq(body: memoryview, critical: bool) -> CERTREQ:
    """§3.7: Cert Encoding octet, certification authority data."""
    if len(body) < 1:
        raise _syntax("CERTREQ payload truncated", PayloadType.CERTREQ)
    return CERTREQ(_cert_encoding(body[0]), bytes(body[1:]), critical)


def _decode_auth(body: memoryview, critical: bool) -> AUTH:
    """§3.8: Auth Method, three reserved octets, authentication data."""
    if len(body) < U8_RES3.size:
        raise _syntax("AUTH payload truncated", PayloadType.AUTH)
    (method,) = U8_RES3.unpack_from(body, 0)
    return AUTH(_auth_method(method), bytes(body[U8_RES3.size :]), critical)


def _decode_nonce(body: memoryview, critical: bool) -> Nonce:
    """§3.9: the nonce data (its 16..256 octet bounds are the engine's to check)."""
    return Nonce(bytes(body), critical)


def _decode_notify(body: memoryview, critical: bool) -> Notify:
    """§3.10: Protocol ID, SPI Size, Notify Message Type, SPI, notification data."""
    if len(body) < NOTIFY_FIELDS.size:
        raise _syntax("Notify payload truncated", PayloadType.NOTIFY)
    protocol, spi_size, notify_type = NOTIFY_FIELDS.unpack_from(body, 0)
    spi_end = NOTIFY_FIELDS.size + spi_size
    if spi_end > len(body):
        raise _syntax(f"Notify SPI size {spi_size} overruns", PayloadType.NOTIFY)
    return Notify(
        _notify_type(notify_type),
        bytes(body[spi_end:]),
        _protocol(protocol),
        bytes(body[NOTIFY_FIELDS.size : spi_end]),
        critical,
    )


def _decode_delete(body: memoryview, critical: bool) -> Delete:
    """§3.11: Protocol ID, SPI Size, Num of SPIs, SPIs; Num * Size must fill the payload."""
    ptype = PayloadType.DELETE
    if len(body) < DELETE_FIELDS.size:
        raise _syntax("Delete payload truncated", ptype)
    protocol, spi_size, count = DELETE_FIELDS.unpack_from(body, 0)
    if spi_size == 0 and count != 0:
        raise _syntax(f"Delete lists {count} SPIs of size 0", ptype)
    if count * spi_size != len(body) - DELETE_FIELDS.size:
        raise _syntax(f"Delete of {count} SPIs of {spi_size} octets: length mismatch", ptype)
    base = DELETE_FIELDS.size
    spis = tuple(bytes(body[base + i * spi_size : base + (i + 1) * spi_size]) for i in range(count))
    return Delete(_protocol(protocol), spis, spi_size, critical)


def _decode_vendor_id(body: memoryview, critical: bool) -> VendorID:
    """§3.12: the vendor identifier."""
    return VendorID(bytes(body), critical)


def _decode_selectors(body: memoryview, ptype: PayloadType) -> tuple[TrafficSelector, ...]:
    """§3.13: Number of TSs, three reserved octets, then exactly that many selectors."""
    if len(body) < U8_RES3.size:
        raise _syntax("TS payload truncated", ptype)
    (count,) = U8_RES3.unpack_from(body, 0)
    selectors: list[TrafficSelector] = []
    pos = U8_RES3.size
    end = len(body)
    for _ in range(count):
        if end - pos < TS_FIELDS.size:
            raise _syntax("traffic selector truncated", ptype)
        ts_type, protocol, length, start_port, end_port = TS_FIELDS.unpack_from(body, pos)
        layout = TS_LAYOUT.get(ts_type)
        if layout is None:
            raise _syntax(f"unsupported traffic selector type {ts_type}", ptype)
        expected, size = layout
        if length != expected:
            raise _syntax(f"selector length {length} for TS type {ts_type}", ptype)
        if end - pos < expected:
            raise _syntax("traffic selector overruns the payload", ptype)
        addr = pos + TS_FIELDS.size
        selectors.append(
            TrafficSelector(
                _ts_type(ts_type),
                protocol,
                start_port,
                end_port,
                bytes(body[addr : addr + size]),
                bytes(body[addr + size : addr + 2 * size]),
            )
        )
        pos += expected
    if pos != end:
        raise _syntax(f"{end - pos} octets after the last traffic selector", ptype)
    return tuple(selectors)


def _decode_tsi(body: memoryview, critical: bool) -> TSi:
    return TSi(_decode_selectors(body, PayloadType.TSi), critical)


def _decode_tsr(body: memoryview, critical: bool) -> TSr:
    return TSr(_decode_selectors(body, PayloadType.TSr), critical)


def _decode_cp(body: memoryview, critical: bool) -> CP:
    """§3.15: CFG Type, three reserved octets, attributes (R bit, type, length, value)."""
    ptype = PayloadType.CP
    if len(body) < U8_RES3.size:
        raise _syntax("CP payload truncated", ptype)
    (cfg_type,) = U8_RES3.unpack_from(body, 0)
    attributes: list[ConfigAttribute] = []
    pos = U8_RES3.size
    end = len(body)
    while pos < end:
        if end - pos < ATTR.size:
            raise _syntax("configuration attribute truncated", ptype)
        attr_type, length = ATTR.unpack_from(body, pos)
        start = pos + ATTR.size
        if length > end - start:
            raise _syntax(f"configuration attribute length {length} overruns", ptype)
        attributes.append(
            ConfigAttribute(_cfg_attr(attr_type & 0x7FFF), bytes(body[start : start + length]))
        )
        pos = start + length
    return CP(_cfg_type(cfg_type), tuple(attributes), critical)


def _decode_eap(body: memoryview, critical: bool) -> EAP:
    """§3.16: one EAP message (RFC 3748 §4) whose Length field must match the payload."""
    if len(body) < 4:
        raise _syntax("EAP message truncated", PayloadType.EAP)
    (length,) = U16.unpack_from(body, 2)
    if length != len(body):
        raise _syntax(f"EAP length {length} in a {len(body)}-octet payload", PayloadType.EAP)
    return EAP(bytes(body), critical)


def _decode_skf(body: memoryview, critical: bool, inner: int) -> SKF:
    """RFC 7383 §2.5: Fragment Number and Total Fragments, 1 <= number <= total."""
    if len(body) < SKF_FIELDS.size:
        raise _syntax("SKF payload truncated", PayloadType.SKF)
    number, total = SKF_FIELDS.unpack_from(body, 0)
    if not 1 <= number <= total:
        raise _syntax(f"fragment number {number} of {total}", PayloadType.SKF)
    return SKF(_payload_type(inner), number, total, bytes(body[SKF_FIELDS.size :]), critical)


_DECODERS: dict[int, Callable[[memoryview, bool], Payload]] = {
    PayloadType.SA: _decode_sa,
    PayloadType.KE: _decode_ke,
    PayloadType.IDi: _decode_idi,
    PayloadType.IDr: _decode_idr,
    PayloadType.CERT: _decode_cert,
    PayloadType.CERTREQ: _decode_certreq,
    PayloadType.AUTH: _decode_auth,
    PayloadType.NONCE: _decode_nonce,
    PayloadType.NOTIFY: _decode_notify,
    PayloadType.DELETE: _decode_delete,
    PayloadType.VENDOR_ID: _decode_vendor_id,
    PayloadType.TSi: _decode_tsi,
    PayloadType.TSr: _decode_tsr,
    PayloadType.CP: _decode_cp,
    PayloadType.EAP: _decode_eap,
}
_DECODERS = {int(k): v for k, v in _DECODERS.items()}  # plain-int keys: cheapest lookups
