"""Header and payload formats, versions and forward compatibility (RFC 7296 §2.5, §3.1, §3.2;
TAHI IKEv2 group 1, parts 1 and 4)."""

from __future__ import annotations

import dataclasses

import pytest
from ike_pair import (
    LEFT,
    RIGHT,
    engines,
    established,
    next_request,
    notify_types,
    of_type,
    opened,
    pump,
    seal,
    seal_raw,
    sent,
    the_sa,
)

from petrel.ike import events as ev
from petrel.wire.codec import decode_message, encode_message
from petrel.wire.payloads import (
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    Message,
    Nonce,
    UnknownPayload,
)
from petrel.wire.registry import ExchangeType, NotifyType, PayloadType

FLAG_VERSION = 0x10  # §3.1: the Version bit
UNKNOWN_TYPES = (1, 32, 49, 255)  # reserved (IKEv1), reserved, not implemented, private use


def init_request() -> tuple:
    """Left's IKE_SA_INIT request, taken off the wire, and the two engines."""
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    (data,) = sent(left)
    return left, right, decode_message(data)


def resend(left, right, message: Message) -> list[bytes]:
    """Hand ``message`` (in place of left's own IKE_SA_INIT request) to right; left then
    signs what right really received.  Returns right's answer."""
    data = encode_message(message)
    the_sa(left).init_request = data
    right.receive(data, RIGHT, LEFT, 0.0)
    return sent(right)


def finish(left, right, answer: list[bytes]) -> None:
    for data in answer:
        left.receive(data, LEFT, RIGHT, 0.0)
    pump(left, right)


def with_header(message: Message, **changes) -> Message:
    return Message(dataclasses.replace(message.header, **changes), message.payloads)


def test_rfc7296_2_5_higher_minor_version_accepted() -> None:
    left, right, request = init_request()
    answer = resend(left, right, with_header(request, minor=1))
    (reply,) = [decode_message(d) for d in answer]
    assert (reply.header.major, reply.header.minor) == (2, 0)  # we speak 2.0
    finish(left, right, answer)
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_rfc7296_2_5_higher_major_version_answered_invalid_major_version() -> None:
    left, right, request = init_request()
    answer = resend(left, right, with_header(request, major=3))
    (reply,) = [decode_message(d) for d in answer]
    header = reply.header
    assert (header.major, header.minor) == (2, 0)  # §3.10.1: the version we support
    assert header.exchange == ExchangeType.IKE_SA_INIT and header.message_id == 0
    assert header.flags == FLAG_RESPONSE
    assert (header.spi_i, header.spi_r) == (request.header.spi_i, bytes(8))
    assert notify_types(reply.payloads) == [NotifyType.INVALID_MAJOR_VERSION]
    assert right.ike_sas() == []


def test_rfc7296_2_5_higher_major_version_in_an_ike_sa_dropped() -> None:
    left, right, _, _ = established()
    request = next_request(the_sa(left), ExchangeType.INFORMATIONAL, [], major=3)
    right.receive(request, RIGHT, LEFT, 1.0)
    assert sent(right) == []
    assert right.drops.counts["malformed IKE message (INVALID_MAJOR_VERSION)"] == 1
    assert the_sa(right).expected_peer_id == 2  # not consumed


def test_rfc7296_3_1_version_bit_ignored_on_receipt_and_never_sent() -> None:
    left, right, request = init_request()
    assert not request.header.flags & FLAG_VERSION
    answer = resend(left, right, with_header(request, flags=FLAG_INITIATOR | FLAG_VERSION))
    assert all(not decode_message(d).header.flags & FLAG_VERSION for d in answer)
    finish(left, right, answer)
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_rfc7296_3_1_reserved_flag_bits_ignored_on_receipt() -> None:
    left, right, _, _ = established()
    request = next_request(
        the_sa(left), ExchangeType.INFORMATIONAL, [], flags=FLAG_INITIATOR | 0x47
    )
    right.receive(request, RIGHT, LEFT, 1.0)
    (reply,) = sent(right)
    assert decode_message(reply).header.flags == FLAG_RESPONSE


@pytest.mark.parametrize("payload_type", UNKNOWN_TYPES)
def test_rfc7296_2_5_unknown_non_critical_payload_in_ike_sa_init_ignored(
    payload_type: int,
) -> None:
    left, right, request = init_request()
    extra = UnknownPayload(payload_type, b"forward-compatible", critical=False)
    answer = resend(left, right, Message(request.header, (*request.payloads, extra)))
    finish(left, right, answer)
    assert of_type(left.take_events(), ev.ChildSaUp)


@pytest.mark.parametrize("payload_type", UNKNOWN_TYPES)
def test_rfc7296_2_5_unknown_critical_payload_in_ike_sa_init_unsupported_critical_payload(
    payload_type: int,
) -> None:
    left, right, request = init_request()
    extra = UnknownPayload(payload_type, b"must-understand", critical=True)
    answer = resend(left, right, Message(request.header, (request.payloads[0], extra)))
    (reply,) = [decode_message(d) for d in answer]
    assert reply.header.flags == FLAG_RESPONSE and reply.header.exchange == 34
    (notify,) = reply.notifies()
    assert notify.notify_type == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
    assert notify.data == bytes([payload_type])  # §3.10.1: the one-octet payload type
    assert right.ike_sas() == []


