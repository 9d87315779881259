"""Message IDs, the window and retransmission (RFC 7296 §2.1, §2.2, §2.3; TAHI IKEv2 group 1,
part 2)."""

from __future__ import annotations

import pytest
from ike_pair import (
    LEFT,
    RIGHT,
    engines,
    established,
    next_request,
    of_type,
    opened,
    pump,
    seal,
    sent,
    strip,
    the_sa,
)

from petrel.ike import events as ev
from petrel.ike.engine import EngineSettings
from petrel.wire.codec import decode_message
from petrel.wire.registry import ExchangeType


def test_rfc7296_2_2_message_ids_count_up_from_zero() -> None:
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right)
    sa = the_sa(left)
    for n in range(3):
        assert left.rekey_child(sa.ike_id, left.child_sas()[0][1].child_id, 1.0 + n)
        crossed += pump(left, right, now=1.0 + n)
    ids = [
        (h.message_id, h.is_response)
        for h in (decode_message(strip(d)).header for d in crossed)
        if h.is_initiator
    ]
    requests = [mid for mid, response in ids if not response]
    # IKE_SA_INIT 0, IKE_AUTH 1, then each rekey's CREATE_CHILD_SA and its Delete.
    assert requests == list(range(len(requests))) and len(requests) == 8


@pytest.mark.parametrize("ahead", [1, 2, 1000])
def test_rfc7296_2_3_invalid_message_id_outside_window_dropped(ahead: int) -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    request = seal(sa, ExchangeType.INFORMATIONAL, sa.next_request_id + ahead, [])
    right.receive(request, RIGHT, LEFT, 1.0)
    # §3.10.1 INVALID_MESSAGE_ID: the invalid request MUST NOT be acknowledged.
    assert sent(right) == []
    assert right.drops.counts["request with an unexpected message ID"] == 1
    assert the_sa(right).expected_peer_id == sa.next_request_id
    # The window did not move: the real next request is still answered.
    right.receive(next_request(sa, ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, 1.0)
    assert len(sent(right)) == 1


def test_rfc7296_2_3_old_message_id_outside_cache_dropped() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    for _ in range(2):
        right.receive(next_request(sa, ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, 1.0)
    sent(right)
    right.receive(seal(sa, ExchangeType.INFORMATIONAL, 1, []), RIGHT, LEFT, 2.0)  # long ago
    assert sent(right) == []
    assert right.drops.counts["request with an unexpected message ID"] == 1


@pytest.mark.parametrize("exchange", ["informational", "create_child_sa", "ike_auth"])
def test_rfc7296_2_1_duplicate_request_answered_from_cache_not_processed(exchange: str) -> None:
    settings = EngineSettings(retransmit_timeout=1.0)
    left, right = engines(settings=settings)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    if exchange == "ike_auth":
        pump(left, right, rounds=1)  # IKE_SA_INIT both ways; left sends IKE_AUTH
        request = [d.data for d in left.take_datagrams()]
        for d in request:
            right.receive(d, RIGHT, LEFT, 0.0)
        first = sent(right)
    else:
        pump(left, right)
        sa = the_sa(left)
        if exchange == "create_child_sa":
            assert left.create_child(sa.ike_id, "net", 1.0)
        else:
            assert left.delete_child(sa.ike_id, left.child_sas()[0][1].child_id, 1.0)
        request = [d.data for d in left.take_datagrams()]
        for d in request:
            right.receive(d, RIGHT, LEFT, 1.0)
        first = sent(right)
    right.take_events()
    for d in request:  # the same request again (a retransmission)
        right.receive(d, RIGHT, LEFT, 2.0)
    assert sent(right) == first  # byte for byte the cached response (§2.1)
    assert right.take_events() == []  # nothing processed twice


def test_rfc7296_2_1_duplicate_with_failed_integrity_not_answered() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    request = next_request(sa, ExchangeType.INFORMATIONAL, [])
    right.receive(request, RIGHT, LEFT, 1.0)
    assert len(sent(right)) == 1
    forged = request[:-1] + bytes([request[-1] ^ 1])
    right.receive(forged, RIGHT, LEFT, 1.0)
    assert sent(right) == []
    assert right.drops.counts["integrity check failed"] == 1


def test_rfc7296_2_1_initiator_retransmits_identical_request_with_backoff() -> None:
    settings = EngineSettings(retransmit_timeout=1.0, retransmit_base=2.0, retransmit_tries=3)
    left, _right, _, _ = established(settings=settings)
    sa = the_sa(left)
    assert left.rekey_child(sa.ike_id, left.child_sas()[0][1].child_id, 10.0)
    (original,) = sent(left)
    times = []
    while (deadline := left.next_timer()) is not None and deadline < 100:
        left.handle_timer(deadline)
        out = sent(left)
        if not out:
            break
        assert out == [original]  # the same octets, never re-encrypted (§2.1)
        times.append(deadline - 10.0)
    assert times == [1.0, 3.0, 7.0]  # 1, 2, 4 s apart: exponential back-off
    assert of_type(left.take_events(), ev.IkeSaDown)  # then it gives up


def test_rfc7296_2_1_responder_never_retransmits_on_its_own() -> None:
    settings = EngineSettings(retransmit_timeout=1.0)
    left, right, _, _ = established(settings=settings)
    right.receive(next_request(the_sa(left), ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, 1.0)
    assert len(sent(right)) == 1
    for now in (2.0, 5.0, 20.0, 60.0):
        right.handle_timer(now)
        assert sent(right) == []


def test_rfc7296_2_3_response_with_unexpected_message_id_dropped() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.rekey_child(sa.ike_id, left.child_sas()[0][1].child_id, 1.0)
    (request,) = sent(left)
    mid = decode_message(request).header.message_id
    wrong = seal(the_sa(right), ExchangeType.CREATE_CHILD_SA, mid + 1, [], response=True)
    left.receive(wrong, LEFT, RIGHT, 1.0)
    assert left.drops.counts["response without a matching request"] == 1
    assert the_sa(left).outstanding is not None and sent(left) == []


def test_rfc7296_2_3_response_without_outstanding_request_dropped() -> None:
    left, right, _, _ = established()
    sa_r = the_sa(right)
    unsolicited = seal(sa_r, ExchangeType.INFORMATIONAL, 2, [], response=True)
    left.receive(unsolicited, LEFT, RIGHT, 1.0)
    assert left.drops.counts["response without a matching request"] == 1
    assert sent(left) == [] and the_sa(left).state.label == "ESTABLISHED"


def test_rfc7296_2_3_duplicate_response_ignored() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.rekey_child(sa.ike_id, left.child_sas()[0][1].child_id, 1.0)
    (request,) = sent(left)
    right.receive(request, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    left.receive(response, LEFT, RIGHT, 1.0)
    pump(left, right, now=1.0)
    children = left.child_sas()
    left.take_events()
    left.receive(response, LEFT, RIGHT, 2.0)  # the same response again
    assert left.take_events() == [] and left.child_sas() == children
    assert left.drops.counts["response without a matching request"] == 1


def test_rfc7296_2_3_each_side_counts_its_own_requests() -> None:
    """Both ends send requests: each uses its own message-ID sequence (§2.2)."""
    left, right, _, _ = established()
    r_sa = the_sa(right)
    assert r_sa.next_request_id == 0  # the responder has sent no request yet
    assert right.rekey_child(r_sa.ike_id, right.child_sas()[0][1].child_id, 1.0)
    (request,) = sent(right)
    assert decode_message(request).header.message_id == 0
    left.receive(request, LEFT, RIGHT, 1.0)
    (reply,) = sent(left)
    message, _payloads = opened(r_sa, reply)
    assert message.header.message_id == 0 and message.header.is_response
    # The I flag names the original initiator (§3.1), whoever sends the request.
    assert not decode_message(request).header.is_initiator
    assert message.header.is_initiator


def test_rfc7296_2_1_duplicate_ike_sa_init_answered_from_cache() -> None:
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    (request,) = sent(left)
    right.receive(request, RIGHT, LEFT, 0.0)
    first = sent(right)
    right.receive(request, RIGHT, LEFT, 1.0)
    assert sent(right) == first  # the same response: same SPIr, nonce and KE
    assert len(right.ike_sas()) == 1
