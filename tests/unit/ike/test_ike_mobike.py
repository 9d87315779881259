"""MOBIKE as responder (RFC 4555), two engines in memory: left plays the roaming client."""

from __future__ import annotations

import ipaddress

from ike_pair import LEFT, RIGHT, engines, next_request, of_type, opened, pump, strip

from petrel.crypto.nat import nat_detection_hash
from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine
from petrel.ike.sa import IkeSa
from petrel.wire.payloads import Notify, Payload
from petrel.wire.registry import ExchangeType, NotifyType

MOVED = ("192.0.2.3", 4500)
RIGHT_NATT = (RIGHT[0], 4500)


def _sa(engine: IkeEngine) -> IkeSa:
    (sa,) = engine.ike_sas()
    return sa


def connected(
    client_asks: bool = True, right_kw: dict | None = None
) -> tuple[IkeEngine, IkeEngine, IkeSa, IkeSa, list[Payload]]:
    """Left initiates, offering MOBIKE when ``client_asks`` (``mobike = yes``, the default);
    its IKE_AUTH is delivered as if on port 500.  Returns the engines, their SAs and right's
    answer."""
    left, right = engines(None if client_asks else {"extra": "mobike = no"}, right_kw)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    for src, dst in ((left, right), (right, left)):  # IKE_SA_INIT there and back
        for d in src.take_datagrams():
            dst.receive(strip(d.data), d.remote, d.local, 0.0)
    left_sa, right_sa = _sa(left), _sa(right)
    (auth,) = [strip(d.data) for d in left.take_datagrams()]
    right.receive(auth, RIGHT, LEFT, 0.0)
    (answer,) = [strip(d.data) for d in right.take_datagrams()]
    _, payloads = opened(left_sa, answer)
    left.receive(answer, left_sa.local, left_sa.remote, 0.0)
    pump(left, right)
    return left, right, left_sa, right_sa, list(payloads)


def _packed(host: str) -> bytes:
    return ipaddress.ip_address(host).packed


def update_from(left_sa: IkeSa, source: tuple[str, int], to: tuple[str, int], *extra: Notify):
    """The client's UPDATE_SA_ADDRESSES request with NAT-D for the path ``source`` → ``to``."""
    payloads = [
        Notify(NotifyType.UPDATE_SA_ADDRESSES),
        Notify(
            NotifyType.NAT_DETECTION_SOURCE_IP,
            nat_detection_hash(left_sa.spi_i, left_sa.spi_r, _packed(source[0]), source[1]),
        ),
        Notify(
            NotifyType.NAT_DETECTION_DESTINATION_IP,
            nat_detection_hash(left_sa.spi_i, left_sa.spi_r, _packed(to[0]), to[1]),
        ),
        *extra,
    ]
    return next_request(left_sa, ExchangeType.INFORMATIONAL, payloads)


def test_rfc4555_4_2_1_mobike_supported_answered_in_ike_auth() -> None:
    _, _, _, right_sa, answer = connected()
    assert NotifyType.MOBIKE_SUPPORTED in [getattr(p, "notify_type", None) for p in answer]
    assert right_sa.mobike


def test_no_mobike_without_the_clients_notify_or_with_mobike_no() -> None:
    for asks, right_kw in ((False, None), (True, {"extra": "mobike = no"})):
        _, _, _, right_sa, answer = connected(asks, right_kw)
        assert NotifyType.MOBIKE_SUPPORTED not in [getattr(p, "notify_type", None) for p in answer]
        assert not right_sa.mobike


def test_rfc4555_3_5_update_sa_addresses_moves_the_sa_and_answers_nat_d_and_cookie2() -> None:
    _, right, left_sa, right_sa, _ = connected()
    right.take_events()
    request = update_from(left_sa, MOVED, RIGHT_NATT, Notify(NotifyType.COOKIE2, b"c" * 16))
    right.receive(request, RIGHT_NATT, MOVED, 5.0)
    (reply,) = right.take_datagrams()
    assert reply.remote == MOVED  # answered on the new path
    assert (right_sa.local, right_sa.remote) == (RIGHT_NATT, MOVED)
    (moved,) = of_type(right.take_events(), ev.IkeSaUpdated)
    assert (moved.local, moved.remote) == (RIGHT_NATT, MOVED)
    _, payloads = opened(left_sa, strip(reply.data))
    by_type = {int(p.notify_type): p.data for p in payloads if isinstance(p, Notify)}
    assert by_type[NotifyType.COOKIE2] == b"c" * 16
    src = nat_detection_hash(left_sa.spi_i, left_sa.spi_r, _packed(RIGHT[0]), 4500)
    dst = nat_detection_hash(left_sa.spi_i, left_sa.spi_r, _packed(MOVED[0]), 4500)
    assert by_type[NotifyType.NAT_DETECTION_SOURCE_IP] == src
    assert by_type[NotifyType.NAT_DETECTION_DESTINATION_IP] == dst
    assert not right_sa.encap  # the hashes matched: no NAT on the new path


def test_rfc4555_3_5_a_nat_on_the_new_path_turns_encapsulation_on() -> None:
    _, right, left_sa, right_sa, _ = connected()
    right.take_events()
    behind_nat = ("198.51.100.77", 4500)  # the client's own idea of its address
    request = update_from(left_sa, behind_nat, RIGHT_NATT)
    right.receive(request, RIGHT_NATT, MOVED, 5.0)
    assert right_sa.remote == MOVED and right_sa.nat_remote and right_sa.encap
    updates = of_type(right.take_events(), ev.IkeSaUpdated)
    assert updates and updates[-1].encap and updates[-1].remote == MOVED


