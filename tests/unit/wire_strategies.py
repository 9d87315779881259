"""Hypothesis strategies for well-formed IKEv2 payload and message values (tests only).

Every value drawn here satisfies ``decode(encode(v)) == v``; other packages' tests may use them
to feed engines random but valid messages (``from wire_strategies import …``: pyproject.toml puts
tests/unit on pytest's path). Needs ``hypothesis``, a development dependency.
"""

from __future__ import annotations

from dataclasses import replace
from enum import IntEnum

from hypothesis import strategies as st

from petrel.wire.codec import encode_message, encode_payloads
from petrel.wire.decoder import _DECODERS
from petrel.wire.payloads import (
    AUTH,
    CERT,
    CERTREQ,
    CP,
    EAP,
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    FLAG_VERSION,
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
from petrel.wire.registry import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    ExchangeType,
    IdType,
    KeId,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformAttr,
    TransformType,
    TsType,
    coerce,
)

__all__ = [
    "encrypted_payloads",
    "ike_headers",
    "message_bytes",
    "messages",
    "payload_chains",
    "plain_payloads",
    "proposals",
    "transforms",
]

_SMALL = 48  # keep drawn blobs short: examples stay fast and far below the 64 KiB limits


def _blob(min_size: int = 0, max_size: int = _SMALL) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=min_size, max_size=max_size)


def _enum(enum: type[IntEnum], bits: int) -> st.SearchStrategy[IntEnum | int]:
    """A member of ``enum`` or any ``bits``-bit value, coerced as the decoder does."""
    raw = st.integers(0, (1 << bits) - 1).map(lambda v: coerce(enum, v))
    return st.one_of(st.sampled_from(list(enum)), raw)


_u8 = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)
_critical = st.booleans()


@st.composite
def transforms(draw: st.DrawFn) -> Transform:
    """§3.3.2 transforms, with or without Key Length and other TV/TLV attributes."""
    other_attr = st.tuples(
        st.integers(0, 0x7FFF).filter(lambda t: t != TransformAttr.KEY_LENGTH),
        st.booleans(),
        _blob(max_size=8),
    ).map(lambda a: (a[0], a[1], a[2][:2].ljust(2, b"\0") if a[1] else a[2]))
    return Transform(
        draw(_enum(TransformType, 8)),
        draw(_u16),
        draw(st.none() | _u16),
        tuple(draw(st.lists(other_attr, max_size=3))),
    )


@st.composite
def proposals(draw: st.DrawFn, number: int = 1) -> Proposal:
    """A §3.3.1 proposal numbered ``number`` with an SPI size valid for its protocol."""
    protocol = draw(_enum(ProtocolId, 8))
    if protocol == ProtocolId.IKE:
        spi = draw(st.sampled_from([b"", b"\x01" * 8]) | _blob(8, 8))
    elif protocol in (ProtocolId.ESP, ProtocolId.AH):
        spi = draw(_blob(4, 4))
    else:
        spi = draw(_blob(max_size=8))
    return Proposal(number, protocol, spi, tuple(draw(st.lists(transforms(), max_size=5))))


@st.composite
def _sa(draw: st.DrawFn) -> SA:
    first = draw(st.integers(1, 250))
    count = draw(st.integers(1, 4))
    return SA(tuple(draw(proposals(first + i)) for i in range(count)), draw(_critical))


@st.composite
def _selector(draw: st.DrawFn) -> TrafficSelector:
    ts_type = draw(st.sampled_from(list(TsType)))
    size = 4 if ts_type == TsType.IPV4_ADDR_RANGE else 16
    return TrafficSelector(
        ts_type, draw(_u8), draw(_u16), draw(_u16), draw(_blob(size, size)), draw(_blob(size, size))
    )


@st.composite
def _delete(draw: st.DrawFn) -> Delete:
    spi_size = draw(st.sampled_from([0, 4, 8]) | st.integers(1, 16))
    spis = () if spi_size == 0 else tuple(draw(st.lists(_blob(spi_size, spi_size), max_size=5)))
    return Delete(draw(_enum(ProtocolId, 8)), spis, spi_size, draw(_critical))


