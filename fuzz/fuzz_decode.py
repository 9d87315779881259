"""Atheris fuzz target for the IKEv2 decoder (petrel.wire.codec).

Run:  python3 fuzz/fuzz_decode.py -atheris_runs=100000 [corpus_dir ...]

Without a corpus directory the committed corpus (fuzz/seeds/decode/: real messages from
samples/ikev2-psk.pcap and from the engine scenarios of fuzz_engine.py) and the built-in seeds
(well-formed messages made with the encoder) are copied into a temporary directory, so
libFuzzer never writes into the source tree.  The only exception tolerated is DecodeError;
whatever decodes must survive an encode/decode round trip and have a log summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import instrumentation
from _common import main as run_fuzzer

with instrumentation(__name__, ("petrel.wire",)):
    from petrel.wire.codec import decode_message, decode_payloads, encode_message, encode_payloads
    from petrel.wire.errors import DecodeError
    from petrel.wire.payloads import (
        AUTH,
        CP,
        EAP,
        KE,
        SA,
        SK,
        SKF,
        ConfigAttribute,
        Delete,
        IDi,
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
        CfgAttr,
        CfgType,
        EncrId,
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
    from petrel.wire.summary import message_summary

NAME = "decode"


def test_one_input(data: bytes) -> None:
    """Decode ``data`` as a message and (first octet = type) as a payload chain."""
    try:
        msg = decode_message(data)
    except DecodeError:
        pass
    else:
        if decode_message(encode_message(msg)) != msg:
            raise AssertionError("message does not survive a round trip")
        message_summary(msg.header, msg.payloads)
    if not data:
        return
    try:
        chain = decode_payloads(data[0], data[1:])
    except DecodeError:
        return
    first, encoded = encode_payloads(chain)
    if decode_payloads(first, encoded) != chain:
        raise AssertionError("payload chain does not survive a round trip")


TestOneInput = test_one_input


def _header(exchange: ExchangeType, message_id: int, flags: int) -> IkeHeader:
    return IkeHeader(b"\x11" * 8, b"\x22" * 8, PayloadType.NONE, exchange, message_id, flags)


def seeds() -> list[bytes]:
    """Small well-formed inputs covering every payload type the decoder knows."""
    ike_proposal = Proposal(
        1,
        ProtocolId.IKE,
        b"",
        (
            Transform(TransformType.ENCR, EncrId.AES_GCM_16, 256),
            Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
            Transform(TransformType.KE, KeId.CURVE25519, None, ((3, True, b"\0\1"),)),
        ),
    )
    esp_proposal = Proposal(
        1,
        ProtocolId.ESP,
        b"\xaa\xbb\xcc\xdd",
        (
            Transform(TransformType.ENCR, EncrId.AES_CBC, 128),
            Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
            Transform(TransformType.ESN, 0),
        ),
    )
    v4 = TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, bytes(4), b"\xff" * 4)
    v6 = TrafficSelector(TsType.IPV6_ADDR_RANGE, 6, 80, 80, bytes(16), b"\xff" * 16)
    chains: list[tuple[ExchangeType, tuple[Payload, ...]]] = [
        (
            ExchangeType.IKE_SA_INIT,
            (
                SA((ike_proposal,)),
                KE(KeId.CURVE25519, bytes(32)),
                Nonce(bytes(range(32))),
                Notify(NotifyType.NAT_DETECTION_SOURCE_IP, bytes(20)),
                Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
                VendorID(b"petrel"),
            ),
        ),
        (ExchangeType.IKE_AUTH, (SK(PayloadType.IDi, bytes(48)),)),
        (ExchangeType.IKE_AUTH, (SKF(PayloadType.IDi, 1, 2, bytes(40)),)),
        (
            ExchangeType.IKE_AUTH,
            (
                IDi(IdType.FQDN, b"moon.example"),
                AUTH(AuthMethod.PSK, bytes(32)),
                CP(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),)),
                SA((esp_proposal,)),
                TSi((v4, v6)),
                TSr((v4,)),
                EAP(b"\x02\x01\x00\x06\x01a"),
            ),
        ),
        (
            ExchangeType.INFORMATIONAL,
            (
                Delete(ProtocolId.ESP, (b"\1\2\3\4", b"\5\6\7\x08"), 4),
                Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, b"\1\2\3\4"),
                UnknownPayload(200, b"opaque"),
            ),
        ),
    ]
    out: list[bytes] = []
    for index, (exchange, payloads) in enumerate(chains):
        out.append(encode_message(Message(_header(exchange, index, 0x08), payloads)))
        first, chain = encode_payloads(payloads)
        out.append(bytes((first,)) + chain)  # the decode_payloads reading of an input
    return out


if __name__ == "__main__":
    run_fuzzer(NAME, sys.argv, TestOneInput, seeds=seeds)
