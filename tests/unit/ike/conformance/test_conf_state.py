"""Each exchange in each state (RFC 7296 §1.2, §1.4, §2.21.2): what arrives too early or
too late is dropped unanswered, the window kept, and the SA continues."""

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
    rewrite,
    seal,
    sent,
    the_sa,
)

from petrel.ike import events as ev
from petrel.wire.codec import decode_message
from petrel.wire.payloads import AUTH, IDi, Notify
from petrel.wire.registry import ExchangeType, NotifyType


def half_open():
    """IKE_SA_INIT done both ways; left's IKE_AUTH request held back (not yet delivered)."""
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    for d in sent(left):
        right.receive(d, RIGHT, LEFT, 0.0)
    for d in sent(right):
        left.receive(d, LEFT, RIGHT, 0.0)
    auth = sent(left)
    return left, right, auth


@pytest.mark.parametrize("exchange", [ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL])
def test_rfc7296_1_2_exchange_before_ike_auth_completes_dropped(exchange: ExchangeType) -> None:
    left, right, auth = half_open()
    early = seal(the_sa(left), exchange, 1, [])
    right.receive(early, RIGHT, LEFT, 0.0)
    assert sent(right) == []
    assert right.drops.counts["request not valid in this state"] == 1
    assert the_sa(right).state.label == "CONNECTING"
    for d in auth:  # IKE_AUTH still takes message ID 1 and completes
        right.receive(d, RIGHT, LEFT, 0.0)
    pump(left, right)
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_rfc7296_1_2_ike_auth_on_an_established_sa_dropped() -> None:
    left, right, _, _ = established()
    again = next_request(the_sa(left), ExchangeType.IKE_AUTH, [])
    right.receive(again, RIGHT, LEFT, 1.0)
    assert sent(right) == []
    assert right.drops.counts["request not valid in this state"] == 1
    assert the_sa(right).state.label == "ESTABLISHED" and len(right.child_sas()) == 1


def test_rfc7296_1_2_ike_sa_init_response_after_establishment_dropped() -> None:
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right)
    init_response = crossed[1]
    left.take_events()
    left.receive(init_response, LEFT, RIGHT, 1.0)
    assert sent(left) == [] and left.take_events() == []
    assert left.drops.counts["unexpected IKE_SA_INIT response"] == 1
    assert the_sa(left).state.label == "ESTABLISHED"


def test_rfc7296_1_2_create_child_sa_request_to_initiator_during_ike_auth_dropped() -> None:
    left, right, auth = half_open()
    for d in auth:
        right.receive(d, RIGHT, LEFT, 0.0)
    # Right is established; before its IKE_AUTH response reaches left, right asks for more.
    response = sent(right)
    sa_r = the_sa(right)
    early = seal(sa_r, ExchangeType.CREATE_CHILD_SA, 0, [])
    left.receive(early, LEFT, RIGHT, 0.0)
    assert sent(left) == []
    assert left.drops.counts["request not valid in this state"] == 1
    for d in response:
        left.receive(d, LEFT, RIGHT, 0.0)
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_rfc7296_1_4_1_create_child_sa_while_deleting_the_ike_sa_dropped() -> None:
    left, right, _, _ = established()
    sa_l = the_sa(left)
    assert left.terminate(sa_l.ike_id, 1.0)
    delete = sent(left)
    request = next_request(the_sa(right), ExchangeType.CREATE_CHILD_SA, [])
    left.receive(request, LEFT, RIGHT, 1.0)
    assert sent(left) == []
    assert left.drops.counts["request not valid in this state"] == 1
    for d in delete:
        right.receive(d, RIGHT, LEFT, 1.0)
    pump(left, right, now=1.0)
    assert left.ike_sas() == [] and right.ike_sas() == []


def test_rfc7296_2_21_2_ike_auth_without_idi_or_auth_invalid_syntax() -> None:
    left, right, auth = half_open()
    (request,) = auth
    bad = rewrite(
        the_sa(left),
        the_sa(right),
        request,
        lambda ps: [p for p in ps if not isinstance(p, AUTH | IDi)],
    )
    right.receive(bad, RIGHT, LEFT, 0.0)
    (reply,) = sent(right)
    _message, payloads = opened(the_sa(left), reply)
    assert notify_types(payloads) == [NotifyType.INVALID_SYNTAX]
    assert right.ike_sas() == []  # the half-open SA is gone


def test_rfc7296_2_21_2_authentication_failed_answered_and_both_sas_gone() -> None:
    left, right = engines(right_kw={"secret": "another-secret"})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right, rounds=1)  # IKE_SA_INIT both ways, IKE_AUTH request out
    keyed = dataclasses.replace(the_sa(left))  # its keys, to open right's answer later
    crossed += pump(left, right)
    _message, payloads = opened(keyed, crossed[3])
    assert notify_types(payloads) == [NotifyType.AUTHENTICATION_FAILED]
    assert left.ike_sas() == [] and right.ike_sas() == []


