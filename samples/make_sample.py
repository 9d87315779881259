"""Build samples/ikev2-psk.pcap, samples/ikev2_decryption_table and samples/esp_sa.

A cryptographically valid IKEv2 exchange made with Petrel's own wire codec and crypto, until the
IKE engine can record a real one: IKE_SA_INIT (X25519, AES-GCM-16-256, PRF-HMAC-SHA2-256),
IKE_AUTH with PSK authentication on both sides (RFC 7296 §2.15), one ICMP echo each way through
the Child SA (ESP in UDP 4500, RFC 3948), a NAT keepalive, and an INFORMATIONAL that deletes
the IKE SA.  Keys come from the real KDF (§2.14); SK payloads are real AES-GCM
(RFC 5282).  Everything is deterministic (fixed private values, nonces, SPIs and IVs), so
re-running the script reproduces the files byte for byte.

Usage: python samples/make_sample.py [OUTDIR]
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import dpkt

from petrel.crypto.auth import psk_auth, signed_octets
from petrel.crypto.encr import encr_spec
from petrel.crypto.kdf import (
    IkeKeys,
    child_keymat,
    derive_ike_keys,
    skeyseed,
    split_child_keymat,
)
from petrel.crypto.ke import key_exchange_from_private
from petrel.crypto.nat import nat_detection_hash
from petrel.crypto.prf import prf_spec
from petrel.crypto.sk import SkCipher
from petrel.decode.keys import EspSaKeys, IkeSaKeys
from petrel.esp.sa import OutboundSa
from petrel.wire.codec import encode_header, encode_message, encode_payloads, sk_generic_header
from petrel.wire.payloads import (
    AUTH,
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    IKE_HEADER_LEN,
    KE,
    SA,
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
)
from petrel.wire.registry import (
    AuthMethod,
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

INITIATOR = ("192.0.2.1", "02:00:00:00:00:01")
RESPONDER = ("192.0.2.2", "02:00:00:00:00:02")
PSK = b"petrel-sample-psk"  # the sample's pre-shared key (not a secret)
SPI_I = bytes.fromhex("a1b2c3d4e5f60718")
SPI_R = bytes.fromhex("1827364554637281")
NONCE_I = bytes(range(0x10, 0x30))
NONCE_R = bytes(range(0x40, 0x60))
# RFC 7748 §6.1 test scalars, so anyone can check the shared secret by hand.
PRIV_I = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
PRIV_R = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
START_TIME = 1767225600.0  # 2026-01-01T00:00:00Z

ENCR = EncrId.AES_GCM_16
ENCR_BITS = 256
IKE_PROPOSAL = Proposal(
    1,
    ProtocolId.IKE,
    b"",
    (
        Transform(TransformType.ENCR, ENCR, ENCR_BITS),
        Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
        Transform(TransformType.KE, KeId.CURVE25519),
    ),
)


def esp_proposal(spi: bytes) -> Proposal:
    return Proposal(
        1,
        ProtocolId.ESP,
        spi,
        (
            Transform(TransformType.ENCR, ENCR, ENCR_BITS),
            Transform(TransformType.ESN, EsnId.NO_ESN),
        ),
    )


TS_I = TSi(
    (
        TrafficSelector(
            TsType.IPV4_ADDR_RANGE, 0, 0, 65535, b"\xc6\x33\x64\x00", b"\xc6\x33\x64\xff"
        ),
    )
)
TS_R = TSr(
    (
        TrafficSelector(
            TsType.IPV4_ADDR_RANGE, 0, 0, 65535, b"\xcb\x00\x71\x00", b"\xcb\x00\x71\xff"
        ),
    )
)


@dataclass
class Datagram:
    src: tuple[str, str]
    dst: tuple[str, str]
    sport: int
    dport: int
    payload: bytes


def _nat_notifies(src: str, sport: int, dst: str, dport: int, spi_r: bytes) -> list[Payload]:
    src_hash = nat_detection_hash(SPI_I, spi_r, ipaddress.IPv4Address(src).packed, sport)
    dst_hash = nat_detection_hash(SPI_I, spi_r, ipaddress.IPv4Address(dst).packed, dport)
    return [
        Notify(NotifyType.NAT_DETECTION_SOURCE_IP, src_hash),
        Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, dst_hash),
    ]


def seal(
    cipher: SkCipher, exchange: int, message_id: int, flags: int, inner: list[Payload], iv: bytes
) -> bytes:
    """A whole message with one SK payload (§3.14): AAD = IKE header | SK generic header."""
    first, chain = encode_payloads(inner)
    body_len = cipher.body_length(len(chain))
    length = IKE_HEADER_LEN + 4 + body_len
    header = IkeHeader(SPI_I, SPI_R, PayloadType.SK, exchange, message_id, flags, length=length)
    aad = encode_header(header) + sk_generic_header(first, body_len)
    return aad + cipher.seal(aad, chain, iv=iv)


def id_body(ident: IDi | IDr) -> bytes:
    """The ID payload without its generic header: type, 3 reserved octets, data (§3.5)."""
    return struct.pack("!B3x", ident.id_type) + ident.data


def ping(src: str, dst: str, ident: int, reply: bool) -> bytes:
    """An ICMP echo request / reply in IPv4, the traffic carried by the Child SA."""
    icmp = dpkt.icmp.ICMP(
        type=0 if reply else 8,
        data=dpkt.icmp.ICMP.Echo(id=ident, seq=1, data=b"petrel sample ping".ljust(32, b".")),
    )
    ip = dpkt.ip.IP(
        src=ipaddress.IPv4Address(src).packed,
        dst=ipaddress.IPv4Address(dst).packed,
        p=dpkt.ip.IP_PROTO_ICMP,
        ttl=64,
        data=icmp,
    )
    ip.len = len(ip)
    return bytes(ip)


def esp_sa_line(src: str, dst: str, spi: bytes, key: bytes) -> str:
    """One Wireshark ``esp_sa`` row for an AES-GCM-16 Child SA (key includes the salt)."""
    spi_value = int.from_bytes(spi, "big")
    return EspSaKeys.for_sa(src, dst, spi_value, EncrId.AES_GCM_16, key, 0, b"").to_line()


def build() -> tuple[list[Datagram], IkeSaKeys, list[str]]:
    """The datagrams of the exchange, the IKE decryption-table row and the esp_sa rows."""
    prf = prf_spec(PrfId.HMAC_SHA2_256)
    encr = encr_spec(ENCR, ENCR_BITS)
    ke_i = key_exchange_from_private(KeId.CURVE25519, PRIV_I)
    ke_r = key_exchange_from_private(KeId.CURVE25519, PRIV_R)
    ip_i, ip_r = INITIATOR[0], RESPONDER[0]

    init_req = encode_message(
        Message(
            IkeHeader(SPI_I, bytes(8), 0, ExchangeType.IKE_SA_INIT, 0, FLAG_INITIATOR),
            (
                SA((IKE_PROPOSAL,)),
                KE(KeId.CURVE25519, ke_i.public_value()),
                Nonce(NONCE_I),
                *_nat_notifies(ip_i, 500, ip_r, 500, bytes(8)),
                Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
                Notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, bytes.fromhex("000200030004")),
            ),
        )
    )
    init_resp = encode_message(
        Message(
            IkeHeader(SPI_I, SPI_R, 0, ExchangeType.IKE_SA_INIT, 0, FLAG_RESPONSE),
            (
                SA((IKE_PROPOSAL,)),
                KE(KeId.CURVE25519, ke_r.public_value()),
                Nonce(NONCE_R),
                *_nat_notifies(ip_r, 500, ip_i, 500, SPI_R),
                Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
            ),
        )
    )

    shared = ke_i.shared_secret(ke_r.public_value())
    assert shared == ke_r.shared_secret(ke_i.public_value())
    seed = skeyseed(prf, NONCE_I, NONCE_R, shared)
    keys: IkeKeys = derive_ike_keys(prf, seed, NONCE_I, NONCE_R, SPI_I, SPI_R, encr.key_size, 0)
    c_i = SkCipher(encr, keys.sk_ei, None, b"")
    c_r = SkCipher(encr, keys.sk_er, None, b"")

    idi = IDi(IdType.FQDN, b"initiator.petrel.example")
    idr = IDr(IdType.FQDN, b"responder.petrel.example")
    auth_i = psk_auth(prf, PSK, signed_octets(init_req, NONCE_R, prf, keys.sk_pi, id_body(idi)))
    auth_r = psk_auth(prf, PSK, signed_octets(init_resp, NONCE_I, prf, keys.sk_pr, id_body(idr)))

    auth_req = seal(
        c_i,
        ExchangeType.IKE_AUTH,
        1,
        FLAG_INITIATOR,
        [
            idi,
            Notify(NotifyType.INITIAL_CONTACT),
            AUTH(AuthMethod.PSK, auth_i),
            SA((esp_proposal(bytes.fromhex("c0ffee01")),)),
            TS_I,
            TS_R,
        ],
        iv=bytes.fromhex("0000000000000001"),
    )
    auth_resp = seal(
        c_r,
        ExchangeType.IKE_AUTH,
        1,
        FLAG_RESPONSE,
        [
            idr,
            AUTH(AuthMethod.PSK, auth_r),
            SA((esp_proposal(bytes.fromhex("c0ffee02")),)),
            TS_I,
            TS_R,
        ],
        iv=bytes.fromhex("0000000000000001"),
    )
    info_req = seal(
        c_i,
        ExchangeType.INFORMATIONAL,
        2,
        FLAG_INITIATOR,
        [Delete(ProtocolId.IKE)],
        iv=bytes.fromhex("0000000000000002"),
    )
    info_resp = seal(
        c_r, ExchangeType.INFORMATIONAL, 2, FLAG_RESPONSE, [], iv=bytes.fromhex("0000000000000002")
    )
    # Child SA keys (§2.17): initiator→responder traffic uses the responder's SPI.
    keymat = child_keymat(prf, keys.sk_d, NONCE_I, NONCE_R, 2 * encr.key_size)
    key_i, _, key_r, _ = split_child_keymat(keymat, encr.key_size, 0)
    spi_in_r, spi_in_i = bytes.fromhex("c0ffee02"), bytes.fromhex("c0ffee01")
    out_i = OutboundSa(int.from_bytes(spi_in_r), encr, key_i, None, b"", esn=False)
    out_r = OutboundSa(int.from_bytes(spi_in_i), encr, key_r, None, b"", esn=False)
    esp_i = out_i.encapsulate(ping("198.51.100.1", "203.0.113.1", 7, reply=False))
    esp_r = out_r.encapsulate(ping("203.0.113.1", "198.51.100.1", 7, reply=True))

    marker = b"\x00\x00\x00\x00"
    datagrams = [
        Datagram(INITIATOR, RESPONDER, 500, 500, init_req),
        Datagram(RESPONDER, INITIATOR, 500, 500, init_resp),
        Datagram(INITIATOR, RESPONDER, 4500, 4500, marker + auth_req),
        Datagram(RESPONDER, INITIATOR, 4500, 4500, marker + auth_resp),
        Datagram(INITIATOR, RESPONDER, 4500, 4500, esp_i),
        Datagram(RESPONDER, INITIATOR, 4500, 4500, esp_r),
        Datagram(INITIATOR, RESPONDER, 4500, 4500, b"\xff"),
        Datagram(INITIATOR, RESPONDER, 4500, 4500, marker + info_req),
        Datagram(RESPONDER, INITIATOR, 4500, 4500, marker + info_resp),
    ]
    row = IkeSaKeys(SPI_I, SPI_R, keys.sk_ei, keys.sk_er, ENCR, ENCR_BITS, b"", b"", IntegId.NONE)
    esp_rows = [
        esp_sa_line(INITIATOR[0], RESPONDER[0], spi_in_r, key_i),
        esp_sa_line(RESPONDER[0], INITIATOR[0], spi_in_i, key_r),
    ]
    return datagrams, row, esp_rows


def ethernet_frame(d: Datagram) -> bytes:
    """Ethernet / IPv4 / UDP around one datagram (dpkt fills in lengths and checksums)."""
    udp = dpkt.udp.UDP(sport=d.sport, dport=d.dport, data=d.payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(
        src=ipaddress.IPv4Address(d.src[0]).packed,
        dst=ipaddress.IPv4Address(d.dst[0]).packed,
        p=dpkt.ip.IP_PROTO_UDP,
        ttl=64,
        data=udp,
    )
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(
        src=bytes.fromhex(d.src[1].replace(":", "")),
        dst=bytes.fromhex(d.dst[1].replace(":", "")),
        type=dpkt.ethernet.ETH_TYPE_IP,
        data=ip,
    )
    return bytes(eth)


def main(argv: list[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    datagrams, row, esp_rows = build()
    with open(outdir / "ikev2-psk.pcap", "wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for index, d in enumerate(datagrams):
            writer.writepkt(ethernet_frame(d), ts=START_TIME + index * 0.01)
    (outdir / "ikev2_decryption_table").write_text(
        "# Wireshark ikev2_decryption_table: SPIi,SPIr,SK_ei,SK_er,encr,SK_ai,SK_ar,integ\n"
        + row.to_line()
        + "\n"
    )
    (outdir / "esp_sa").write_text(
        "# Wireshark esp_sa: protocol,src,dst,SPI,encryption,key,authentication,key\n"
        + "".join(line + "\n" for line in esp_rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
