"""Human-readable and JSON renderings of IKEv2 payload values (RFC 7296 §3).

Each payload becomes a :class:`View`: a one-line title, indented detail lines and a JSON-able
dict.  Nothing here decrypts or parses octets beyond what the codec already did, except small,
bounds-checked interpretations of notify / CP data.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

from petrel.wire.payloads import (
    AUTH,
    CERT,
    CERTREQ,
    CP,
    EAP,
    KE,
    SA,
    SK,
    SKF,
    ConfigAttribute,
    Delete,
    IDi,
    IDr,
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
    EncrId,
    EsnId,
    HashAlgorithm,
    IdType,
    IntegId,
    KeId,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
    TsType,
    name_of,
)

# Vendor IDs simple enough to recognise: MD5 of a product name, as those products send it.
KNOWN_VENDOR_IDS: dict[bytes, str] = {
    bytes.fromhex("882fe56d6fd20dbc2251613b2ebe5beb"): "strongSwan",
}

IP_PROTOCOLS = {0: "any", 1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 58: "ipv6-icmp", 132: "sctp"}
_ADDRESS_ATTRS = frozenset(
    {
        CfgAttr.INTERNAL_IP4_ADDRESS,
        CfgAttr.INTERNAL_IP4_NETMASK,
        CfgAttr.INTERNAL_IP4_DNS,
        CfgAttr.INTERNAL_IP4_NBNS,
        CfgAttr.INTERNAL_IP4_DHCP,
        CfgAttr.INTERNAL_IP6_DNS,
        CfgAttr.INTERNAL_IP6_DHCP,
        CfgAttr.P_CSCF_IP4_ADDRESS,
        CfgAttr.P_CSCF_IP6_ADDRESS,
        CfgAttr.HOME_AGENT_ADDRESS,
    }
)
_EAP_CODES = {1: "Request", 2: "Response", 3: "Success", 4: "Failure"}


@dataclass(slots=True)
class View:
    """A payload rendered: ``title`` (one line), ``lines`` (details) and ``json`` (a dict)."""

    name: str
    title: str
    lines: list[str] = field(default_factory=list)
    json: dict[str, Any] = field(default_factory=dict)


def payload_name(payload: Payload) -> str:
    """The registry name of a payload's type (``SA``, ``IDi``, ``NOTIFY``, ``UNKNOWN_99``)."""
    if isinstance(payload, UnknownPayload):
        return f"UNKNOWN_{payload.type_value}"
    return name_of(payload.payload_type, PayloadType)


