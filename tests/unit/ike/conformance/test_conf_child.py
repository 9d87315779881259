"""CREATE_CHILD_SA (RFC 7296 §1.3, §2.8, §2.9, §2.25; TAHI IKEv2 group 2): new Child SAs,
rekeys with REKEY_SA, IKE SA rekeys, PFS, transport mode refused, and the failures
NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE, INVALID_KE_PAYLOAD, NO_ADDITIONAL_SAS,
TEMPORARY_FAILURE — each leaving the IKE SA as it was."""

from __future__ import annotations

import dataclasses

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
    sent,
    the_sa,
)

from petrel.crypto.proposals import parse_proposals
from petrel.ike import events as ev
from petrel.wire.payloads import KE, SA, Delete, Nonce, Notify, TSi, TSr
from petrel.wire.registry import ExchangeType, NotifyType, ProtocolId


def exchange(left, right, now: float = 1.0):
    """Left's queued request to right and back, both opened: (request, response) payloads."""
    sa_l, sa_r = the_sa(left), the_sa(right)
    (request,) = sent(left)
    right.receive(request, RIGHT, LEFT, now)
    (response,) = sent(right)
    left.receive(response, LEFT, RIGHT, now)
    _m, req = opened(sa_r, request)
    _m, resp = opened(sa_l, response)
    return req, resp


def test_rfc7296_1_3_1_new_child_sa() -> None:
    left, right, _, _ = established()
    assert left.create_child(the_sa(left).ike_id, "net", 1.0)
    request, response = exchange(left, right)
    assert [type(p) for p in request] == [SA, Nonce, TSi, TSr]
    assert [type(p) for p in response] == [SA, Nonce, TSi, TSr]
    assert len(left.child_sas()) == 2 and len(right.child_sas()) == 2


def test_rfc7296_1_3_3_child_rekey_names_the_old_sa_with_rekey_sa() -> None:
    left, right, _, _ = established()
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 1.0)
    request, _response = exchange(left, right)
    (rekey,) = [p for p in request if isinstance(p, Notify)]
    assert rekey.notify_type == NotifyType.REKEY_SA and rekey.protocol == ProtocolId.ESP
    assert int.from_bytes(rekey.spi, "big") == child.spi_in  # §1.3.3: our inbound SPI
    pump(left, right, now=1.0)  # then the old SA is deleted (§2.8)
    (new,) = [c for _sa, c in left.child_sas()]
    assert new.child_id != child.child_id and len(right.child_sas()) == 1


def test_rfc7296_1_3_2_ike_sa_rekey_new_spis_children_moved_old_deleted() -> None:
    left, right, _, _ = established()
    old = the_sa(left)
    child_spis = {(c.spi_in, c.spi_out) for _s, c in left.child_sas()}
    assert left.rekey_ike(old.ike_id, 1.0)
    request, response = exchange(left, right)
    for payloads in (request, response):
        (proposal,) = next(p for p in payloads if isinstance(p, SA)).proposals
        assert proposal.protocol == ProtocolId.IKE and len(proposal.spi) == 8
        assert any(isinstance(p, KE) for p in payloads)  # §1.3.2: always a new DH
    pump(left, right, now=1.0)
    new = the_sa(left)
    assert (new.spi_i, new.spi_r) != (old.spi_i, old.spi_r)
    assert (new.spi_i, new.spi_r) == (the_sa(right).spi_i, the_sa(right).spi_r)
    assert {(c.spi_in, c.spi_out) for _s, c in left.child_sas()} == child_spis


def test_rfc7296_1_3_1_pfs_key_exchange_in_create_child_sa() -> None:
    pfs = {"esp": "aes256gcm16-x25519"}
    left, right, _, _ = established(left_kw=pfs, right_kw=pfs)
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 1.0)
    request, response = exchange(left, right)
    assert [p.group for p in request if isinstance(p, KE)] == [31]
    assert [p.group for p in response if isinstance(p, KE)] == [31]


