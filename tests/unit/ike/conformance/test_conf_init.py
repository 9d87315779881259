"""IKE_SA_INIT and IKE_AUTH negotiation: COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN,
INVALID_SYNTAX, proposal selection, identification types (RFC 7296 §1.2, §2.6, §2.7, §3.3,
§3.5; TAHI IKEv2 group 1, parts 5 to 7)."""

from __future__ import annotations

import dataclasses

import pytest
from ike_pair import LEFT, RIGHT, engines, notify_types, of_type, opened, pump, sent, the_sa

from petrel.ike import events as ev
from petrel.ike.engine import EngineSettings
from petrel.wire.codec import decode_message, encode_message
from petrel.wire.payloads import KE, SA, IDi, IDr, Message, Nonce, Notify
from petrel.wire.registry import IdType, KeId, NotifyType, TransformType


def first_request(**kw):
    left, right = engines(**kw)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    (data,) = sent(left)
    return left, right, decode_message(data)


def test_rfc7296_2_7_invalid_ke_payload_names_the_group_and_keeps_no_state() -> None:
    left, right, request = first_request(
        left_kw={"proposals": "aes256gcm16-prfsha256-x25519-ecp256"},
        right_kw={"proposals": "aes256gcm16-prfsha256-ecp256"},
    )
    right.receive(encode_message(request), RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    (notify,) = reply.notifies()
    assert notify.notify_type == NotifyType.INVALID_KE_PAYLOAD
    assert notify.data == int(KeId.ECP_256).to_bytes(2, "big")
    assert reply.header.spi_r == bytes(8)
    assert right.ike_sas() == []  # §1.2: stateless until a valid KE arrives
    left.receive(encode_message(reply), LEFT, RIGHT, 0.0)
    (retry,) = [decode_message(d) for d in sent(left)]
    ke = retry.find(KE)
    assert isinstance(ke, KE) and ke.group == KeId.ECP_256
    assert retry.header.spi_i == request.header.spi_i  # §2.7: the same SPIi


def test_rfc7296_2_6_cookie_then_invalid_ke_payload_then_new_group() -> None:
    """TAHI: COOKIE first, then INVALID_KE_PAYLOAD; the retry carries the cookie first
    and the group asked for (§2.6, §2.7)."""
    left, right = engines(
        {"proposals": "aes256gcm16-prfsha256-x25519-ecp256"},
        {"proposals": "aes256gcm16-prfsha256-ecp256"},
        settings=EngineSettings(cookie_threshold=1, puzzle_difficulty=0),
    )
    # One half-open SA (another initiator's, from another port) reaches the cookie threshold.
    decoy, _ = engines({"proposals": "aes256gcm16-prfsha256-ecp256"})
    decoy.initiate("c", "net", LEFT, RIGHT, 0.0)
    (decoy_request,) = sent(decoy)
    right.receive(decoy_request, RIGHT, ("192.0.2.1", 501), 0.0)
    assert len(sent(right)) == 1 and len(right.ike_sas()) == 1
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = [decode_message(d) for d in pump(left, right)]
    kinds = [
        (m.header.is_response, [int(n.notify_type) for n in m.notifies()][:1]) for m in crossed
    ]
    assert kinds[:4] == [
        (False, [NotifyType.NAT_DETECTION_SOURCE_IP]),
        (True, [NotifyType.COOKIE]),
        (False, [NotifyType.COOKIE]),
        (True, [NotifyType.INVALID_KE_PAYLOAD]),
    ]
    third = crossed[4]
    assert isinstance(third.payloads[0], Notify) and third.payloads[0].notify_type == 16390
    assert third.payloads[0].data == crossed[1].payloads[0].data  # the same cookie
    assert third.find(KE).group == KeId.ECP_256  # type: ignore[union-attr]
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_rfc7296_2_7_no_proposal_chosen_keeps_no_state() -> None:
    left, right, request = first_request(
        left_kw={"proposals": "aes128-sha256-modp2048"},
        right_kw={"proposals": "aes256gcm16-prfsha384-ecp384"},
    )
    right.receive(encode_message(request), RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    assert notify_types(reply.payloads) == [NotifyType.NO_PROPOSAL_CHOSEN]
    assert right.ike_sas() == []
    left.receive(encode_message(reply), LEFT, RIGHT, 0.0)
    (failed,) = of_type(left.take_events(), ev.NegotiationFailed)
    assert failed.notify == NotifyType.NO_PROPOSAL_CHOSEN and left.ike_sas() == []


@pytest.mark.parametrize("missing", [SA, KE, Nonce])
def test_rfc7296_1_2_ike_sa_init_without_sa_ke_or_nonce_invalid_syntax(missing: type) -> None:
    _left, right, request = first_request()
    payloads = tuple(p for p in request.payloads if not isinstance(p, missing))
    right.receive(encode_message(Message(request.header, payloads)), RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    assert notify_types(reply.payloads) == [NotifyType.INVALID_SYNTAX]
    assert right.ike_sas() == []


@pytest.mark.parametrize("size", [15, 257])
def test_rfc7296_2_10_nonce_of_bad_size_invalid_syntax(size: int) -> None:
    _left, right, request = first_request()
    payloads = tuple(Nonce(bytes(size)) if isinstance(p, Nonce) else p for p in request.payloads)
    right.receive(encode_message(Message(request.header, payloads)), RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    assert notify_types(reply.payloads) == [NotifyType.INVALID_SYNTAX]


def test_rfc7296_3_3_6_responder_answers_one_transform_of_each_type() -> None:
    _left, right, request = first_request(
        left_kw={"proposals": "aes128-aes256-sha256-sha1-prfsha256-prfsha1-modp2048-ecp256"},
        right_kw={"proposals": "aes256-sha1-prfsha1-modp2048"},
    )
    right.receive(encode_message(request), RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    (proposal,) = reply.find(SA).proposals  # type: ignore[union-attr]
    types = [int(t.type) for t in proposal.transforms]
    assert sorted(types) == sorted({int(t) for t in types}) and len(types) == 4
    by_type = {int(t.type): t for t in proposal.transforms}
    assert by_type[TransformType.ENCR].key_length == 256
    assert by_type[TransformType.KE].id == KeId.MODP_2048


@pytest.mark.parametrize("first_acceptable", [1, 2])
def test_rfc7296_2_7_responder_picks_the_initiators_first_acceptable_proposal(
    first_acceptable: int,
) -> None:
    offers = "aes128gcm16-prfsha256-x25519, aes256-sha256-prfsha256-x25519"
    accepts = (
        "aes256-sha256-prfsha256-x25519, aes128gcm16-prfsha256-x25519"
        if first_acceptable == 1
        else "aes256-sha256-prfsha256-x25519"
    )
    left, right, request = first_request(
        left_kw={"proposals": offers}, right_kw={"proposals": accepts}
    )
    right.receive(encode_message(request), RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    (proposal,) = reply.find(SA).proposals  # type: ignore[union-attr]
    assert proposal.number == first_acceptable  # §3.3.1: the offer's own number
    left.receive(encode_message(reply), LEFT, RIGHT, 0.0)
    pump(left, right)
    assert of_type(left.take_events(), ev.ChildSaUp)


@pytest.mark.parametrize(
    ("left_id", "right_id", "id_type"),
    [
        ("192.0.2.1", "192.0.2.2", IdType.IPV4_ADDR),
        ("2001:db8::1", "2001:db8::2", IdType.IPV6_ADDR),
        ("left.example.org", "right.example.org", IdType.FQDN),
        ("left@example.org", "right@example.org", IdType.RFC822_ADDR),
        ('"@#6c656674"', '"@#7269676874"', IdType.KEY_ID),
    ],
)
def test_rfc7296_3_5_identification_types(left_id: str, right_id: str, id_type: IdType) -> None:
    left, right = engines(
        {"my_id": left_id, "peer_id": right_id}, {"my_id": right_id, "peer_id": left_id}
    )
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right)
    _m, request = opened(the_sa(right), crossed[2])
    _m, response = opened(the_sa(left), crossed[3])
    (idi,) = [p for p in request if isinstance(p, IDi)]
    (idr,) = [p for p in response if isinstance(p, IDr)]
    assert idi.id_type == id_type and idr.id_type == id_type
    assert of_type(left.take_events(), ev.ChildSaUp)
    assert of_type(right.take_events(), ev.ChildSaUp)


def test_rfc7296_2_7_ike_auth_child_proposal_picks_first_acceptable() -> None:
    left, right = engines({"esp": "aes128gcm16,aes256gcm16"}, {"esp": "aes256gcm16,aes128gcm16"})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    (up,) = of_type(left.take_events(), ev.ChildSaUp)
    assert len(up.outbound.encr_key) == 16 + 4  # AES-128-GCM key and salt


def _answer(right, request):  # type: ignore[no-untyped-def]
    right.receive(encode_message(request), RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    return reply


def test_rfc7296_2_6_ike_sa_init_response_with_zero_responder_spi_dropped() -> None:
    left, right, request = first_request()
    reply = _answer(right, request)
    forged = Message(dataclasses.replace(reply.header, spi_r=bytes(8)), reply.payloads)
    left.receive(encode_message(forged), LEFT, RIGHT, 0.0)
    assert left.drops.counts["invalid IKE_SA_INIT response"] == 1
    assert the_sa(left).state.label == "CONNECTING" and the_sa(left).outstanding is not None


def test_rfc7296_3_3_responder_choosing_an_unoffered_proposal_fails_the_sa() -> None:
    left, right, request = first_request(
        left_kw={"proposals": "aes128gcm16-prfsha256-x25519"},
        right_kw={"proposals": "aes128gcm16-prfsha256-x25519"},
    )
    reply = _answer(right, request)
    (proposal,) = reply.find(SA).proposals  # type: ignore[union-attr]
    widened = [
        dataclasses.replace(t, key_length=256) if t.type == TransformType.ENCR else t
        for t in proposal.transforms
    ]
    changed = SA((dataclasses.replace(proposal, transforms=tuple(widened)),))
    payloads = tuple(changed if isinstance(p, SA) else p for p in reply.payloads)
    left.receive(encode_message(Message(reply.header, payloads)), LEFT, RIGHT, 0.0)
    (failed,) = of_type(left.take_events(), ev.NegotiationFailed)
    assert failed.notify == NotifyType.NO_PROPOSAL_CHOSEN and left.ike_sas() == []
