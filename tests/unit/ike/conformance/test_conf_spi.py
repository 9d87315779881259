"""IKE SPIs, the I and R flags, and messages for SAs we do not hold (RFC 7296 §2.6, §2.21.4,
§3.1; TAHI IKEv2 group 1, part 3)."""

from __future__ import annotations

import dataclasses

import pytest
from ike_pair import (
    LEFT,
    RIGHT,
    engines,
    established,
    next_request,
    plain,
    pump,
    seal,
    sent,
    the_sa,
)

from petrel.ike.stray import INVALID_SPI_BURST, INVALID_SPI_PER_SECOND
from petrel.wire.codec import decode_message, encode_message
from petrel.wire.payloads import FLAG_INITIATOR, FLAG_RESPONSE, IkeHeader, Message, Notify
from petrel.wire.registry import ExchangeType, NotifyType


def forgotten(**kw):
    """Left holds an IKE SA that right has forgotten (a reboot, §2.21.4)."""
    left, _right, _, _ = established(**kw)
    _, rebooted = engines()
    return left, rebooted


def test_rfc7296_2_21_4_request_for_unknown_ike_sa_answered_invalid_ike_spi() -> None:
    left, right = forgotten()
    sa = the_sa(left)
    request = next_request(sa, ExchangeType.INFORMATIONAL, [])
    right.receive(request, RIGHT, LEFT, 1.0)
    (answer,) = sent(right)
    reply = decode_message(answer)
    header = reply.header
    assert (header.spi_i, header.spi_r) == (sa.spi_i, sa.spi_r)  # SPIs copied
    assert header.message_id == decode_message(request).header.message_id  # ID copied
    assert header.exchange == ExchangeType.INFORMATIONAL
    assert header.flags == FLAG_RESPONSE  # a response; right was not the original initiator
    assert [n.notify_type for n in reply.notifies()] == [NotifyType.INVALID_IKE_SPI]
    assert reply.header.next_payload == 41  # unprotected: a Notify, no SK payload
    assert right.ike_sas() == []