def test_rfc7296_1_3_1_use_transport_mode_answered_with_tunnel_mode() -> None:
    """Petrel implements tunnel mode only: it does not echo USE_TRANSPORT_MODE, which makes
    the Child SA a tunnel-mode SA (§1.3.1)."""
    left, right, _, _ = established()
    assert left.create_child(the_sa(left).ike_id, "net", 1.0)
    (request,) = sent(left)
    asked = rewrite(
        the_sa(left),
        the_sa(right),
        request,
        lambda ps: [Notify(NotifyType.USE_TRANSPORT_MODE), *ps],
    )
    right.receive(asked, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    _m, payloads = opened(the_sa(left), response)
    assert NotifyType.USE_TRANSPORT_MODE not in notify_types(payloads)
    assert any(isinstance(p, SA) for p in payloads)
    (up,) = of_type(right.take_events(), ev.ChildSaUp)
    assert up.mode == "tunnel"


def test_rfc7296_1_3_no_proposal_chosen_keeps_the_ike_sa() -> None:
    """No common ESP proposal: NO_PROPOSAL_CHOSEN in IKE_AUTH (the IKE SA is still made,
    §1.2) and again in CREATE_CHILD_SA; the IKE SA stays."""
    left, right, l_events, _ = established(
        left_kw={"esp": "aes128gcm16"}, right_kw={"esp": "aes256gcm16"}
    )
    assert of_type(l_events, ev.IkeSaUp) and not of_type(l_events, ev.ChildSaUp)
    assert left.create_child(the_sa(left).ike_id, "net", 1.0)
    _request, response = exchange(left, right)
    assert notify_types(response) == [NotifyType.NO_PROPOSAL_CHOSEN]
    assert left.child_sas() == [] and right.child_sas() == []
    assert the_sa(left).state.label == "ESTABLISHED" == the_sa(right).state.label


def test_rfc7296_2_9_ts_unacceptable_keeps_the_ike_sa() -> None:
    left, right, l_events, _ = established(left_kw={"remote_ts": "203.0.113.99/32"})
    assert of_type(l_events, ev.IkeSaUp) and not of_type(l_events, ev.ChildSaUp)
    assert left.create_child(the_sa(left).ike_id, "net", 1.0)
    _request, response = exchange(left, right)
    assert notify_types(response) == [NotifyType.TS_UNACCEPTABLE]
    assert left.child_sas() == [] and right.child_sas() == []
    assert the_sa(left).state.label == "ESTABLISHED"


def test_rfc7296_1_3_invalid_ke_payload_in_create_child_sa_retried_with_the_group() -> None:
    left, right, _, _ = established(
        left_kw={"esp": "aes256gcm16-x25519-ecp256"}, right_kw={"esp": "aes256gcm16-ecp256"}
    )
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 1.0)
    request, response = exchange(left, right)
    assert [p.group for p in request if isinstance(p, KE)] == [31]
    (notify,) = [p for p in response if isinstance(p, Notify)]
    assert notify.notify_type == NotifyType.INVALID_KE_PAYLOAD and notify.data == b"\x00\x13"
    retry, answer = exchange(left, right)
    assert [p.group for p in retry if isinstance(p, KE)] == [19]
    assert [p.group for p in answer if isinstance(p, KE)] == [19]
    pump(left, right, now=1.0)
    assert len(left.child_sas()) == 1 and left.child_sas()[0][1].child_id != child.child_id


