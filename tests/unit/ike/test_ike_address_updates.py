"""Which authentic messages move an IKE SA to new addresses (RFC 7296 §2.23, §2.11), two
engines in memory; left sits behind a NAT box in the NAT cases.

Only the host that is not behind a NAT follows the peer's latest address, and only a peer
that is behind one; with MOBIKE only UPDATE_SA_ADDRESSES moves an SA (RFC 4555 §3.8), though
ESP from a new NAT mapping still does (as charon follows the kernel's mapping events).
Whether followed or not, a request is answered where it came from (§2.11).
"""

from __future__ import annotations

from ike_pair import (
    LEFT,
    PUBLIC,
    RIGHT,
    behind_nat,
    established,
    nat_pump,
    next_request,
    of_type,
    strip,
)

from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine
from petrel.ike.sa import IkeSa
from petrel.wire.registry import ExchangeType

NEW_MAPPING = (PUBLIC, 40001)
RIGHT_NATT = (RIGHT[0], 4500)


def liveness(sender: IkeSa) -> bytes:
    return next_request(sender, ExchangeType.INFORMATIONAL, [])


def answered_to(engine: IkeEngine) -> list[tuple[str, int]]:
    return [d.remote for d in engine.take_datagrams()]


def moves(engine: IkeEngine) -> list[ev.IkeSaUpdated]:
    return of_type(engine.take_events(), ev.IkeSaUpdated)


def test_rfc7296_2_23_a_gateway_follows_a_peer_behind_nat_to_its_new_mapping() -> None:
    _, right, left_sa, right_sa, _ = behind_nat()
    right.receive(liveness(left_sa), RIGHT_NATT, NEW_MAPPING, 5.0)
    assert answered_to(right) == [NEW_MAPPING]
    assert right_sa.remote == NEW_MAPPING
    (moved,) = moves(right)
    assert (moved.local, moved.remote, moved.encap) == (RIGHT_NATT, NEW_MAPPING, True)


def test_rfc7296_2_23_a_host_behind_nat_does_not_follow_the_gateway() -> None:
    left, _, left_sa, right_sa, _ = behind_nat()
    elsewhere = ("192.0.2.22", 4500)
    left.receive(liveness(right_sa), (LEFT[0], 4500), elsewhere, 5.0)
    assert answered_to(left) == [elsewhere]  # §2.11: answered where it came from
    assert left_sa.remote == RIGHT_NATT and not moves(left)


def _plain_pair() -> tuple[IkeEngine, IkeEngine, IkeSa, IkeSa]:
    """No NAT and no MOBIKE: the IKE SA stays on port 500."""
    left, right, _, _ = established(left_kw={"extra": "mobike = no"})
    (left_sa,), (right_sa,) = left.ike_sas(), right.ike_sas()
    return left, right, left_sa, right_sa


def test_rfc7296_2_23_without_nat_a_new_source_is_answered_but_not_followed() -> None:
    for elsewhere in (("192.0.2.3", 500), ("192.0.2.3", 4500), (LEFT[0], 4500)):
        _, right, left_sa, right_sa = _plain_pair()
        right.receive(liveness(left_sa), RIGHT, elsewhere, 5.0)
        assert answered_to(right) == [elsewhere], elsewhere
        assert (right_sa.local, right_sa.remote) == (RIGHT, LEFT) and not moves(right), elsewhere


def test_rfc7296_2_11_a_retransmitted_request_is_answered_where_it_came_from() -> None:
    _, right, left_sa, right_sa = _plain_pair()
    request = liveness(left_sa)
    right.receive(request, RIGHT, LEFT, 5.0)
    assert answered_to(right) == [LEFT]
    elsewhere = ("192.0.2.3", 500)
    right.receive(request, RIGHT, elsewhere, 6.0)
    assert answered_to(right) == [elsewhere]
    assert right_sa.remote == LEFT