def printable(data: bytes) -> str:
    """Text from untrusted octets, with non-printable characters escaped (never raw controls)."""
    text = data.decode("utf-8", errors="backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _ip(data: bytes) -> str | None:
    if len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if len(data) == 16:
        return str(ipaddress.IPv6Address(data))
    return None


def transform_text(t: Transform) -> str:
    """strongSwan-style name of one transform: ``ENCR_AES_GCM_16 (256)``, ``KE CURVE25519``."""
    ttype = int(t.type)
    if ttype == TransformType.ENCR:
        text = f"ENCR_{name_of(t.id, EncrId)}"
    elif ttype == TransformType.PRF:
        text = f"PRF_{name_of(t.id, PrfId)}"
    elif ttype == TransformType.INTEG:
        text = f"INTEG_{name_of(t.id, IntegId)}"
    elif ttype == TransformType.KE:
        text = f"KE {name_of(t.id, KeId)}"
    elif ttype == TransformType.ESN:
        text = name_of(t.id, EsnId)
    elif TransformType.ADDKE1 <= ttype <= TransformType.ADDKE7:
        text = f"{name_of(ttype, TransformType)} {name_of(t.id, KeId)}"
    else:
        text = f"TRANSFORM_{ttype} {t.id}"
    if t.key_length is not None:
        text += f" ({t.key_length})"
    for atype, _tv, value in t.other_attributes:
        text += f" [attr {atype}={value.hex()}]"
    return text


def proposal_text(p: Proposal) -> str:
    """``#1 IKE: ENCR_AES_GCM_16 (256), PRF_HMAC_SHA2_256, KE CURVE25519``."""
    spi = f" spi {p.spi.hex()}" if p.spi else ""
    transforms = ", ".join(transform_text(t) for t in p.transforms) or "(no transforms)"
    return f"#{p.number} {name_of(p.protocol, ProtocolId)}{spi}: {transforms}"


def identity_text(id_type: int, data: bytes) -> str:
    """An ID payload's data rendered by its type (§3.5)."""
    kind = int(id_type)
    if kind in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        address = _ip(data)
        return address if address is not None else f"(bad address) {data.hex()}"
    if kind in (IdType.FQDN, IdType.RFC822_ADDR):
        return printable(data)
    if kind == IdType.NULL:
        return "(null)"
    return data.hex()


def selector_text(ts: TrafficSelector) -> str:
    """``10.0.0.0/24 proto any ports 0-65535`` (a range when it is not one prefix)."""
    start, end = _ip(ts.start_addr), _ip(ts.end_addr)
    if start is None or end is None:
        where = f"{ts.start_addr.hex()}-{ts.end_addr.hex()}"
    else:
        try:
            nets = list(
                ipaddress.summarize_address_range(
                    ipaddress.ip_address(start), ipaddress.ip_address(end)
                )
            )
        except (TypeError, ValueError):
            nets = []
        where = str(nets[0]) if len(nets) == 1 else f"{start}-{end}"
    proto = IP_PROTOCOLS.get(ts.ip_protocol, str(ts.ip_protocol))
    ports = f"{ts.start_port}-{ts.end_port}"
    if (ts.start_port, ts.end_port) == (0, 65535):
        ports = "any"
    kind = "" if int(ts.ts_type) in tuple(TsType) else f" type {int(ts.ts_type)}"
    return f"{where} proto {proto} ports {ports}{kind}"


def _selector_json(ts: TrafficSelector) -> dict[str, Any]:
    return {
        "type": name_of(ts.ts_type, TsType),
        "start": _ip(ts.start_addr) or ts.start_addr.hex(),
        "end": _ip(ts.end_addr) or ts.end_addr.hex(),
        "protocol": ts.ip_protocol,
        "start_port": ts.start_port,
        "end_port": ts.end_port,
    }


def notify_extra(notify_type: int, data: bytes) -> str | None:
    """A short interpretation of well-known notify data (bounds-checked), or None."""
    kind = int(notify_type)
    if kind == NotifyType.INVALID_KE_PAYLOAD and len(data) == 2:
        return f"group {name_of(struct.unpack('!H', data)[0], KeId)}"
    if kind == NotifyType.SIGNATURE_HASH_ALGORITHMS and len(data) % 2 == 0:
        ids = struct.unpack(f"!{len(data) // 2}H", data)
        return "hashes " + ", ".join(name_of(i, HashAlgorithm) for i in ids)
    if kind == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD and len(data) == 1:
        return f"payload type {data[0]}"
    if kind == NotifyType.SET_WINDOW_SIZE and len(data) == 4:
        return f"window {struct.unpack('!I', data)[0]}"
    if kind in (NotifyType.ADDITIONAL_IP4_ADDRESS, NotifyType.ADDITIONAL_IP6_ADDRESS):
        return _ip(data)
    return None


def cfg_value_text(attr: ConfigAttribute) -> str:
    """A CP attribute's value (§3.15.1): addresses and prefixes decoded, empty = requested."""
    value, kind = attr.value, int(attr.type)
    if not value:
        return "(requested)"
    if kind == CfgAttr.INTERNAL_IP4_SUBNET and len(value) == 8:
        return f"{_ip(value[:4])}/{_ip(value[4:])}"
    if kind in (CfgAttr.INTERNAL_IP6_ADDRESS, CfgAttr.INTERNAL_IP6_SUBNET) and len(value) == 17:
        return f"{_ip(value[:16])}/{value[16]}"
    if kind in (CfgAttr.APPLICATION_VERSION, CfgAttr.INTERNAL_DNS_DOMAIN):
        return printable(value)
    if kind == CfgAttr.SUPPORTED_ATTRIBUTES and len(value) % 2 == 0:
        ids = struct.unpack(f"!{len(value) // 2}H", value)
        return ", ".join(name_of(i, CfgAttr) for i in ids)
    if kind in _ADDRESS_ATTRS:
        return _ip(value) or value.hex()
    return value.hex()


def view(payload: Payload) -> View:
    """Render one decoded payload."""
    name = payload_name(payload)
    crit = " (critical)" if payload.critical else ""
    v = View(name, f"{name}{crit}", json={"type": name})
    if payload.critical:
        v.json["critical"] = True
    if isinstance(payload, SA):
        v.title = f"SA{crit}: {len(payload.proposals)} proposal(s)"
        v.lines = [proposal_text(p) for p in payload.proposals]
        v.json["proposals"] = v.lines
    elif isinstance(payload, KE):
        group = name_of(payload.group, KeId)
        v.title = f"KE{crit}: group {group}, {len(payload.data)} octets"
        v.json.update(group=group, length=len(payload.data))
    elif isinstance(payload, IDi | IDr):
        id_type = name_of(payload.id_type, IdType)
        text = identity_text(payload.id_type, payload.data)
        v.title = f"{name}{crit}: {id_type} {text}"
        v.json.update(id_type=id_type, id=text)
    elif isinstance(payload, CERT | CERTREQ):
        enc = name_of(payload.encoding, CertEncoding)
        v.title = f"{name}{crit}: {enc}, {len(payload.data)} octets"
        v.json.update(encoding=enc, length=len(payload.data))
    elif isinstance(payload, AUTH):
        method = name_of(payload.method, AuthMethod)
        v.title = f"AUTH{crit}: method {method}, {len(payload.data)} octets"
        v.json.update(method=method, length=len(payload.data))
    elif isinstance(payload, Nonce):
        v.title = f"NONCE{crit}: {len(payload.data)} octets"
        v.json["length"] = len(payload.data)
    elif isinstance(payload, Notify):
        details = notify_json(payload)
        v.json.update(notify_type=details.pop("type"), **details)
        v.title = f"NOTIFY{crit}: {notify_summary(payload)}"
    elif isinstance(payload, Delete):
        proto = name_of(payload.protocol, ProtocolId)
        spis = [s.hex() for s in payload.spis]
        v.title = f"DELETE{crit}: {proto}" + (f" SPIs {', '.join(spis)}" if spis else " (IKE SA)")
        v.json.update(protocol=proto, spis=spis)
    elif isinstance(payload, VendorID):
        known = KNOWN_VENDOR_IDS.get(payload.data)
        v.title = f"VENDOR_ID{crit}: {payload.data.hex()}" + (f" ({known})" if known else "")
        v.json.update(data=payload.data.hex(), name=known)
    elif isinstance(payload, TSi | TSr):
        v.title = f"{name}{crit}: {len(payload.selectors)} selector(s)"
        v.lines = [selector_text(ts) for ts in payload.selectors]
        v.json["selectors"] = [_selector_json(ts) for ts in payload.selectors]
    elif isinstance(payload, CP):
        cfg = name_of(payload.cfg_type, CfgType)
        v.title = f"CP{crit}: {cfg}"
        v.lines = [f"{name_of(a.type, CfgAttr)}: {cfg_value_text(a)}" for a in payload.attributes]
        v.json.update(
            cfg_type=cfg,
            attributes=[
                {"type": name_of(a.type, CfgAttr), "value": a.value.hex()}
                for a in payload.attributes
            ],
        )
    elif isinstance(payload, EAP):
        msg = payload.message
        code = _EAP_CODES.get(msg[0], str(msg[0])) if msg else "?"
        ident = msg[1] if len(msg) > 1 else "?"
        eap_type = f", type {msg[4]}" if len(msg) > 4 else ""
        v.title = f"EAP{crit}: {code} id {ident}{eap_type}, {len(msg)} octets"
        v.json.update(code=code, length=len(msg))
    elif isinstance(payload, SK):
        first = name_of(payload.inner_next_payload, PayloadType)
        v.title = f"SK{crit}: {len(payload.body)} octets encrypted, first inner payload {first}"
        v.json.update(length=len(payload.body), inner_next_payload=first)
    elif isinstance(payload, SKF):
        v.title = (
            f"SKF{crit}: fragment {payload.fragment_number}/{payload.total_fragments}, "
            f"{len(payload.body)} octets encrypted"
        )
        v.json.update(
            fragment_number=payload.fragment_number,
            total_fragments=payload.total_fragments,
            length=len(payload.body),
        )
    elif isinstance(payload, UnknownPayload):
        v.title = f"{name}{crit}: {len(payload.data)} octets {payload.data[:32].hex()}"
        v.json["data"] = payload.data.hex()
    return v


def notify_summary(n: Notify) -> str:
    """``NAT_DETECTION_SOURCE_IP data 1a2b…`` with protocol/SPI when present."""
    text = name_of(n.notify_type, NotifyType)
    if n.spi:
        text += f" ({name_of(n.protocol, ProtocolId)} SPI {n.spi.hex()})"
    extra = notify_extra(n.notify_type, n.data)
    if extra:
        text += f" {extra}"
    if n.data:
        text += f" data {n.data.hex()}"
    return text


def notify_json(n: Notify) -> dict[str, Any]:
    """The ``notifies`` entry of the JSON output for one notify."""
    out: dict[str, Any] = {"type": name_of(n.notify_type, NotifyType), "data": n.data.hex()}
    if n.spi:
        out.update(protocol=name_of(n.protocol, ProtocolId), spi=n.spi.hex())
    return out
