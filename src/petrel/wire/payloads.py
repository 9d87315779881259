"""IKEv2 message and payload values (RFC 7296 §3), as frozen dataclasses.

These are the typed values the codec (:mod:`petrel.wire.codec`) produces and consumes; the rest
of Petrel works only on them.  Every enum-typed field may also hold a plain ``int`` for a value
the registry does not know (see :mod:`petrel.wire.registry`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from .registry import (
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
    TransformType,
    TsType,
)

P = TypeVar("P", bound="Payload")

IKE_HEADER_LEN = 28
GENERIC_HEADER_LEN = 4

# IKE header flags, RFC 7296 §3.1.
FLAG_INITIATOR = 0x08
FLAG_VERSION = 0x10
FLAG_RESPONSE = 0x20


@dataclass(frozen=True, slots=True)
class IkeHeader:
    """The fixed 28-octet IKE header (§3.1).  ``length`` is the whole message's length."""

    spi_i: bytes
    spi_r: bytes
    next_payload: PayloadType | int
    exchange: ExchangeType | int
    message_id: int
    flags: int = 0
    major: int = 2
    minor: int = 0
    length: int = 0

    @property
    def is_initiator(self) -> bool:
        return bool(self.flags & FLAG_INITIATOR)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)


class Payload:
    """Base of every payload value.  ``payload_type`` is the Next Payload value naming it."""

    payload_type: ClassVar[PayloadType | int]
    critical: bool


@dataclass(frozen=True, slots=True)
class Transform:
    """§3.3.2.  ``key_length`` is the Key Length attribute (bits) or None when absent;
    other attributes are kept raw as (type, af_flag, value bytes) for round-tripping."""

    type: TransformType | int
    id: int
    key_length: int | None = None
    other_attributes: tuple[tuple[int, bool, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Proposal:
    """§3.3.1."""

    number: int
    protocol: ProtocolId | int
    spi: bytes
    transforms: tuple[Transform, ...]


@dataclass(frozen=True, slots=True)
class SA(Payload):
    payload_type: ClassVar[PayloadType] = PayloadType.SA
    proposals: tuple[Proposal, ...]
    critical: bool = False


@dataclass(frozen=True, slots=True)
class KE(Payload):
    """§3.4."""

    payload_type: ClassVar[PayloadType] = PayloadType.KE
    group: KeId | int
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class IDi(Payload):
    """§3.5.  ``data`` is the identification data as sent (address bytes, FQDN text, DER…)."""

    payload_type: ClassVar[PayloadType] = PayloadType.IDi
    id_type: IdType | int
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class IDr(Payload):
    """§3.5, responder's identity; same layout as :class:`IDi`."""

    payload_type: ClassVar[PayloadType] = PayloadType.IDr
    id_type: IdType | int
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class CERT(Payload):
    """§3.6."""

    payload_type: ClassVar[PayloadType] = PayloadType.CERT
    encoding: CertEncoding | int
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class CERTREQ(Payload):
    """§3.7.  ``data`` is the concatenated CA key hashes (or other encoding-specific data)."""

    payload_type: ClassVar[PayloadType] = PayloadType.CERTREQ
    encoding: CertEncoding | int
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class AUTH(Payload):
    """§3.8."""

    payload_type: ClassVar[PayloadType] = PayloadType.AUTH
    method: AuthMethod | int
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Nonce(Payload):
    """§3.9.  Length 16..256 octets is enforced by the engine, not the codec."""

    payload_type: ClassVar[PayloadType] = PayloadType.NONCE
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Notify(Payload):
    """§3.10.  ``spi`` is empty when the notify concerns the IKE SA."""

    payload_type: ClassVar[PayloadType] = PayloadType.NOTIFY
    notify_type: NotifyType | int
    data: bytes = b""
    protocol: ProtocolId | int = ProtocolId.NONE
    spi: bytes = b""
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Delete(Payload):
    """§3.11.  For IKE, ``spis`` is empty; for ESP/AH each SPI is 4 octets."""

    payload_type: ClassVar[PayloadType] = PayloadType.DELETE
    protocol: ProtocolId | int
    spis: tuple[bytes, ...] = ()
    spi_size: int = 0
    critical: bool = False


@dataclass(frozen=True, slots=True)
class VendorID(Payload):
    """§3.12."""

    payload_type: ClassVar[PayloadType] = PayloadType.VENDOR_ID
    data: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class TrafficSelector:
    """§3.13.1.  Addresses are packed bytes (4 or 16 octets); ports inclusive; protocol 0 = any."""

    ts_type: TsType | int
    ip_protocol: int
    start_port: int
    end_port: int
    start_addr: bytes
    end_addr: bytes


@dataclass(frozen=True, slots=True)
class TSi(Payload):
    """§3.13, initiator's traffic selectors."""

    payload_type: ClassVar[PayloadType] = PayloadType.TSi
    selectors: tuple[TrafficSelector, ...]
    critical: bool = False


@dataclass(frozen=True, slots=True)
class TSr(Payload):
    """§3.13, responder's traffic selectors; same layout as :class:`TSi`."""

    payload_type: ClassVar[PayloadType] = PayloadType.TSr
    selectors: tuple[TrafficSelector, ...]
    critical: bool = False


@dataclass(frozen=True, slots=True)
class ConfigAttribute:
    """§3.15.1."""

    type: CfgAttr | int
    value: bytes = b""


@dataclass(frozen=True, slots=True)
class CP(Payload):
    """§3.15."""

    payload_type: ClassVar[PayloadType] = PayloadType.CP
    cfg_type: CfgType | int
    attributes: tuple[ConfigAttribute, ...] = ()
    critical: bool = False


@dataclass(frozen=True, slots=True)
class EAP(Payload):
    """§3.16.  The EAP message is kept whole (code, identifier, length, type, data)."""

    payload_type: ClassVar[PayloadType] = PayloadType.EAP
    message: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class SK(Payload):
    """§3.14.  ``inner_next_payload`` is the type of the first payload inside; ``body`` is
    IV | ciphertext | ICV exactly as on the wire (see :mod:`petrel.crypto.sk`)."""

    payload_type: ClassVar[PayloadType] = PayloadType.SK
    inner_next_payload: PayloadType | int
    body: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class SKF(Payload):
    """RFC 7383 §2.5.  ``inner_next_payload`` is non-zero only in fragment number 1."""

    payload_type: ClassVar[PayloadType] = PayloadType.SKF
    inner_next_payload: PayloadType | int
    fragment_number: int
    total_fragments: int
    body: bytes
    critical: bool = False


@dataclass(frozen=True, slots=True)
class UnknownPayload(Payload):
    """A payload of a type Petrel does not know, kept raw (§2.5: skipped when not critical)."""

    type_value: int
    data: bytes
    critical: bool = False
    payload_type: ClassVar[int] = -1


@dataclass(frozen=True, slots=True)
class Message:
    """A whole IKE message: header plus the payload chain in order."""

    header: IkeHeader
    payloads: tuple[Payload, ...] = field(default_factory=tuple)

    def find(self, kind: type[Payload]) -> Payload | None:
        """The first payload of class ``kind`` or None."""
        for payload in self.payloads:
            if isinstance(payload, kind):
                return payload
        return None

    def notifies(self) -> tuple[Notify, ...]:
        return tuple(p for p in self.payloads if isinstance(p, Notify))


def first_of(payloads: Iterable[Payload], kind: type[P]) -> P | None:
    """The first payload of class ``kind`` in a chain, or None."""
    for payload in payloads:
        if isinstance(payload, kind):
            return payload
    return None