def test_rfc4555_3_7_return_routability_check_is_answered_without_moving() -> None:
    _, right, left_sa, right_sa, _ = connected()
    nat_d = [
        Notify(NotifyType.NAT_DETECTION_SOURCE_IP, bytes(20)),
        Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, bytes(20)),
        Notify(NotifyType.COOKIE2, b"k" * 8),
    ]
    request = next_request(left_sa, ExchangeType.INFORMATIONAL, nat_d)
    right.receive(request, RIGHT, LEFT, 5.0)
    (reply,) = right.take_datagrams()
    _, payloads = opened(left_sa, strip(reply.data))
    types = [int(p.notify_type) for p in payloads if isinstance(p, Notify)]
    nat_d_types = [NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP]
    assert sorted(types) == sorted([*nat_d_types, NotifyType.COOKIE2])
    assert right_sa.remote == LEFT and not of_type(right.take_events(), ev.IkeSaUpdated)


def test_update_sa_addresses_without_mobike_agreed_is_ignored() -> None:
    _, right, left_sa, right_sa, _ = connected(client_asks=False)
    right.take_events()
    elsewhere = ("192.0.2.3", 500)
    request = update_from(left_sa, elsewhere, RIGHT)
    right.receive(request, RIGHT, elsewhere, 5.0)
    assert right_sa.remote == LEFT
    assert not of_type(right.take_events(), ev.IkeSaUpdated)


def _no_nats(source: tuple[str, int], destination: tuple[str, int]) -> Notify:
    data = _packed(source[0]) + _packed(destination[0])
    data += source[1].to_bytes(2, "big") + destination[1].to_bytes(2, "big")
    return Notify(NotifyType.NO_NATS_ALLOWED, data)


def test_rfc4555_3_9_no_nats_allowed_refuses_an_update_through_a_nat() -> None:
    _, right, left_sa, right_sa, _ = connected()
    right.take_events()
    as_sent = ("198.51.100.77", 4500)  # what the client put in the notify: not what arrived
    request = update_from(left_sa, MOVED, RIGHT_NATT, _no_nats(as_sent, RIGHT_NATT))
    right.receive(request, RIGHT_NATT, MOVED, 5.0)
    (reply,) = right.take_datagrams()
    _, payloads = opened(left_sa, strip(reply.data))
    types = [int(p.notify_type) for p in payloads if isinstance(p, Notify)]
    assert types == [NotifyType.UNEXPECTED_NAT_DETECTED]
    assert not right_sa.nat_remote  # the update refused: no NAT detection redone


def test_rfc4555_3_9_no_nats_allowed_matching_the_packet_moves_the_sa() -> None:
    _, right, left_sa, right_sa, _ = connected()
    request = update_from(left_sa, MOVED, RIGHT_NATT, _no_nats(MOVED, RIGHT_NATT))
    right.receive(request, RIGHT_NATT, MOVED, 5.0)
    (reply,) = right.take_datagrams()
    _, payloads = opened(left_sa, strip(reply.data))
    types = [int(p.notify_type) for p in payloads if isinstance(p, Notify)]
    assert NotifyType.UNEXPECTED_NAT_DETECTED not in types
    assert right_sa.remote == MOVED


def test_rfc4555_3_5_with_mobike_other_requests_from_elsewhere_move_nothing() -> None:
    _, right, left_sa, right_sa, _ = connected()
    right.take_events()
    request = next_request(left_sa, ExchangeType.INFORMATIONAL, [])  # a liveness check
    right.receive(request, RIGHT_NATT, MOVED, 5.0)
    (reply,) = right.take_datagrams()
    assert reply.remote == MOVED  # answered where it came from (RFC 7296 §2.11)
    assert right_sa.remote == LEFT and not of_type(right.take_events(), ev.IkeSaUpdated)


def test_mobike_survives_an_ike_rekey_either_side_rekeying() -> None:
    for rekeying in ("left", "right"):
        left, right, _, _, _ = connected()
        engine = left if rekeying == "left" else right
        assert engine.rekey_ike(_sa(engine).ike_id, 5.0)
        pump(left, right, 5.0)
        new_left, new_right = _sa(left), _sa(right)
        assert new_right.mobike, rekeying
        request = update_from(new_left, MOVED, RIGHT_NATT)
        right.receive(request, RIGHT_NATT, MOVED, 6.0)
        assert new_right.remote == MOVED, rekeying


def test_rfc4555_3_5_our_outstanding_request_is_retransmitted_to_the_new_address() -> None:
    """An update crossing a request of ours: its retransmission follows the SA (§3.5)."""
    _, right, left_sa, _, _ = connected()
    sa, child = right.child_sas()[0]
    assert right.rekey_child(sa.ike_id, child.child_id, 5.0)
    (first,) = right.take_datagrams()
    assert first.remote == LEFT  # sent before the client moved, and lost
    right.receive(update_from(left_sa, MOVED, RIGHT_NATT), RIGHT_NATT, MOVED, 5.5)
    assert [d.remote for d in right.take_datagrams()] == [MOVED]  # the update's answer
    when = right.next_timer()
    assert when is not None
    right.handle_timer(when)
    again = right.take_datagrams()
    assert again and {d.remote for d in again} == {MOVED}
    assert strip(again[0].data)[:28] == strip(first.data)[:28]  # the same request, resent