def test_rfc7296_3_10_1_unrecognised_error_notify_in_a_request_ignored() -> None:
    left, right, _, _ = established()
    request = next_request(the_sa(left), ExchangeType.INFORMATIONAL, [Notify(8191)])
    right.receive(request, RIGHT, LEFT, 1.0)
    (reply,) = sent(right)
    _message, payloads = opened(the_sa(left), reply)
    assert payloads == ()
    assert the_sa(right).state.label == "ESTABLISHED" and len(right.child_sas()) == 1


def test_rfc7296_3_10_1_unrecognised_status_notify_in_a_request_ignored() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.create_child(sa.ike_id, "net", 1.0)
    (request,) = sent(left)
    with_status = rewrite(sa, the_sa(right), request, lambda ps: [*ps, Notify(40000, b"?")])
    right.receive(with_status, RIGHT, LEFT, 1.0)
    for d in sent(right):
        left.receive(d, LEFT, RIGHT, 1.0)
    assert len(left.child_sas()) == 2 and len(right.child_sas()) == 2


def test_rfc7296_3_10_1_unrecognised_error_notify_in_a_response_fails_the_request() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.create_child(sa.ike_id, "net", 1.0)
    (request,) = sent(left)
    right.receive(request, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    spoilt = rewrite(the_sa(right), sa, response, lambda ps: [Notify(8191), *ps])
    left.receive(spoilt, LEFT, RIGHT, 1.0)
    failed = of_type(left.take_events(), ev.NegotiationFailed)
    assert [f.notify for f in failed] == [8191]
    assert len(left.child_sas()) == 1  # "MUST assume the corresponding request has failed"
    assert the_sa(left).state.label == "ESTABLISHED"


def test_rfc7296_2_3_response_of_another_exchange_type_dropped() -> None:
    """A response must be of its request's exchange type (§1, §3.1): an INFORMATIONAL
    answer under a CREATE_CHILD_SA request's message ID is not its response."""
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.create_child(sa.ike_id, "net", 1.0)
    (request,) = sent(left)
    mid = decode_message(request).header.message_id
    other = seal(the_sa(right), ExchangeType.INFORMATIONAL, mid, [], response=True)
    left.receive(other, LEFT, RIGHT, 1.0)
    assert left.drops.counts["response of another exchange type"] == 1
    assert of_type(left.take_events(), ev.NegotiationFailed) == []
    assert the_sa(left).outstanding is not None  # still waiting for the real one
    right.receive(request, RIGHT, LEFT, 1.0)
    for d in sent(right):
        left.receive(d, LEFT, RIGHT, 1.0)
    assert len(left.child_sas()) == 2


@pytest.mark.parametrize("exchange", [43, 44, 240])
def test_rfc7296_1_unknown_exchange_type_request_dropped(exchange: int) -> None:
    """IKE_SESSION_RESUME, IKE_INTERMEDIATE (not negotiated) and unassigned types: dropped
    unanswered, the message ID left for the next real request."""
    left, right, _, _ = established()
    sa = the_sa(left)
    right.receive(seal(sa, exchange, sa.next_request_id, []), RIGHT, LEFT, 1.0)
    assert sent(right) == []
    assert right.drops.counts["request not valid in this state"] == 1
    right.receive(next_request(sa, ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, 1.0)
    assert len(sent(right)) == 1


def test_rfc7296_2_21_2_responder_failing_authentication_told_in_an_informational() -> None:
    """The initiator cannot answer a response: it reports AUTHENTICATION_FAILED in a
    separate INFORMATIONAL request (§2.21.2), then forgets the SA."""
    left, right, auth = half_open()
    for d in auth:
        right.receive(d, RIGHT, LEFT, 0.0)
    (response,) = sent(right)
    sa_l, sa_r = the_sa(left), the_sa(right)
    forged = rewrite(
        sa_r,
        sa_l,
        response,
        lambda ps: [
            dataclasses.replace(p, data=bytes(len(p.data))) if isinstance(p, AUTH) else p
            for p in ps
        ],
    )
    left.receive(forged, LEFT, RIGHT, 0.0)
    (report,) = sent(left)
    message, payloads = opened(sa_r, report)
    assert message.header.exchange == ExchangeType.INFORMATIONAL
    assert not message.header.is_response and message.header.message_id == 2
    assert notify_types(payloads) == [NotifyType.AUTHENTICATION_FAILED]
    assert left.ike_sas() == [] and left.child_sas() == []
    right.receive(report, RIGHT, LEFT, 0.0)
    assert right.ike_sas() == [] and right.child_sas() == []