def test_rfc7296_2_5_critical_bit_of_a_known_payload_ignored() -> None:
    left, right, request = init_request()
    payloads = tuple(
        dataclasses.replace(p, critical=True) if isinstance(p, Nonce) else p
        for p in request.payloads
    )
    finish(left, right, resend(left, right, Message(request.header, payloads)))
    assert of_type(left.take_events(), ev.ChildSaUp)


@pytest.mark.parametrize("payload_type", UNKNOWN_TYPES)
def test_rfc7296_2_5_unknown_non_critical_payload_in_sk_ignored(payload_type: int) -> None:
    left, right, _, _ = established()
    extra = UnknownPayload(payload_type, b"forward-compatible", critical=False)
    request = next_request(the_sa(left), ExchangeType.INFORMATIONAL, [extra])
    right.receive(request, RIGHT, LEFT, 1.0)
    (reply,) = sent(right)
    _message, payloads = opened(the_sa(left), reply)
    assert payloads == ()  # answered as a liveness check
    assert the_sa(right).state.label == "ESTABLISHED"


@pytest.mark.parametrize("exchange", [ExchangeType.INFORMATIONAL, ExchangeType.CREATE_CHILD_SA])
@pytest.mark.parametrize("payload_type", UNKNOWN_TYPES)
def test_rfc7296_2_5_unknown_critical_payload_in_sk_unsupported_critical_payload(
    payload_type: int, exchange: ExchangeType
) -> None:
    left, right, _, _ = established()
    extra = UnknownPayload(payload_type, b"must-understand", critical=True)
    request = next_request(the_sa(left), exchange, [extra])
    right.receive(request, RIGHT, LEFT, 1.0)
    (reply,) = sent(right)
    message, payloads = opened(the_sa(left), reply)
    assert message.header.is_response and message.header.exchange == exchange
    (notify,) = payloads
    assert notify.notify_type == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
    assert notify.data == bytes([payload_type])
    assert the_sa(right).state.label == "ESTABLISHED" and len(right.child_sas()) == 1


def test_rfc7296_2_5_unknown_critical_payload_in_a_response_dropped() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.rekey_child(sa.ike_id, left.child_sas()[0][1].child_id, 1.0)
    (request,) = sent(left)
    message_id = decode_message(request).header.message_id
    the_sa(right).expected_peer_id += 1  # right "answered" it with an unknown critical payload
    bad = seal(
        the_sa(right),
        ExchangeType.CREATE_CHILD_SA,
        message_id,
        [UnknownPayload(49, b"x", critical=True)],
        response=True,
    )
    left.receive(bad, LEFT, RIGHT, 1.0)
    assert sent(left) == []  # a response is never answered (§2.21)
    assert left.drops.counts["malformed protected payloads"] == 1
    assert the_sa(left).outstanding is not None  # still waiting for a valid response


def test_rfc7296_3_1_length_field_mismatch_answered_invalid_syntax() -> None:
    _left, right, request = init_request()
    data = encode_message(request) + b"\0\0\0\0"
    right.receive(data, RIGHT, LEFT, 0.0)
    (reply,) = [decode_message(d) for d in sent(right)]
    assert notify_types(reply.payloads) == [NotifyType.INVALID_SYNTAX]
    assert right.ike_sas() == []


@pytest.mark.parametrize(
    "inner",
    [
        bytes([0, 0, 0, 40]) + bytes(16),  # a Nonce whose length overruns the chain
        bytes([0, 0, 0, 2]),  # a payload length below the generic header's 4 octets
        bytes([0, 0, 0, 20]) + bytes(16) + b"trailing",  # octets after the last payload
    ],
)
def test_rfc7296_3_2_malformed_chain_in_sk_answered_invalid_syntax(inner: bytes) -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    request = seal_raw(sa, ExchangeType.INFORMATIONAL, 2, PayloadType.NONCE, inner, FLAG_INITIATOR)
    right.receive(request, RIGHT, LEFT, 1.0)
    (reply,) = sent(right)
    message, payloads = opened(sa, reply)
    assert message.header.message_id == 2 and message.header.is_response
    assert notify_types(payloads) == [NotifyType.INVALID_SYNTAX]
    assert the_sa(right).expected_peer_id == 3  # the request was answered: its ID is used
    assert the_sa(right).state.label == "ESTABLISHED"


def test_rfc7296_2_5_higher_minor_version_in_an_ike_sa_accepted() -> None:
    left, right, _, _ = established()
    right.receive(
        next_request(the_sa(left), ExchangeType.INFORMATIONAL, [], minor=7), RIGHT, LEFT, 1.0
    )
    (reply,) = sent(right)
    message, payloads = opened(the_sa(left), reply)
    assert (message.header.major, message.header.minor) == (2, 0) and payloads == ()
