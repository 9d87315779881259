"""A realistic IKE_SA_INIT request built octet by octet from the RFC 7296 §3 layouts."""

from __future__ import annotations

from petrel.wire.codec import decode_message, encode_message
from petrel.wire.payloads import (
    KE,
    SA,
    SK,
    IkeHeader,
    Message,
    Nonce,
    Notify,
    Payload,
    VendorID,
)
from petrel.wire.registry import (
    EncrId,
    ExchangeType,
    IntegId,
    KeId,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
)

KE_DATA = bytes(range(0x40, 0x60))  # 32 octets, a Curve25519 public value
NONCE = bytes(range(0xA0, 0xC0))  # 32 octets
NAT_SRC = bytes(range(1, 21))  # 20-octet SHA-1 hashes
NAT_DST = bytes(range(21, 41))
VID = bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d3")  # 16 octets

H = bytes.fromhex


def ike_sa_init_request() -> bytes:
    """Octets written field by field; lengths worked out by hand (§3.1 … §3.12)."""
    header = (
        H("0102030405060708")  # IKE SA Initiator's SPI
        + H("0000000000000000")  # IKE SA Responder's SPI (zero in IKE_SA_INIT request)
        + H("21")  # Next Payload: SA (33)
        + H("20")  # MjVer 2, MnVer 0
        + H("22")  # Exchange Type: IKE_SA_INIT (34)
        + H("08")  # Flags: Initiator
        + H("00000000")  # Message ID 0
        + H("00000118")  # Length: 280
    )
    proposal_1 = (
        H("02 00 002c")  # more proposals follow, reserved, Proposal Length 44
        + H("01 01 00 04")  # Proposal Num 1, Protocol IKE, SPI Size 0, 4 transforms
        + H("03 00 000c 01 00 0014")  # ENCR AES-GCM-16, length 12
        + H("800e 0100")  # attribute TV: Key Length = 256
        + H("03 00 0008 02 00 0007")  # PRF HMAC-SHA2-512
        + H("03 00 0008 04 00 001f")  # KE Curve25519
        + H("00 00 0008 04 00 0013")  # KE ECP-256, last transform
    )
    proposal_2 = (
        H("00 00 002c")  # last proposal, Proposal Length 44
        + H("02 01 00 04")  # Proposal Num 2, Protocol IKE, SPI Size 0, 4 transforms
        + H("03 00 000c 01 00 000c")  # ENCR AES-CBC
        + H("800e 0080")  # Key Length = 128
        + H("03 00 0008 02 00 0005")  # PRF HMAC-SHA2-256
        + H("03 00 0008 03 00 000c")  # INTEG HMAC-SHA2-256-128
        + H("00 00 0008 04 00 000e")  # KE MODP-2048, last transform
    )
    sa = H("22 00 005c") + proposal_1 + proposal_2  # next KE, length 4 + 44 + 44 = 92
    ke = H("28 00 0028") + H("001f 0000") + KE_DATA  # next Nonce, length 40, group 31
    nonce = H("29 00 0024") + NONCE  # next Notify, length 36
    nat_src = H("29 00 001c") + H("00 00 4004") + NAT_SRC  # NAT_DETECTION_SOURCE_IP
    nat_dst = H("29 00 001c") + H("00 00 4005") + NAT_DST  # NAT_DETECTION_DESTINATION_IP
    frag = H("2b 00 0008") + H("00 00 402e")  # IKEV2_FRAGMENTATION_SUPPORTED, next Vendor ID
    vid = H("00 00 0014") + VID  # last payload
    return header + sa + ke + nonce + nat_src + nat_dst + frag + vid


def test_ike_sa_init_request_decodes_field_by_field() -> None:
    data = ike_sa_init_request()
    assert len(data) == 280
    msg = decode_message(data)

    h = msg.header
    assert h.spi_i == H("0102030405060708")
    assert h.spi_r == bytes(8)
    assert h.next_payload is PayloadType.SA
    assert h.exchange is ExchangeType.IKE_SA_INIT
    assert (h.major, h.minor) == (2, 0)
    assert h.is_initiator and not h.is_response
    assert h.message_id == 0
    assert h.length == 280

    kinds = [type(p).__name__ for p in msg.payloads]
    assert kinds == ["SA", "KE", "Nonce", "Notify", "Notify", "Notify", "VendorID"]

    sa = msg.payloads[0]
    assert isinstance(sa, SA) and not sa.critical
    p1, p2 = sa.proposals
    assert (p1.number, p1.protocol, p1.spi) == (1, ProtocolId.IKE, b"")
    assert [(t.type, t.id, t.key_length) for t in p1.transforms] == [
        (TransformType.ENCR, EncrId.AES_GCM_16, 256),
        (TransformType.PRF, PrfId.HMAC_SHA2_512, None),
        (TransformType.KE, KeId.CURVE25519, None),
        (TransformType.KE, KeId.ECP_256, None),
    ]
    assert all(t.other_attributes == () for t in p1.transforms)
    assert p2.number == 2
    assert [(t.type, t.id, t.key_length) for t in p2.transforms] == [
        (TransformType.ENCR, EncrId.AES_CBC, 128),
        (TransformType.PRF, PrfId.HMAC_SHA2_256, None),
        (TransformType.INTEG, IntegId.HMAC_SHA2_256_128, None),
        (TransformType.KE, KeId.MODP_2048, None),
    ]

    assert msg.payloads[1] == KE(KeId.CURVE25519, KE_DATA)
    assert msg.payloads[2] == Nonce(NONCE)
    src, dst, frag = msg.notifies()
    assert (src.notify_type, src.protocol, src.spi, src.data) == (
        NotifyType.NAT_DETECTION_SOURCE_IP,
        ProtocolId.NONE,
        b"",
        NAT_SRC,
    )
    assert dst.notify_type is NotifyType.NAT_DETECTION_DESTINATION_IP and dst.data == NAT_DST
    assert frag == Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)
    assert msg.payloads[6] == VendorID(VID)


def test_ike_sa_init_request_reencodes_byte_exact() -> None:
    data = ike_sa_init_request()
    assert encode_message(decode_message(data)) == data


def test_ike_sa_init_request_built_from_values_matches_octets() -> None:
    """Encoding the same values from scratch (header length/next payload left wrong) gives the
    hand-built octets: encode_message recomputes both."""
    msg = decode_message(ike_sa_init_request())
    payloads: tuple[Payload, ...] = msg.payloads
    header = IkeHeader(
        H("0102030405060708"), bytes(8), PayloadType.NONE, ExchangeType.IKE_SA_INIT, 0, flags=0x08
    )
    assert encode_message(Message(header, payloads)) == ike_sa_init_request()


def test_ike_auth_with_sk_payload() -> None:
    """§3.14: SK's Next Payload holds the first inner type; nothing may follow SK."""
    body = bytes(range(60))
    data = (
        H("0102030405060708 1112131415161718 2e 20 23 08 00000001")
        + (28 + 4 + 60).to_bytes(4, "big")
        + H("23 00")  # SK: next = IDi (first inner payload), not critical
        + (4 + 60).to_bytes(2, "big")
        + body
    )
    msg = decode_message(data)
    assert msg.header.exchange is ExchangeType.IKE_AUTH
    assert msg.payloads == (SK(PayloadType.IDi, body),)
    assert encode_message(msg) == data