def test_rfc7296_2_21_4_invalid_ike_spi_rate_limited() -> None:
    left, right = forgotten()
    sa = the_sa(left)
    answers = 0
    for _ in range(100):  # a burst at one instant
        right.receive(next_request(sa, ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, 5.0)
        answers += len(sent(right))
    assert answers == INVALID_SPI_BURST
    assert right.drops.counts["message for an unknown IKE SA"] == 100
    # Then at most the sustained rate: 10 s of one request every 10 ms.
    answers = 0
    for step in range(1000):
        now = 5.0 + (step + 1) / 100
        right.receive(next_request(sa, ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, now)
        answers += len(sent(right))
    assert answers <= INVALID_SPI_PER_SECOND * 10 + 1
    assert answers >= INVALID_SPI_PER_SECOND * 10 - 1  # and still answers legitimate ones


def test_rfc7296_2_21_4_response_for_unknown_ike_sa_never_answered() -> None:
    left, right = forgotten()
    response = seal(the_sa(left), ExchangeType.INFORMATIONAL, 0, [], response=True)
    right.receive(response, RIGHT, LEFT, 1.0)
    assert sent(right) == []
    assert right.drops.counts["message for an unknown IKE SA"] == 1


def test_rfc7296_2_21_4_unprotected_request_for_unknown_ike_sa_not_answered() -> None:
    left, right = forgotten()
    sa = the_sa(left)
    header = IkeHeader(sa.spi_i, sa.spi_r, 0, ExchangeType.INFORMATIONAL, 2, FLAG_INITIATOR)
    right.receive(plain(header, [Notify(NotifyType.INITIAL_CONTACT)]), RIGHT, LEFT, 1.0)
    assert sent(right) == []


def test_rfc7296_2_21_4_deleted_ike_sa_really_gone() -> None:
    """After a Delete the SPIs are unknown: a request under them gets INVALID_IKE_SPI."""
    left, right, _, _ = established()
    old = dataclasses.replace(the_sa(left))
    left.terminate(old.ike_id, 1.0)
    pump(left, right, now=1.0)
    assert left.ike_sas() == [] and right.ike_sas() == [] and right.child_sas() == []
    right.receive(next_request(old, ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, 2.0)
    (answer,) = sent(right)
    assert decode_message(answer).notifies()[0].notify_type == NotifyType.INVALID_IKE_SPI


def test_rfc7296_2_21_4_unauthenticated_invalid_ike_spi_does_not_end_an_sa() -> None:
    left, _right, _, _ = established()
    sa = the_sa(left)
    left.receive(
        plain(
            IkeHeader(sa.spi_i, sa.spi_r, 0, ExchangeType.INFORMATIONAL, 0, FLAG_RESPONSE),
            [Notify(NotifyType.INVALID_IKE_SPI)],
        ),
        LEFT,
        RIGHT,
        1.0,
    )
    assert the_sa(left).state.label == "ESTABLISHED"


def test_rfc7296_3_1_initiator_flag_of_our_own_role_dropped() -> None:
    """A message whose I flag claims the sender is what we are (the original initiator)
    cannot come from our peer (§3.1): dropped unanswered, the window unmoved."""
    left, right, _, _ = established()
    sa_l, sa_r = the_sa(left), the_sa(right)
    bad = seal(sa_r, ExchangeType.INFORMATIONAL, 0, [], flags=FLAG_INITIATOR)
    left.receive(bad, LEFT, RIGHT, 1.0)
    assert sent(left) == [] and left.drops.counts["initiator flag does not match our role"] == 1
    bad = seal(sa_l, ExchangeType.INFORMATIONAL, sa_l.next_request_id, [], flags=0)
    right.receive(bad, RIGHT, LEFT, 1.0)
    assert sent(right) == [] and right.drops.counts["initiator flag does not match our role"] == 1
    assert the_sa(right).expected_peer_id == sa_l.next_request_id


def test_rfc7296_3_1_response_flag_on_a_request_is_a_stray_response() -> None:
    """A request sent with the R flag is a response nobody asked for: dropped (§2.3)."""
    left, right, _, _ = established()
    sa = the_sa(left)
    bad = seal(sa, ExchangeType.INFORMATIONAL, sa.next_request_id, [], response=True)
    right.receive(bad, RIGHT, LEFT, 1.0)
    assert sent(right) == []
    assert right.drops.counts["response without a matching request"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"spi_r": b"\x01" * 8},  # §2.6: SPIr is zero in the first message
        {"message_id": 1},  # §2.2: IKE_SA_INIT is message 0
        {"flags": 0},  # §3.1: the original initiator sets the I flag
    ],
    ids=["nonzero-spi-r", "message-id-1", "no-initiator-flag"],
)
def test_rfc7296_2_6_ike_sa_init_request_with_bad_header_dropped(change: dict) -> None:
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    (data,) = sent(left)
    request = decode_message(data)
    forged = encode_message(
        Message(dataclasses.replace(request.header, **change), request.payloads)
    )
    right.receive(forged, RIGHT, LEFT, 0.0)
    assert sent(right) == [] and right.ike_sas() == []
    assert right.drops.counts["invalid IKE_SA_INIT request header"] == 1


def test_rfc7296_2_6_responder_spi_fresh_and_nonzero() -> None:
    spis = set()
    for _ in range(5):
        left, right, _, _ = established()
        sa = the_sa(right)
        assert sa.spi_r != bytes(8) and sa.spi_i == the_sa(left).spi_i
        spis.add(sa.spi_r)
    assert len(spis) == 5


def test_rfc7296_2_25_child_rekey_for_unknown_spi_child_sa_not_found() -> None:
    """REKEY_SA naming an SPI the peer no longer has: CHILD_SA_NOT_FOUND (§2.25), and the
    Child SA is gone on our side too."""
    left, right, _, _ = established()
    sa, child = left.child_sas()[0]
    right_child = right.child_sas()[0][1]
    # Right forgets the Child SA without telling left (its Delete was lost).
    assert right.delete_child(the_sa(right).ike_id, right_child.child_id, 1.0)
    right.take_datagrams()
    assert left.rekey_child(sa.ike_id, child.child_id, 2.0)
    pump(left, right, now=2.0)
    failed = [e for e in left.take_events() if getattr(e, "notify", None)]
    assert [e.notify for e in failed] == [NotifyType.CHILD_SA_NOT_FOUND]
    assert left.child_sas() == []  # the peer no longer has it: gone here too
    assert the_sa(left).state.label == "ESTABLISHED"


def test_rfc7296_2_21_4_ike_auth_after_the_half_open_sa_expired_invalid_ike_spi() -> None:
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    for d in sent(left):
        right.receive(d, RIGHT, LEFT, 0.0)
    late = right.settings.half_open_timeout + 1.0
    right.handle_timer(late)
    assert right.ike_sas() == []
    for d in sent(right):
        left.receive(d, LEFT, RIGHT, late)
    (auth,) = sent(left)
    right.receive(auth, RIGHT, LEFT, late)
    (answer,) = sent(right)
    assert decode_message(answer).notifies()[0].notify_type == NotifyType.INVALID_IKE_SPI


def test_rfc7296_2_21_4_invalid_ike_spi_sent_whence_the_request_came() -> None:
    left, right = forgotten()
    sa = the_sa(left)
    source = ("192.0.2.77", 4500)  # a NAT mapping right has never seen
    right.receive(next_request(sa, ExchangeType.INFORMATIONAL, []), (RIGHT[0], 4500), source, 1.0)
    (datagram,) = right.take_datagrams()
    assert datagram.remote == source and datagram.local == (RIGHT[0], 4500)
    assert datagram.data[:4] == bytes(4)  # the non-ESP marker of port 4500 (RFC 3948)
    notify = decode_message(datagram.data[4:]).notifies()[0]
    assert notify.notify_type == NotifyType.INVALID_IKE_SPI
