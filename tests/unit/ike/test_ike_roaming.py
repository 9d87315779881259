"""MOBIKE as initiator (RFC 4555), two engines in memory: left roams, right follows."""

from __future__ import annotations

from ike_pair import (
    LEFT,
    PUBLIC,
    RIGHT,
    behind_nat,
    engines,
    of_type,
    opened,
    pump,
    rewrite,
    strip,
)

from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine
from petrel.ike.sa import IkeSa
from petrel.wire.payloads import Notify
from petrel.wire.registry import NotifyType

NEW = "192.0.2.3"
LEFT_NATT, RIGHT_NATT, NEW_NATT = (LEFT[0], 4500), (RIGHT[0], 4500), (NEW, 4500)


def up(left_extra: str = "local_addrs = 192.0.2.0/24") -> tuple[IkeEngine, IkeEngine, IkeSa, IkeSa]:
    """Left may use any address of 192.0.2.0/24 (its local_addrs)."""
    left, right = engines({"extra": left_extra})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    (left_sa,), (right_sa,) = left.ike_sas(), right.ike_sas()
    left.take_events()
    right.take_events()
    return left, right, left_sa, right_sa


def notifies_of(receiver: IkeSa, data: bytes) -> dict[int, bytes]:
    _, payloads = opened(receiver, strip(data))
    return {int(p.notify_type): p.data for p in payloads if isinstance(p, Notify)}


def test_rfc4555_3_3_mobike_agreed_and_ike_auth_on_port_4500_without_nat() -> None:
    _, _, left_sa, right_sa = up()
    assert left_sa.mobike and right_sa.mobike
    assert (left_sa.local, left_sa.remote) == (LEFT_NATT, RIGHT_NATT)
    assert (right_sa.local, right_sa.remote) == (RIGHT_NATT, LEFT_NATT)
    assert not (left_sa.encap or right_sa.encap)  # 4500, yet no UDP encapsulation of ESP


def test_mobike_no_neither_offers_nor_floats() -> None:
    _, _, left_sa, right_sa = up("mobike = no")
    assert not left_sa.mobike and not right_sa.mobike
    assert (left_sa.local, right_sa.local) == (LEFT, RIGHT)


def test_rfc4555_3_5_roaming_moves_both_sides() -> None:
    left, right, left_sa, right_sa = up()
    assert left.roam(left_sa.ike_id, NEW, 5.0)
    assert (left_sa.local, left_sa.remote) == (NEW_NATT, RIGHT_NATT)
    (moved,) = of_type(left.take_events(), ev.IkeSaUpdated)  # Child SAs move at once
    assert (moved.local, moved.remote, moved.encap) == (NEW_NATT, RIGHT_NATT, False)
    (update,) = left.take_datagrams()
    assert (update.local, update.remote) == (NEW_NATT, RIGHT_NATT)
    sent = notifies_of(right_sa, update.data)
    assert NotifyType.UPDATE_SA_ADDRESSES in sent and len(sent[NotifyType.COOKIE2]) == 16
    assert {NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP} <= set(
        sent
    )
    right.receive(strip(update.data), RIGHT_NATT, NEW_NATT, 5.0)
    assert right_sa.remote == NEW_NATT and not right_sa.encap
    (answer,) = right.take_datagrams()
    assert answer.remote == NEW_NATT
    left.receive(strip(answer.data), NEW_NATT, RIGHT_NATT, 5.0)
    assert left_sa.outstanding is None and not left_sa.encap
    assert not of_type(left.take_events(), ev.IkeSaUpdated)  # nothing new: no NAT


def test_rfc4555_3_5_a_nat_on_the_new_path_turns_encapsulation_on() -> None:
    left, right, left_sa, right_sa = up()
    assert left.roam(left_sa.ike_id, NEW, 5.0)
    left.take_events()
    (update,) = left.take_datagrams()
    mapped = ("198.51.100.200", 31000)  # the update reaches right through a NAT
    right.receive(strip(update.data), RIGHT_NATT, mapped, 5.0)
    assert right_sa.remote == mapped and right_sa.nat_remote
    (answer,) = right.take_datagrams()
    left.receive(strip(answer.data), NEW_NATT, RIGHT_NATT, 5.0)
    assert left_sa.nat_local and left_sa.encap
    (moved,) = of_type(left.take_events(), ev.IkeSaUpdated)
    assert moved.encap and moved.local == NEW_NATT


def test_rfc4555_3_9_an_answer_without_our_cookie2_ends_the_ike_sa() -> None:
    left, right, left_sa, right_sa = up()
    assert left.roam(left_sa.ike_id, NEW, 5.0)
    (update,) = left.take_datagrams()
    right.receive(strip(update.data), RIGHT_NATT, NEW_NATT, 5.0)
    (answer,) = right.take_datagrams()

    def other_cookie(payloads: list) -> list:
        return [
            Notify(NotifyType.COOKIE2, b"x" * 16)
            if isinstance(p, Notify) and p.notify_type == NotifyType.COOKIE2
            else p
            for p in payloads
        ]

    forged = rewrite(right_sa, left_sa, strip(answer.data), other_cookie)
    left.receive(forged, NEW_NATT, RIGHT_NATT, 5.0)
    assert left_sa.state.label == "DELETING"


def test_only_the_original_initiator_roams_and_only_with_mobike() -> None:
    left, right, left_sa, right_sa = up()
    assert not right.roam(right_sa.ike_id, "192.0.2.4", 5.0)  # the responder never does
    assert not left.roam(left_sa.ike_id, LEFT[0], 5.0)  # no change
    assert not right.take_datagrams() and not left.take_datagrams()
    left, _, left_sa, _ = up("mobike = no\n    local_addrs = 192.0.2.0/24")
    assert not left.roam(left_sa.ike_id, NEW, 5.0) and left_sa.local == LEFT