def test_a_response_from_a_new_address_is_followed_only_from_a_peer_behind_nat() -> None:
    left, right, left_sa, right_sa, nat = behind_nat()
    # Right (not behind the NAT) asks; left's answer comes from a new mapping: followed.
    assert right.rekey_child(*_first_child(right), 5.0)
    (request,) = right.take_datagrams()
    left.receive(strip(request.data), (LEFT[0], 4500), RIGHT_NATT, 5.0)
    (reply,) = left.take_datagrams()
    right.receive(strip(reply.data), RIGHT_NATT, NEW_MAPPING, 5.0)
    assert right_sa.remote == NEW_MAPPING
    # Left (behind it) asks; right's answer from elsewhere is not followed.
    nat.out[(LEFT[0], 4500)] = NEW_MAPPING
    nat_pump(left, right, nat, 6.0)  # the rest of the rekey, if any
    assert left.rekey_child(*_first_child(left), 7.0)
    (request,) = left.take_datagrams()
    right.receive(strip(request.data), RIGHT_NATT, NEW_MAPPING, 7.0)
    (reply,) = right.take_datagrams()
    left.receive(strip(reply.data), (LEFT[0], 4500), ("192.0.2.22", 4500), 7.0)
    assert left_sa.remote == RIGHT_NATT


def _first_child(engine: IkeEngine) -> tuple[int, int]:
    sa, child = engine.child_sas()[0]
    return sa.ike_id, child.child_id


def test_esp_from_a_new_nat_mapping_moves_the_sa_of_a_peer_behind_nat() -> None:
    for mobike in (False, True):  # RFC 4555 §3.8: ESP may move it under MOBIKE too
        _, right, _, right_sa, _ = behind_nat(mobike)
        right.peer_moved(right_sa.ike_id, NEW_MAPPING, 5.0)
        assert right_sa.remote == NEW_MAPPING
        (moved,) = moves(right)
        assert (moved.remote, moved.encap) == (NEW_MAPPING, True)


def test_rfc4555_3_8_with_mobike_ike_from_a_new_mapping_moves_nothing() -> None:
    _, right, left_sa, right_sa, _ = behind_nat(mobike=True)
    before = right_sa.remote
    right.receive(liveness(left_sa), RIGHT_NATT, NEW_MAPPING, 5.0)
    assert answered_to(right) == [NEW_MAPPING]
    assert right_sa.remote == before and not moves(right)


def test_esp_from_elsewhere_moves_nothing_without_nat_or_behind_it() -> None:
    left, _, left_sa, _, _ = behind_nat()
    left.peer_moved(left_sa.ike_id, ("192.0.2.22", 4500), 5.0)  # left is behind the NAT
    assert left_sa.remote == RIGHT_NATT and not moves(left)
    # Encapsulation forced (encap = yes) fakes a NAT for the peer to see, not for us.
    left, _, _, _ = established(left_kw={"encap": "yes"})
    (left_sa,) = left.ike_sas()
    assert left_sa.encap and not (left_sa.nat_local or left_sa.nat_remote)
    before = left_sa.remote
    left.peer_moved(left_sa.ike_id, ("192.0.2.22", 4500), 5.0)
    assert left_sa.remote == before and not moves(left)


def test_an_ike_rekey_keeps_the_nat_state_and_who_first_initiated() -> None:
    for rekeying in ("left", "right"):
        left, right, _, _, nat = behind_nat()
        engine = left if rekeying == "left" else right
        assert engine.rekey_ike(engine.ike_sas()[0].ike_id, 5.0)
        nat_pump(left, right, nat, 5.0)
        (new_left,), (new_right,) = left.ike_sas(), right.ike_sas()
        assert new_left.nat_local and new_right.nat_remote
        assert new_left.original_initiator and not new_right.original_initiator
        assert new_left.fragmentation and new_right.fragmentation
        # Still the gateway that follows the peer behind the NAT, whoever rekeyed.
        right.take_events()
        right.receive(liveness(new_left), RIGHT_NATT, NEW_MAPPING, 6.0)
        assert new_right.remote == NEW_MAPPING, rekeying
        left.take_events()
        left.receive(liveness(new_right), (LEFT[0], 4500), ("192.0.2.22", 4500), 6.0)
        assert new_left.remote == RIGHT_NATT, rekeying
