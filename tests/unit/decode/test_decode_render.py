"""Readable renderings of payload fields."""

from __future__ import annotations

import pytest

from petrel.decode.render import (
    cfg_value_text,
    identity_text,
    notify_summary,
    printable,
    proposal_text,
    selector_text,
    transform_text,
    view,
)
from petrel.wire.payloads import (
    CP,
    EAP,
    ConfigAttribute,
    Delete,
    Notify,
    Proposal,
    TrafficSelector,
    Transform,
    UnknownPayload,
)
from petrel.wire.registry import (
    CfgAttr,
    CfgType,
    EncrId,
    IdType,
    IntegId,
    KeId,
    NotifyType,
    ProtocolId,
    TransformType,
    TsType,
)


def test_proposal_in_strongswan_style() -> None:
    proposal = Proposal(
        2,
        ProtocolId.ESP,
        b"\xc0\xff\xee\x01",
        (
            Transform(TransformType.ENCR, EncrId.AES_CBC, 128),
            Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
            Transform(TransformType.KE, KeId.ECP_256),
            Transform(TransformType.ADDKE1, KeId.ML_KEM_768),
            Transform(TransformType.ESN, 1),
            Transform(TransformType.ENCR, 999),
        ),
    )
    assert proposal_text(proposal) == (
        "#2 ESP spi c0ffee01: ENCR_AES_CBC (128), INTEG_HMAC_SHA2_256_128, KE ECP_256, "
        "ADDKE1 ML_KEM_768, ESN, ENCR_UNKNOWN_999"
    )
    assert transform_text(Transform(77, 5)) == "TRANSFORM_77 5"


@pytest.mark.parametrize(
    ("id_type", "data", "text"),
    [
        (IdType.IPV4_ADDR, bytes([192, 0, 2, 1]), "192.0.2.1"),
        (IdType.IPV6_ADDR, bytes(15) + b"\x01", "::1"),
        (IdType.IPV4_ADDR, b"\x01", "(bad address) 01"),
        (IdType.FQDN, b"vpn.example.org", "vpn.example.org"),
        (IdType.RFC822_ADDR, b"a@b\x1b[31m", "a@b\\x1b[31m"),
        (IdType.KEY_ID, b"\x01\xab", "01ab"),
        (IdType.NULL, b"", "(null)"),
    ],
)
def test_identities(id_type: int, data: bytes, text: str) -> None:
    assert identity_text(id_type, data) == text


def test_selectors() -> None:
    v4 = TrafficSelector(TsType.IPV4_ADDR_RANGE, 17, 500, 4500, bytes([10, 0, 0, 1]),
                         bytes([10, 0, 0, 9]))  # fmt: skip
    assert selector_text(v4) == "10.0.0.1-10.0.0.9 proto udp ports 500-4500"
    v6 = TrafficSelector(TsType.IPV6_ADDR_RANGE, 0, 0, 65535, bytes(16), b"\xff" * 16)
    assert selector_text(v6) == "::/0 proto any ports any"
    odd = TrafficSelector(99, 0, 0, 65535, b"\x01\x02", b"\x03\x04")
    assert selector_text(odd) == "0102-0304 proto any ports any type 99"


def test_config_attributes() -> None:
    assert cfg_value_text(ConfigAttribute(CfgAttr.INTERNAL_IP4_DNS)) == "(requested)"
    assert cfg_value_text(ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS, bytes([10, 3, 0, 1]))) == (
        "10.3.0.1"
    )
    subnet = ConfigAttribute(CfgAttr.INTERNAL_IP4_SUBNET, bytes([10, 0, 0, 0, 255, 255, 0, 0]))
    assert cfg_value_text(subnet) == "10.0.0.0/255.255.0.0"
    v6 = ConfigAttribute(CfgAttr.INTERNAL_IP6_ADDRESS, bytes(15) + b"\x01" + bytes([64]))
    assert cfg_value_text(v6) == "::1/64"
    reply = view(CP(CfgType.CFG_REPLY, (ConfigAttribute(CfgAttr.APPLICATION_VERSION, b"x 1"),)))
    assert reply.title == "CP: CFG_REPLY" and reply.lines == ["APPLICATION_VERSION: x 1"]


def test_notifies_and_misc_payloads() -> None:
    assert notify_summary(Notify(NotifyType.INVALID_KE_PAYLOAD, b"\x00\x13")) == (
        "INVALID_KE_PAYLOAD group ECP_256 data 0013"
    )
    rekey = Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, b"\x01\x02\x03\x04")
    assert notify_summary(rekey) == "REKEY_SA (ESP SPI 01020304)"
    assert notify_summary(Notify(40000, b"\xaa")) == "UNKNOWN_40000 data aa"
    assert view(Notify(NotifyType.COOKIE, b"\x01")).json == {
        "type": "NOTIFY",
        "notify_type": "COOKIE",
        "data": "01",
    }
    assert view(Delete(ProtocolId.ESP, (b"\x00\x00\x00\x01",), 4)).title == (
        "DELETE: ESP SPIs 00000001"
    )
    assert view(EAP(bytes([1, 7, 0, 9, 1]) + b"user")).title == (
        "EAP: Request id 7, type 1, 9 octets"
    )
    assert view(EAP(b"")).title == "EAP: ? id ?, 0 octets"
    assert view(UnknownPayload(99, b"\x01")).title == "UNKNOWN_99: 1 octets 01"
    assert printable(b"ok\x00\xff") == "ok\\x00\\xff"