def test_rfc7296_1_3_no_additional_sas_received_keeps_the_ike_sa() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.create_child(sa.ike_id, "net", 1.0)
    (request,) = sent(left)
    right.receive(request, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    refusal = rewrite(
        the_sa(right), sa, response, lambda _ps: [Notify(NotifyType.NO_ADDITIONAL_SAS)]
    )
    left.receive(refusal, LEFT, RIGHT, 1.0)
    (failed,) = of_type(left.take_events(), ev.NegotiationFailed)
    assert failed.notify == NotifyType.NO_ADDITIONAL_SAS and failed.received
    assert len(left.child_sas()) == 1 and the_sa(left).state.label == "ESTABLISHED"
    assert the_sa(left).outstanding is None  # the window is free for the next exchange


def test_rfc7296_2_25_temporary_failure_while_our_ike_rekey_is_in_flight() -> None:
    left, right, _, _ = established()
    assert right.rekey_ike(the_sa(right).ike_id, 1.0)
    right_rekey = sent(right)
    assert left.create_child(the_sa(left).ike_id, "net", 1.0)
    (request,) = sent(left)
    right.receive(request, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    _m, payloads = opened(the_sa(left), response)
    assert notify_types(payloads) == [NotifyType.TEMPORARY_FAILURE]
    del right_rekey


def test_rfc7296_1_3_create_child_sa_without_nonce_invalid_syntax() -> None:
    left, right, _, _ = established()
    assert left.create_child(the_sa(left).ike_id, "net", 1.0)
    (request,) = sent(left)
    bad = rewrite(
        the_sa(left), the_sa(right), request, lambda ps: [p for p in ps if not isinstance(p, Nonce)]
    )
    right.receive(bad, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    _m, payloads = opened(the_sa(left), response)
    assert notify_types(payloads) == [NotifyType.INVALID_SYNTAX]
    assert len(right.child_sas()) == 1


def test_rfc7296_1_4_1_delete_child_sa_answered_with_the_paired_spi() -> None:
    left, right, _, _ = established()
    sa, child = left.child_sas()[0]
    assert left.delete_child(sa.ike_id, child.child_id, 1.0)
    request, response = exchange(left, right)
    (asked,) = [p for p in request if isinstance(p, Delete)]
    (answered,) = [p for p in response if isinstance(p, Delete)]
    assert [int.from_bytes(s, "big") for s in asked.spis] == [child.spi_in]
    assert [int.from_bytes(s, "big") for s in answered.spis] == [child.spi_out]
    assert left.child_sas() == [] and right.child_sas() == []


def test_rfc7296_1_4_1_delete_of_unknown_child_spi_answered_empty() -> None:
    left, right, _, _ = established()
    request = next_request(
        the_sa(left),
        ExchangeType.INFORMATIONAL,
        [Delete(ProtocolId.ESP, (b"\x00\x00\x12\x34",), 4)],
    )
    right.receive(request, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    _m, payloads = opened(the_sa(left), response)
    assert payloads == ()
    assert len(right.child_sas()) == 1


def test_rfc7296_1_4_1_delete_ike_sa_answered_empty_and_everything_gone() -> None:
    left, right, _, _ = established()
    sa = the_sa(left)
    assert left.terminate(sa.ike_id, 1.0)
    (request,) = sent(left)
    right.receive(request, RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    _m, payloads = opened(sa, response)
    assert payloads == ()
    assert right.ike_sas() == [] and right.child_sas() == []
    left.receive(response, LEFT, RIGHT, 1.0)
    assert left.ike_sas() == [] and left.child_sas() == []
    assert of_type(right.take_events(), ev.ChildSaDown)


def test_rfc7296_2_4_liveness_check_answered_empty() -> None:
    left, right, _, _ = established()
    right.receive(next_request(the_sa(left), ExchangeType.INFORMATIONAL, []), RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    message, payloads = opened(the_sa(left), response)
    assert payloads == () and message.header.exchange == ExchangeType.INFORMATIONAL


def test_rfc7296_2_4_initial_contact_replaces_older_ike_sas() -> None:
    _left, right, _, _ = established()
    old = the_sa(right)
    rebooted, _ = engines()  # left rebooted: a new IKE SA, with INITIAL_CONTACT
    rebooted.initiate("c", "net", LEFT, RIGHT, 5.0)
    crossed = pump(rebooted, right, now=5.0)
    (new,) = right.ike_sas()
    _m, auth = opened(new, crossed[2])
    assert NotifyType.INITIAL_CONTACT in notify_types(auth)
    assert new.ike_id != old.ike_id and len(right.child_sas()) == 1
    assert [e.reason for e in of_type(right.take_events(), ev.IkeSaDown)] == [
        "replaced after INITIAL_CONTACT"
    ]


def test_rfc7296_1_3_2_ike_rekey_no_proposal_chosen_keeps_the_ike_sa() -> None:
    left, right, _, _ = established()
    old = the_sa(left)
    spis = (old.spi_i, old.spi_r)
    assert left.rekey_ike(old.ike_id, 1.0)
    (request,) = sent(left)

    def unacceptable(payloads: list) -> list:
        (offer,) = [p for p in payloads if isinstance(p, SA)]
        proposal = offer.proposals[0]
        des = [t if t.type != 1 else type(t)(1, 2) for t in proposal.transforms]  # ENCR_DES
        changed = SA((type(proposal)(1, proposal.protocol, proposal.spi, tuple(des)),))
        return [changed if p is offer else p for p in payloads]

    right.receive(rewrite(old, the_sa(right), request, unacceptable), RIGHT, LEFT, 1.0)
    (response,) = sent(right)
    _m, payloads = opened(old, response)
    assert notify_types(payloads) == [NotifyType.NO_PROPOSAL_CHOSEN]
    left.receive(response, LEFT, RIGHT, 1.0)
    assert [(sa.spi_i, sa.spi_r) for sa in left.ike_sas()] == [spis]
    assert [(sa.spi_i, sa.spi_r) for sa in right.ike_sas()] == [spis]
    assert len(left.child_sas()) == 1 and the_sa(left).state.label == "ESTABLISHED"


def test_rfc7296_1_5_invalid_spi_notify_answered_and_nothing_deleted() -> None:
    """INVALID_SPI (§1.5) in an authentic INFORMATIONAL: answered; the Child SA stays (the
    RFC prescribes no action, and a Delete is how SAs end)."""
    left, right, _, _ = established()
    (_sa, child) = right.child_sas()[0]
    spi = child.spi_out.to_bytes(4, "big")
    report = Notify(NotifyType.INVALID_SPI, spi, ProtocolId.ESP)
    right.receive(
        next_request(the_sa(left), ExchangeType.INFORMATIONAL, [report]), RIGHT, LEFT, 1.0
    )
    (reply,) = sent(right)
    _m, payloads = opened(the_sa(left), reply)
    assert payloads == ()
    assert len(right.child_sas()) == 1 and right.take_events() == []


def test_rfc7296_1_3_2_invalid_ke_payload_in_an_ike_rekey_retried_with_the_group() -> None:
    both = {"proposals": "aes256gcm16-prfsha256-ecp256-x25519"}
    left, right, _, _ = established(left_kw=both, right_kw=both)
    old = the_sa(left)
    assert old.ke_group == 19
    sa_r = the_sa(right)
    assert sa_r.connection is not None  # right now takes only Curve25519
    x25519 = parse_proposals("aes256gcm16-prfsha256-x25519", ProtocolId.IKE)
    sa_r.connection = dataclasses.replace(sa_r.connection, proposals=x25519)
    assert left.rekey_ike(old.ike_id, 1.0)
    request, response = exchange(left, right)
    assert [p.group for p in request if isinstance(p, KE)] == [19]
    (notify,) = [p for p in response if isinstance(p, Notify)]
    assert notify.notify_type == NotifyType.INVALID_KE_PAYLOAD and notify.data == b"\x00\x1f"
    retry, answer = exchange(left, right)
    assert [p.group for p in retry if isinstance(p, KE)] == [31]
    assert [p.group for p in answer if isinstance(p, KE)] == [31]
    pump(left, right, now=1.0)
    new = the_sa(left)
    assert (new.spi_i, new.spi_r) != (old.spi_i, old.spi_r)
    assert (new.spi_i, new.spi_r) == (the_sa(right).spi_i, the_sa(right).spi_r)
    assert len(left.child_sas()) == 1