def test_no_roaming_outside_local_addrs() -> None:
    left, _, left_sa, _ = up()
    assert not left.roam(left_sa.ike_id, "198.51.100.9", 5.0)
    assert left_sa.local == LEFT_NATT and not left.take_datagrams()


def test_roaming_twice_before_an_answer_ends_at_the_last_address() -> None:
    left, right, left_sa, right_sa = up()
    assert left.roam(left_sa.ike_id, NEW, 5.0)
    (first,) = left.take_datagrams()  # lost
    assert left.roam(left_sa.ike_id, "192.0.2.4", 5.5)
    assert left.roam(left_sa.ike_id, "192.0.2.5", 5.6)
    assert len(left_sa.tasks) == 1  # one pending update, however often we moved
    pump(left, right, 6.0)  # nothing pending to deliver yet: the first update is outstanding
    deadline = left.next_timer()
    assert deadline is not None
    left.handle_timer(deadline)  # the first update again, from the current address
    for _ in range(3):
        for d in left.take_datagrams():
            assert d.local == ("192.0.2.5", 4500)
            right.receive(strip(d.data), d.remote, d.local, deadline)
        for d in right.take_datagrams():
            left.receive(strip(d.data), d.remote, d.local, deadline)
    assert right_sa.remote == ("192.0.2.5", 4500)
    assert left_sa.outstanding is None and not left_sa.tasks
    assert first.local == NEW_NATT


def test_an_outstanding_request_is_retransmitted_from_the_new_address() -> None:
    left, _, left_sa, _ = up()
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 5.0)
    (lost,) = left.take_datagrams()
    assert lost.local == LEFT_NATT
    assert left.roam(left_sa.ike_id, NEW, 5.5)
    assert not left.take_datagrams()  # the update waits for the window (§2.3)
    deadline = left.next_timer()
    assert deadline is not None
    left.handle_timer(deadline)
    (again,) = left.take_datagrams()
    assert (again.local, again.remote) == (NEW_NATT, RIGHT_NATT)
    assert strip(again.data) == strip(lost.data)


def test_roaming_during_an_ike_rekey_reaches_the_new_ike_sa() -> None:
    """The update waits behind our IKE rekey; the peer's new IKE SA was made from its old
    one's addresses, so it must hear of the move too (either side rekeying)."""
    for rekeying in ("left", "right"):
        left, right, left_sa, _ = up()
        engine = left if rekeying == "left" else right
        assert engine.rekey_ike(engine.ike_sas()[0].ike_id, 5.0)
        assert left.roam(left_sa.ike_id, NEW, 5.1)
        for _ in range(10):
            for d in left.take_datagrams():
                right.receive(strip(d.data), d.remote, d.local, 6.0)
            for d in right.take_datagrams():
                left.receive(strip(d.data), d.remote, d.local, 6.0)
        (new_left,), (new_right,) = left.ike_sas(), right.ike_sas()
        assert new_left.local == NEW_NATT, rekeying
        assert new_right.remote == NEW_NATT, rekeying


def _liveness_round(left: IkeEngine, right: IkeEngine, nat, when: float) -> list[dict[int, bytes]]:
    """Left's DPD timer fires at ``when``; what left sent (its notifies), all delivered."""
    (right_sa,) = right.ike_sas()
    left.handle_timer(when)
    sent = []
    for _ in range(6):
        out = left.take_datagrams()
        sent += [notifies_of(right_sa, d.data) for d in out]
        for d in out:
            right.receive(strip(d.data), d.remote, nat.outside(d.local), when)
        for d in right.take_datagrams():
            left.receive(strip(d.data), nat.inside(d.remote), d.local, when)
    return sent


def test_rfc4555_3_8_liveness_checks_behind_a_nat_catch_a_new_mapping() -> None:
    left, right, _, right_sa, nat = behind_nat(mobike=True, left_extra="dpd_delay = 10s")
    nat_d = {NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP}
    # The first check: NAT detection included; the peer reports the 4500 mapping, not the
    # IKE_SA_INIT one: one (harmless) update, which moves nothing.
    first = _liveness_round(left, right, nat, 11.0)
    assert nat_d <= set(first[0]) and NotifyType.UPDATE_SA_ADDRESSES in first[1]
    mapped = right_sa.remote
    # The NAT box forgets left's mapping: the next check leaves from another port.  Under
    # MOBIKE right does not follow it (§3.8), but its NAT detection shows the change.
    nat.out[(LEFT[0], 4500)] = (PUBLIC, 40001)
    second = _liveness_round(left, right, nat, 25.0)
    assert NotifyType.UPDATE_SA_ADDRESSES in second[1]
    assert right_sa.remote == (PUBLIC, 40001) != mapped
    # Quiet again: the next check sends no update.
    third = _liveness_round(left, right, nat, 40.0)
    assert len(third) == 1 and NotifyType.UPDATE_SA_ADDRESSES not in third[0]


def test_no_nat_detection_in_liveness_checks_without_a_nat_or_mobike() -> None:
    for mobike in (False, True):
        left, right = engines({"extra": "dpd_delay = 10s" + ("" if mobike else "\n mobike = no")})
        left.initiate("c", "net", LEFT, RIGHT, 0.0)
        pump(left, right)
        (right_sa,) = right.ike_sas()
        left.handle_timer(11.0)
        (check,) = left.take_datagrams()
        assert notifies_of(right_sa, check.data) == {}, mobike
