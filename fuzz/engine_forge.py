"""The engine target's mutations (see fuzz_engine.py): edits of a scenario's plaintext payload
chain, its encoding, header and transport, then sealing with the receiver's own keys.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Input
from engine_scenarios import CORE_SCENARIOS, PSK, Scenario, scenarios

from petrel.crypto.auth import psk_auth, signed_octets
from petrel.crypto.sk import SkCipher
from petrel.wire.codec import encode_header, encode_payloads, sk_generic_header, skf_header
from petrel.wire.payloads import (
    AUTH,
    CERT,
    CERTREQ,
    CP,
    EAP,
    IKE_HEADER_LEN,
    KE,
    ConfigAttribute,
    Delete,
    IDi,
    IDr,
    IkeHeader,
    Nonce,
    Notify,
    Payload,
    TrafficSelector,
    UnknownPayload,
    VendorID,
)
from petrel.wire.registry import (
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
    TransformType,
    TsType,
)

# ---------------------------------------------------------------------------- mutations

# Field widths (bits) and the registry each field's values come from, by (class, field).
_INT_FIELDS: dict[tuple[str, str], tuple[int, tuple[int, ...]]] = {}


def _registry(*enums: Any) -> tuple[int, ...]:
    return tuple(sorted({int(v) for e in enums for v in e}))


def _ints(owner: str, field: str, bits: int, *enums: Any) -> None:
    _INT_FIELDS[(owner, field)] = (bits, _registry(*enums))


for _owner in ("Notify", "Delete"):
    _ints(_owner, "protocol", 8, ProtocolId)
_ints("Notify", "notify_type", 16, NotifyType)
_ints("Delete", "spi_size", 8)
_ints("Proposal", "number", 8)
_ints("Proposal", "protocol", 8, ProtocolId)
_ints("Transform", "type", 8, TransformType)
_ints("Transform", "id", 16, EncrId, PrfId, IntegId, KeId, EsnId)
_ints("Transform", "key_length", 16)
_ints("KE", "group", 16, KeId)
_ints("IDi", "id_type", 8, IdType)
_ints("IDr", "id_type", 8, IdType)
_ints("AUTH", "method", 8, AuthMethod)
_ints("CERT", "encoding", 8, CertEncoding)
_ints("CERTREQ", "encoding", 8, CertEncoding)
_ints("TrafficSelector", "ts_type", 8, TsType)
_ints("TrafficSelector", "ip_protocol", 8)
_ints("TrafficSelector", "start_port", 16)
_ints("TrafficSelector", "end_port", 16)
_ints("CP", "cfg_type", 8, CfgType)
_ints("ConfigAttribute", "type", 15, CfgAttr)
_ints("UnknownPayload", "type_value", 8, PayloadType)
_ints("IkeHeader", "message_id", 32)
_ints("IkeHeader", "flags", 8)
_ints("IkeHeader", "exchange", 8, ExchangeType)
_ints("IkeHeader", "major", 4)
_ints("IkeHeader", "minor", 4)

_SPECIAL_INTS = (0, 1, 2, 3, 4, 8, 16, 31, 32, 64, 127, 128, 255, 256, 1023, 4096, 65535)


def _mutate_int(inp: Input, value: int, bits: int, registry: tuple[int, ...]) -> int:
    top = (1 << bits) - 1
    choice = inp.int(6)
    if choice == 0 and registry:
        return inp.pick(registry)
    if choice == 1:
        return (value + 1) & top
    if choice == 2:
        return (value - 1) & top
    if choice == 3:
        return inp.pick(_SPECIAL_INTS) & top
    if choice == 4:
        return top
    return inp.int(top + 1)


class Dictionary:
    """Octet strings worth trying in a given scenario: its SPIs, key-exchange values, …"""

    def __init__(self, scenario: Scenario) -> None:
        values: list[bytes] = list(scenario.spis)
        values += [b"", bytes(4), b"\0\0\0\1", b"\0\0\0\xff", b"\xff" * 4, bytes(8)]
        values += [bytes(15), bytes(16), bytes(32), bytes(257), b"\x01" * 32, bytes(20)]
        values += [b"left", b"right", b"far-left", b"left-b", b"\xc0\x00\x02\x01", bytes(16)]
        values += [b"\xc6\x33\x64\x01", b"\xcb\x00\x71\x01", b"\x00\x50", b"\x00\x0e"]
        for payload in scenario.payloads:
            if isinstance(payload, KE | Nonce):
                values.append(payload.data)
        values += scenario.words  # last: the older scenarios' dictionaries stay as they were
        self.values = tuple(values)


def _mutate_bytes(inp: Input, value: bytes, words: Dictionary) -> bytes:
    choice = inp.int(8)
    if choice == 0:
        return inp.pick(words.values)
    if choice == 1 and value:
        pos = inp.int(len(value))
        return value[:pos] + bytes((value[pos] ^ (1 << inp.int(8)),)) + value[pos + 1 :]
    if choice == 2:
        return value[: inp.int(len(value) + 1)]
    if choice == 3:
        return value + inp.blob(64)
    if choice == 4:
        return b""
    if choice == 5 and value:
        pos = inp.int(len(value))
        return value[:pos] + bytes((inp.byte(),)) + value[pos + 1 :]
    if choice == 6:
        return bytes(len(value))
    return inp.blob(96)


def _mutate_tuple(inp: Input, value: tuple[Any, ...], words: Dictionary, depth: int) -> tuple:
    items = list(value)
    choice = inp.int(6)
    if not items:
        return value
    index = inp.int(len(items))
    if choice == 0:
        del items[index]
    elif choice == 1:
        items.insert(inp.int(len(items) + 1), items[index])
    elif choice == 2:
        other = inp.int(len(items))
        items[index], items[other] = items[other], items[index]
    elif choice == 3:
        items = items[:1] if inp.bool() else []
    else:
        items[index] = _mutate_value(inp, items[index], "", "", words, depth + 1)
    return tuple(items)


def _mutate_value(
    inp: Input, value: Any, owner: str, field: str, words: Dictionary, depth: int
) -> Any:
    if depth > 6:
        return value
    if isinstance(value, bool):
        return not value
    if isinstance(value, int) or (value is None and field == "key_length"):
        bits, registry = _INT_FIELDS.get((owner, field), (8, ()))
        if value is None:
            return inp.pick((128, 256, 192, 0, 65535))
        if field == "key_length" and inp.chance(4):
            return None
        return _mutate_int(inp, int(value), bits, registry)
    if isinstance(value, bytes):
        return _mutate_bytes(inp, value, words)
    if isinstance(value, tuple):
        return _mutate_tuple(inp, value, words, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mutate_dataclass(inp, value, words, depth)
    return value


def _mutate_dataclass(inp: Input, value: Any, words: Dictionary, depth: int) -> Any:
    fields = [f for f in dataclasses.fields(value) if f.init]
    if not fields:
        return value
    field = inp.pick(fields)
    old = getattr(value, field.name)
    new = _mutate_value(inp, old, type(value).__name__, field.name, words, depth + 1)
    try:
        return dataclasses.replace(value, **{field.name: new})
    except (TypeError, ValueError):
        return value


def _distinct(scenario_list: list[Scenario], seen: dict[bytes, Payload]) -> list[Payload]:
    """The payloads of ``scenario_list`` not in ``seen`` (which they are added to)."""
    out = []
    for scenario in scenario_list:
        for payload in scenario.payloads:
            try:
                key = bytes((int(payload.payload_type),)) + encode_payloads((payload,))[1]
            except ValueError:
                continue
            if key not in seen:
                seen[key] = payload
                out.append(payload)
    return out


def _palette() -> tuple[Payload, ...]:
    """Payloads to insert: every payload of every scenario, plus kinds none of them carries.
    In the order they were added (the core scenarios', the first extras, the newer extras,
    the newer scenarios'), so that an input's pick keeps its meaning as far as it can."""
    seen: dict[bytes, Payload] = {}
    core = _distinct(scenarios()[:CORE_SCENARIOS], seen)
    v4 = TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, bytes(4), b"\xff" * 4)
    extra: list[Payload] = [
        Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, bytes(4)),
        Notify(NotifyType.INITIAL_CONTACT),
        Notify(NotifyType.AUTHENTICATION_FAILED),
        Notify(NotifyType.USE_TRANSPORT_MODE),
        Notify(NotifyType.INVALID_KE_PAYLOAD, b"\x00\x1f"),
        Notify(NotifyType.INVALID_KE_PAYLOAD, b"\x00\x13"),
        Notify(NotifyType.COOKIE, bytes(16)),
        Notify(NotifyType.TEMPORARY_FAILURE),
        Notify(NotifyType.CHILD_SA_NOT_FOUND, b"", ProtocolId.ESP, bytes(4)),
        Notify(NotifyType.NO_PROPOSAL_CHOSEN),
        Notify(NotifyType.TS_UNACCEPTABLE),
        Notify(NotifyType.INVALID_SYNTAX),
        Notify(NotifyType.INVALID_IKE_SPI),
        Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
        Notify(NotifyType.NAT_DETECTION_SOURCE_IP, bytes(20)),
        Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, bytes(20)),
        Notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, b"\x30"),
        Delete(ProtocolId.IKE),
        Delete(ProtocolId.ESP, (bytes(4),), 4),
        Delete(ProtocolId.AH, (bytes(4), b"\0\0\1\0"), 4),
        UnknownPayload(200, b"opaque"),
        UnknownPayload(201, b"", critical=True),
        VendorID(b"petrel-fuzz"),
        CP(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),)),
        EAP(b"\x02\x01\x00\x06\x01a"),
        CERT(CertEncoding.X509_SIGNATURE, b"\x30\x03\x02\x01\x00"),
        CERTREQ(CertEncoding.X509_SIGNATURE, bytes(20)),
        KE(KeId.CURVE25519, bytes(32)),
        Nonce(bytes(range(32))),
        AUTH(AuthMethod.PSK, bytes(32)),
        IDi(IdType.FQDN, b"left"),
        IDr(IdType.FQDN, b"right"),
        UnknownPayload(int(PayloadType.TSi), bytes(4)),
        UnknownPayload(int(PayloadType.SA), b""),
    ]
    from petrel.wire.payloads import TSi, TSr

    extra += [TSi((v4,)), TSr((v4,))]
    newer = _distinct(scenarios()[CORE_SCENARIOS:], seen)
    return (*core, *extra, *_newer_extra(), *newer)


def _newer_extra() -> list[Payload]:
    """For the virtual IP, MOBIKE and childless worlds (engine_scenarios_extra)."""
    a4 = ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS, b"\x0a\x03\x00\x05")
    a6 = ConfigAttribute(CfgAttr.INTERNAL_IP6_ADDRESS)
    return [
        CP(CfgType.CFG_REPLY, (a4, ConfigAttribute(CfgAttr.INTERNAL_IP4_DNS, bytes(4)))),
        CP(CfgType.CFG_REPLY, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS, b"\xff" * 4),)),
        CP(CfgType.CFG_REPLY, (ConfigAttribute(CfgAttr.INTERNAL_IP6_ADDRESS, bytes(17)),)),
        CP(CfgType.CFG_REQUEST, (a6,)),
        CP(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS), a6)),
        CP(CfgType.CFG_SET, (a4,)),
        CP(CfgType.CFG_ACK, ()),
        Notify(NotifyType.INTERNAL_ADDRESS_FAILURE),
        Notify(NotifyType.FAILED_CP_REQUIRED),
        Notify(NotifyType.MOBIKE_SUPPORTED),
        Notify(NotifyType.UPDATE_SA_ADDRESSES),
        Notify(NotifyType.NO_NATS_ALLOWED, b"\xc0\x00\x02\x03\xc0\x00\x02\x02\x11\x94\x11\x94"),
        Notify(NotifyType.ADDITIONAL_IP4_ADDRESS, b"\xc0\x00\x02\x03"),
        Notify(NotifyType.ADDITIONAL_IP6_ADDRESS, bytes(16)),
        Notify(NotifyType.NO_ADDITIONAL_ADDRESSES),
        Notify(NotifyType.COOKIE2, bytes(8)),
        Notify(NotifyType.UNEXPECTED_NAT_DETECTED),
        Notify(NotifyType.CHILDLESS_IKEV2_SUPPORTED),
    ]


_PALETTE: list[tuple[Payload, ...]] = []


def palette() -> tuple[Payload, ...]:
    if not _PALETTE:
        _PALETTE.append(_palette())
    return _PALETTE[0]


def _fix_auth(scenario: Scenario, payloads: list[Payload]) -> None:
    """Recompute the AUTH payload for the (possibly edited) ID payload, with the PSK the
    attacker is assumed to know: the edited identity then still authenticates."""
    if scenario.auth is None:
        return
    message, nonce, prf, sk_p = scenario.auth
    kind = IDr if scenario.header.is_response else IDi
    ident = next((p for p in payloads if isinstance(p, kind)), None)
    index = next((i for i, p in enumerate(payloads) if isinstance(p, AUTH)), None)
    if ident is None or index is None or prf is None:
        return
    body = bytes((int(ident.id_type) & 0xFF, 0, 0, 0)) + ident.data
    value = psk_auth(prf, PSK, signed_octets(message, nonce, prf, sk_p, body))
    payloads[index] = AUTH(AuthMethod.PSK, value)


def _payload_op(inp: Input, scenario: Scenario, chain: list[Payload], words: Dictionary) -> None:
    op = inp.int(11)
    n = len(chain)
    if op == 0 and n:
        del chain[inp.int(n)]
    elif op == 1 and n:
        chain.insert(inp.int(n + 1), chain[inp.int(n)])
    elif op == 2 and n:
        chain.insert(inp.int(n), chain.pop(inp.int(n)))
    elif op in (3, 4, 5) and n:
        index = inp.int(n)
        chain[index] = _mutate_dataclass(inp, chain[index], words, 0)
    elif op == 6:
        chain.insert(inp.int(n + 1), inp.pick(palette()))
    elif op == 7 and n:
        chain[inp.int(n)] = inp.pick(palette())
    elif op == 8:
        spi = inp.pick(words.values)
        protocol = inp.pick((ProtocolId.ESP, ProtocolId.IKE, ProtocolId.AH, ProtocolId.NONE))
        notify = Notify(inp.pick(_INT_FIELDS[("Notify", "notify_type")][1]), b"", protocol, spi)
        chain.insert(inp.int(n + 1), notify)
    elif op == 9:
        _fix_auth(scenario, chain)
    elif op == 10:
        spis = tuple(s for s in (inp.pick(words.values) for _ in range(inp.int(4))) if s)
        size = len(spis[0]) if spis else inp.pick((0, 4, 8))
        spis = tuple(s[:size].ljust(size, b"\0") for s in spis)
        protocol = inp.pick((ProtocolId.ESP, ProtocolId.IKE, ProtocolId.AH, 7))
        chain.insert(inp.int(n + 1), Delete(protocol, spis, size))


def _header_op(inp: Input, header: IkeHeader, words: Dictionary) -> IkeHeader:
    field = inp.pick(("message_id", "message_id", "flags", "exchange", "spi", "major", "minor"))
    if field == "spi":
        which = inp.pick(("spi_i", "spi_r"))
        value = inp.pick(words.values)
        value = value[:8].ljust(8, b"\0")
        return dataclasses.replace(header, **{which: value})
    bits, registry = _INT_FIELDS[("IkeHeader", field)]
    return dataclasses.replace(
        header, **{field: _mutate_int(inp, getattr(header, field), bits, registry)}
    )


def _chain_offsets(first: int, inner: bytes) -> list[int]:
    """Where each generic payload header of an encoded chain starts."""
    offsets, pos = [], 0
    while pos + 4 <= len(inner) and len(offsets) < 32:
        offsets.append(pos)
        length = int.from_bytes(inner[pos + 2 : pos + 4], "big")
        if length < 4:
            break
        pos += length
    return offsets


def _raw_op(inp: Input, first: int, inner: bytearray) -> int:
    """One octet-level edit of an encoded payload chain; returns the (new) first type."""
    offsets = _chain_offsets(first, bytes(inner))
    op = inp.int(7)
    if op == 0 and offsets:  # a payload length
        pos = inp.pick(offsets) + 2
        old = int.from_bytes(inner[pos : pos + 2], "big")
        new = inp.pick((0, 1, 3, 4, 5, old - 1, old + 1, old + 4, 0xFFFF, inp.int(0x10000)))
        inner[pos : pos + 2] = (new & 0xFFFF).to_bytes(2, "big")
    elif op == 1 and offsets:  # a next-payload type
        pos = inp.pick(offsets)
        inner[pos] = inp.pick(_INT_FIELDS[("UnknownPayload", "type_value")][1] + (0, 255))
    elif op == 2 and offsets:  # the critical bit and the reserved bits
        inner[inp.pick(offsets) + 1] ^= inp.pick((0x80, 0x01, 0x7F))
    elif op == 3 and inner:
        inner[inp.int(len(inner))] = inp.byte()
    elif op == 4:
        del inner[inp.int(len(inner) + 1) :]
    elif op == 5:
        inner += inp.blob(48)
    else:
        first = inp.pick(_INT_FIELDS[("UnknownPayload", "type_value")][1] + (0, 255))
    return first


def _seal_sk(header: IkeHeader, first: int, inner: bytes, cipher: SkCipher) -> bytes:
    body_len = cipher.body_length(len(inner))
    fixed = dataclasses.replace(
        header, next_payload=PayloadType.SK, length=IKE_HEADER_LEN + 4 + body_len
    )
    aad = encode_header(fixed) + sk_generic_header(first, body_len)
    return aad + cipher.seal(aad, inner, bytes(cipher.encr.iv_size))


def _seal_skf(
    inp: Input, header: IkeHeader, first: int, inner: bytes, cipher: SkCipher, usual: int
) -> list[bytes]:
    """RFC 7383 fragments of ``inner``, with the input choosing how many (``usual``: as many
    as the peer sent) and how honest."""
    count = inp.int(7) or usual
    count = max(1, min(count, len(inner)))
    total = count if not inp.chance(8) else inp.pick((0, count - 1, count + 1, 0xFFFF, 65))
    base, extra = divmod(len(inner), count)
    fragments, pos = [], 0
    for number in range(1, count + 1):
        size = base + (1 if number <= extra else 0)
        piece = inner[pos : pos + size]
        pos += size
        shown = number if not inp.chance(16) else inp.int(count + 2)
        next_type = first if number == 1 else 0
        if inp.chance(16):
            next_type = inp.pick((0, first, int(PayloadType.NOTIFY)))
        body_len = cipher.body_length(len(piece))
        fixed = dataclasses.replace(
            header, next_payload=PayloadType.SKF, length=IKE_HEADER_LEN + 8 + body_len
        )
        aad = encode_header(fixed) + skf_header(next_type, shown, total & 0xFFFF, body_len)
        fragments.append(aad + cipher.seal(aad, piece, bytes(cipher.encr.iv_size)))
    order = inp.int(4)
    if order == 1:
        fragments.reverse()
    elif order == 2 and len(fragments) > 1:
        fragments.pop(inp.int(len(fragments)))
    elif order == 3:
        fragments.insert(inp.int(len(fragments) + 1), inp.pick(fragments))
    return fragments


_WORDS: dict[str, Dictionary] = {}


def forge(inp: Input, scenario: Scenario) -> list[bytes]:
    """The datagrams of one hostile, authentic version of the scenario's message."""
    words = _WORDS.get(scenario.name)
    if words is None:
        words = _WORDS[scenario.name] = Dictionary(scenario)
    chain = list(scenario.payloads)
    for _ in range(inp.int(5)):
        before = list(chain)
        _payload_op(inp, scenario, chain, words)
        try:
            encode_payloads(chain)
        except ValueError:
            chain = before  # not expressible on the wire; the raw edits can go further
    if scenario.auth is not None and inp.chance(3):
        _fix_auth(scenario, chain)
    header = scenario.header
    for _ in range(3):
        if not inp.chance(5):
            break
        header = _header_op(inp, header, words)
    try:
        first, encoded = encode_payloads(chain)
    except ValueError:
        first, encoded = encode_payloads(scenario.payloads)
    inner = bytearray(encoded)
    for _ in range(inp.int(4) if inp.chance(3) else 0):
        first = _raw_op(inp, first, inner)
    if scenario.cipher is None:
        fixed = dataclasses.replace(header, next_payload=first, length=IKE_HEADER_LEN + len(inner))
        try:
            return [encode_header(fixed) + bytes(inner)]
        except ValueError:
            return []
    fragment = scenario.fragmented != inp.chance(8)
    try:
        if fragment:
            usual = len(scenario.raw) if scenario.fragmented else 2
            return _seal_skf(inp, header, first, bytes(inner), scenario.cipher, usual)
        return [_seal_sk(header, first, bytes(inner), scenario.cipher)]
    except ValueError:  # a header field out of range
        return []