@st.composite
def _eap(draw: st.DrawFn) -> EAP:
    code, identifier = draw(_u8), draw(_u8)
    rest = draw(_blob())
    length = 4 + len(rest)
    return EAP(bytes((code, identifier, length >> 8, length & 0xFF)) + rest, draw(_critical))


@st.composite
def _skf(draw: st.DrawFn) -> SKF:
    total = draw(st.integers(1, 0xFFFF))
    number = draw(st.integers(1, total))
    inner = draw(_enum(PayloadType, 8)) if number == 1 else PayloadType.NONE
    return SKF(inner, number, total, draw(_blob()), draw(_critical))


_UNKNOWN_TYPES = [
    t for t in range(1, 256) if t not in _DECODERS and t not in (SK.payload_type, SKF.payload_type)
]

_selectors = st.lists(_selector(), max_size=4).map(tuple)


def plain_payloads() -> st.SearchStrategy[Payload]:
    """Any payload that may appear anywhere in a chain (everything but SK and SKF)."""
    return st.one_of(
        _sa(),
        st.builds(KE, _enum(KeId, 16), _blob(), _critical),
        st.builds(IDi, _enum(IdType, 8), _blob(), _critical),
        st.builds(IDr, _enum(IdType, 8), _blob(), _critical),
        st.builds(CERT, _enum(CertEncoding, 8), _blob(), _critical),
        st.builds(CERTREQ, _enum(CertEncoding, 8), _blob(), _critical),
        st.builds(AUTH, _enum(AuthMethod, 8), _blob(), _critical),
        st.builds(Nonce, _blob(), _critical),
        st.builds(
            Notify,
            _enum(NotifyType, 16),
            _blob(),
            _enum(ProtocolId, 8),
            _blob(max_size=8),
            _critical,
        ),
        _delete(),
        st.builds(VendorID, _blob(), _critical),
        st.builds(TSi, _selectors, _critical),
        st.builds(TSr, _selectors, _critical),
        st.builds(
            CP,
            _enum(CfgType, 8),
            st.lists(
                st.builds(ConfigAttribute, _enum(CfgAttr, 15), _blob(max_size=16)), max_size=4
            ).map(tuple),
            _critical,
        ),
        _eap(),
        st.builds(UnknownPayload, st.sampled_from(_UNKNOWN_TYPES), _blob(), st.just(False)),
    )


def encrypted_payloads() -> st.SearchStrategy[Payload]:
    """SK (§3.14) or SKF (RFC 7383) payloads with an opaque body."""
    return st.one_of(st.builds(SK, _enum(PayloadType, 8), _blob(), _critical), _skf())


def payload_chains(max_size: int = 6) -> st.SearchStrategy[tuple[Payload, ...]]:
    """A chain of plain payloads, optionally ended by an SK/SKF payload."""
    return st.tuples(
        st.lists(plain_payloads(), max_size=max_size), st.none() | encrypted_payloads()
    ).map(lambda t: tuple(t[0]) + ((t[1],) if t[1] is not None else ()))


_flags = st.sets(st.sampled_from([FLAG_INITIATOR, FLAG_VERSION, FLAG_RESPONSE])).map(sum)


def ike_headers() -> st.SearchStrategy[IkeHeader]:
    """IKE headers with major version 2; next_payload and length are left for the caller."""
    return st.builds(
        IkeHeader,
        spi_i=_blob(8, 8),
        spi_r=_blob(8, 8),
        next_payload=st.just(PayloadType.NONE),
        exchange=_enum(ExchangeType, 8),
        message_id=st.integers(0, 0xFFFFFFFF),
        flags=_flags,
        major=st.just(2),
        minor=st.integers(0, 15),
        length=st.just(IKE_HEADER_LEN),
    )


def _settle(header: IkeHeader, payloads: tuple[Payload, ...]) -> Message:
    """The message with the header's Next Payload and Length as encoding will set them."""
    first, chain = encode_payloads(payloads)
    return Message(
        replace(header, next_payload=first, length=IKE_HEADER_LEN + len(chain)), payloads
    )


def messages() -> st.SearchStrategy[Message]:
    """Whole well-formed messages whose header fields match their encoding."""
    return st.builds(_settle, ike_headers(), payload_chains())


def message_bytes() -> st.SearchStrategy[bytes]:
    """Encoded well-formed messages (seeds for mutation tests)."""
    return messages().map(encode_message)
