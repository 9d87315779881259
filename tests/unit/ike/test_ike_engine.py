"""Two IKE engines negotiating in memory (no sockets): IKE_SA_INIT, IKE_AUTH, INFORMATIONAL."""

from __future__ import annotations

import logging

import pytest
from ike_pair import LEFT, RIGHT, conf, cross, engines, established, of_type, pump, strip

from petrel.config.swanctl import parse_swanctl
from petrel.crypto.sk import SkCipher
from petrel.ike import events as ev
from petrel.ike.engine import EngineSettings, IkeEngine
from petrel.ike.protect import build_plain, build_protected
from petrel.lab.flood import request_template
from petrel.wire.codec import decode_message
from petrel.wire.payloads import FLAG_INITIATOR, FLAG_RESPONSE, IkeHeader, Notify
from petrel.wire.registry import ExchangeType, NotifyType


@pytest.mark.parametrize(
    ("ike", "esp"),
    [
        ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
        ("aes128-sha256-modp2048", "aes128-sha256"),
        ("chacha20poly1305-prfsha256-ecp256", "chacha20poly1305"),
        ("aes256gcm16-prfsha384-mlkem768", "aes256gcm16-mlkem1024"),
        ("aes256-sha512-modp3072", "aes256ctr-sha384-ecp384"),
    ],
)
def test_tunnel_established_with_matching_child_keys(ike: str, esp: str) -> None:
    left, right = engines({"proposals": ike, "esp": esp}, {"proposals": ike, "esp": esp})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    l_events, r_events = left.take_events(), right.take_events()
    assert len(of_type(l_events, ev.IkeSaUp)) == 1
    assert len(of_type(r_events, ev.IkeSaUp)) == 1
    (l_child,) = of_type(l_events, ev.ChildSaUp)
    (r_child,) = of_type(r_events, ev.ChildSaUp)
    assert l_child.outbound.spi == r_child.inbound.spi
    assert l_child.inbound.spi == r_child.outbound.spi
    assert l_child.outbound.encr_key == r_child.inbound.encr_key
    assert l_child.inbound.encr_key == r_child.outbound.encr_key
    assert l_child.outbound.integ_key == r_child.inbound.integ_key
    assert l_child.outbound.encr_key != l_child.inbound.encr_key
    # IKE_AUTH carries no KE payload, so its Child SA proposals carry no KE (RFC 7296 §1.2).
    assert all(c.algorithms.ke is None for engine in (left, right) for _, c in engine.child_sas())
    assert [str(s) for s in l_child.local_ts] == ["198.51.100.1/32"]
    assert [str(s) for s in r_child.local_ts] == ["203.0.113.1/32"]
    assert not l_child.encap


def test_wrong_psk_is_authentication_failed_and_no_child() -> None:
    left, right = engines(right_kw={"secret": "another-secret"})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    l_events, r_events = left.take_events(), right.take_events()
    assert not of_type(l_events, ev.ChildSaUp) and not of_type(r_events, ev.ChildSaUp)
    failed = of_type(r_events, ev.NegotiationFailed)
    assert failed and failed[0].notify == NotifyType.AUTHENTICATION_FAILED
    failed = of_type(l_events, ev.NegotiationFailed)
    assert failed and failed[0].notify == NotifyType.AUTHENTICATION_FAILED and failed[0].received
    assert left.ike_sas() == [] and right.ike_sas() == []


def test_no_common_proposal_is_no_proposal_chosen() -> None:
    left, right = engines(
        {"proposals": "aes128-sha256-modp2048"}, {"proposals": "aes256gcm16-prfsha384-ecp384"}
    )
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    failed = of_type(left.take_events(), ev.NegotiationFailed)
    assert failed and failed[0].notify == NotifyType.NO_PROPOSAL_CHOSEN


def test_invalid_ke_payload_retry_with_requested_group() -> None:
    left, right = engines(
        {"proposals": "aes256gcm16-prfsha256-x25519-ecp256"},
        {"proposals": "aes256gcm16-prfsha256-ecp256"},
    )
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right)
    notifies = [n.notify_type for d in crossed for n in decode_message(strip(d)).notifies()]
    assert NotifyType.INVALID_KE_PAYLOAD in notifies
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_cookie_demanded_past_threshold() -> None:
    left, right = engines(settings=EngineSettings(cookie_threshold=1))
    other = ("192.0.2.1", 501)  # a half-open SA from another port reaches the threshold
    right.receive(request_template("aes256gcm16-prfsha256-x25519"), RIGHT, other, 0.0)
    right.take_datagrams()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right)
    first_reply = decode_message(strip(crossed[1]))
    assert first_reply.notifies()[0].notify_type == NotifyType.COOKIE
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_forced_encapsulation_moves_to_4500() -> None:
    left, right = engines({"encap": "yes"})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    seen_ports = []
    for _ in range(10):
        for src, dst in ((left, right), (right, left)):
            for d in src.take_datagrams():
                seen_ports.append(d.remote[1])
                local = (d.remote[0], d.remote[1])
                dst.receive(strip(d.data), local, d.local, 0.0)
    (l_child,) = of_type(left.take_events(), ev.ChildSaUp)
    (r_child,) = of_type(right.take_events(), ev.ChildSaUp)
    assert l_child.encap and r_child.encap
    assert seen_ports[0] == 500 and seen_ports[-1] == 4500


def test_delete_and_liveness() -> None:
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    left.take_events()
    right.take_events()
    (sa,) = left.ike_sas()
    assert left.terminate(sa.ike_id, 1.0)
    pump(left, right, now=1.0)
    assert of_type(right.take_events(), ev.ChildSaDown)
    assert of_type(left.take_events(), ev.IkeSaDown)
    assert left.ike_sas() == [] and right.ike_sas() == []


def test_retransmission_then_duplicate_answered_from_cache() -> None:
    left, right = engines(settings=EngineSettings(retransmit_timeout=1.0))
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    # Deliver IKE_SA_INIT both ways, then lose the IKE_AUTH response once.
    dropped = []

    def lose_first_auth_response(d: ev.Datagram) -> bool:
        h = decode_message(strip(d.data)).header
        if h.exchange == ExchangeType.IKE_AUTH and h.is_response and not dropped:
            dropped.append(d)
            return True
        return False

    pump(left, right, drop=lose_first_auth_response)
    assert dropped and not of_type(left.take_events(), ev.ChildSaUp)
    deadline = left.next_timer()
    assert deadline is not None and deadline == pytest.approx(1.0)
    left.handle_timer(deadline)
    pump(left, right, now=deadline)
    assert of_type(left.take_events(), ev.ChildSaUp)
    assert len(of_type(right.take_events(), ev.ChildSaUp)) == 1  # no second Child SA
    # charon's message counters: each message once, the retransmitted request and the
    # response answered from the cache not again
    assert left.messages.total == {
        "ike-init-out-req": 1,
        "ike-init-in-resp": 1,
        "ike-auth-out-req": 1,
        "ike-auth-in-resp": 1,
    }
    assert right.messages.total == {
        "ike-init-in-req": 1,
        "ike-init-out-resp": 1,
        "ike-auth-in-req": 1,
        "ike-auth-out-resp": 1,
    }
    assert left.messages.by_conn["c"]["ike-auth-out-req"] == 1


def test_give_up_after_retransmissions() -> None:
    left, _right = engines(settings=EngineSettings(retransmit_timeout=1.0, retransmit_tries=2))
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    now = 0.0
    sends = 0
    while (deadline := left.next_timer()) is not None:
        sends += len(left.take_datagrams())
        now = deadline
        left.handle_timer(now)
    assert sends == 3  # the request and two retransmits
    assert of_type(left.take_events(), ev.IkeSaDown)


def test_tampered_and_unknown_messages_are_dropped_and_counted() -> None:
    left, right = engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    (sa,) = right.ike_sas()
    # garbage, a truncated message, and a forged INFORMATIONAL with the right SPIs
    right.receive(b"\x00" * 3, RIGHT, LEFT, 1.0)
    right.receive(b"\xff" * 40, RIGHT, LEFT, 1.0)
    bogus = SkCipher(sa.sk_in.encr, bytes(sa.sk_in.encr.key_size), None, b"")  # type: ignore[union-attr]
    forged = build_protected(
        IkeHeader(sa.spi_i, sa.spi_r, 0, ExchangeType.INFORMATIONAL, 2, FLAG_INITIATOR),
        [Notify(NotifyType.INITIAL_CONTACT)],
        bogus,
    )
    right.receive(forged, RIGHT, LEFT, 1.0)
    assert right.drops.counts["integrity check failed"] == 1
    assert sum(right.drops.counts.values()) >= 3
    assert right.ike_sas()[0].state.label == "ESTABLISHED"


# ---------------------------------------------------------------------- lifecycle (issue 4)


def installed(engine: IkeEngine) -> set[tuple[int, int]]:
    """(inbound SPI, outbound SPI) of every Child SA the engine holds."""
    return {(c.spi_in, c.spi_out) for _sa, c in engine.child_sas()}


def paired(left: IkeEngine, right: IkeEngine) -> bool:
    return installed(left) == {(o, i) for i, o in installed(right)}


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes256gcm16-x25519", "aes128-sha256-modp2048"])
@pytest.mark.parametrize("by_left", [True, False])
def test_child_rekey_make_before_break(esp: str, by_left: bool) -> None:
    left, right, _, _ = established(left_kw={"esp": esp}, right_kw={"esp": esp})
    (old_l,) = installed(left)
    initiator = left if by_left else right
    sa, child = initiator.child_sas()[0]
    assert initiator.rekey_child(sa.ike_id, child.child_id, 1.0)
    pump(left, right, now=1.0)
    l_events, r_events = left.take_events(), right.take_events()
    for events in (l_events, r_events):
        (up,) = of_type(events, ev.ChildSaUp)
        (down,) = of_type(events, ev.ChildSaDown)
        assert down.linger > 0  # old inbound keeps receiving a while
        assert down.hold == 0
        assert events.index(up) < events.index(down)  # new SA installed before the old goes
        (rekeyed,) = of_type(events, ev.ChildSaRekeyed)  # reported just before the old goes
        assert (rekeyed.old_child_id, rekeyed.new_child_id) == (down.child_id, up.child_id)
        assert events.index(rekeyed) == events.index(down) - 1
    # The responder of the rekey sends on the new SA only once the old one is deleted.
    resp_events = r_events if by_left else l_events
    (resp_up,) = of_type(resp_events, ev.ChildSaUp)
    assert not resp_up.outbound_active
    assert of_type(resp_events, ev.ChildSaActivated)
    assert len(installed(left)) == 1 and paired(left, right)
    assert installed(left) != {old_l}
    (l_up,) = of_type(l_events, ev.ChildSaUp)
    (r_up,) = of_type(r_events, ev.ChildSaUp)
    assert l_up.outbound.encr_key == r_up.inbound.encr_key
    assert l_up.inbound.encr_key == r_up.outbound.encr_key


@pytest.mark.parametrize("repeat", range(8))
def test_simultaneous_child_rekey_converges_to_one_pair(repeat: int) -> None:
    left, right, _, _ = established()
    l_sa, l_child = left.child_sas()[0]
    r_sa, r_child = right.child_sas()[0]
    assert left.rekey_child(l_sa.ike_id, l_child.child_id, 1.0)
    assert right.rekey_child(r_sa.ike_id, r_child.child_id, 1.0)
    cross(left, right, 1.0)
    pump(left, right, now=1.0)
    assert len(installed(left)) == 1, installed(left)
    assert paired(left, right)
    assert installed(left) != {(l_child.spi_in, l_child.spi_out)}


@pytest.mark.parametrize("by_left", [True, False])
def test_ike_rekey_moves_children_and_keeps_working(by_left: bool) -> None:
    left, right, _, _ = established()
    (old_l,) = left.ike_sas()
    child_spis = installed(left)
    initiator = left if by_left else right
    assert initiator.rekey_ike(initiator.ike_sas()[0].ike_id, 1.0)
    pump(left, right, now=1.0)
    (new_l,) = left.ike_sas()
    (new_r,) = right.ike_sas()
    assert (new_l.spi_i, new_l.spi_r) == (new_r.spi_i, new_r.spi_r)
    assert (new_l.spi_i, new_l.spi_r) != (old_l.spi_i, old_l.spi_r)
    assert new_l.keys.sk_d != old_l.keys.sk_d  # type: ignore[union-attr]
    assert installed(left) == child_spis and paired(left, right)
    for events in (left.take_events(), right.take_events()):
        assert of_type(events, ev.IkeSaRekeyed)
        assert not of_type(events, ev.ChildSaDown) and not of_type(events, ev.IkeSaDown)
    # The new IKE SA carries exchanges: a child rekey on it works.
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 2.0)
    pump(left, right, now=2.0)
    assert len(installed(left)) == 1 and paired(left, right)


@pytest.mark.parametrize("peer_answers", [True, False])
def test_lost_response_to_delete_of_rekeyed_ike_sa(peer_answers: bool) -> None:
    """The peer deletes the old IKE SA on our Delete; when its response is lost the peer no
    longer knows the SPIs (§2.21). Petrel answers a retransmit with INVALID_IKE_SPI, which ends
    the deletion at once; strongSwan stays silent, and the retransmissions give up. Either way
    only the superseded SA goes: no dpd_action, no new initiation, the new IKE SA and the
    moved Child SA untouched."""
    settings = EngineSettings(retransmit_timeout=1.0, retransmit_tries=2)
    restart = "aes256gcm16\n        dpd_action = restart\n        close_action = start"
    left, right = engines(left_kw={"esp": restart}, settings=settings)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    left.take_events()
    child_spis = installed(left)
    assert left.rekey_ike(left.ike_sas()[0].ike_id, 1.0)

    def delete_response(dgram) -> bool:
        header = strip(dgram.data)
        return (
            dgram.local[0] == RIGHT[0]
            and header[18] == ExchangeType.INFORMATIONAL
            and bool(header[19] & 0x20)
        )

    pump(left, right, now=1.0, drop=delete_response)
    assert len(right.ike_sas()) == 1
    assert sorted(sa.state.label for sa in left.ike_sas()) == ["DELETING", "ESTABLISHED"]
    now, sends = 1.0, 0
    while len(left.ike_sas()) > 1:
        deadline = left.next_timer()
        assert deadline is not None and deadline < 20
        now = deadline
        left.handle_timer(now)
        for dgram in left.take_datagrams():
            sends += 1
            right.receive(strip(dgram.data), dgram.remote, dgram.local, now)
        for answer in right.take_datagrams():
            assert decode_message(strip(answer.data)).notifies()[0].notify_type == (
                NotifyType.INVALID_IKE_SPI
            )
            if peer_answers:
                left.receive(strip(answer.data), answer.remote, answer.local, now)
    assert sends == (1 if peer_answers else 2)  # the first retransmit, or all of them
    (new_l,), (new_r,) = left.ike_sas(), right.ike_sas()
    assert (new_l.spi_i, new_l.spi_r) == (new_r.spi_i, new_r.spi_r)
    assert installed(left) == child_spis and paired(left, right)
    events = left.take_events()
    assert not of_type(events, ev.IkeSaDown) and not of_type(events, ev.ChildSaDown)
    left.handle_timer(now + 5.0)
    assert not left.take_datagrams()  # no restart was started


def test_invalid_ike_spi_does_not_end_an_ike_sa_in_use() -> None:
    """An unauthenticated INVALID_IKE_SPI answering anything but our Delete is dropped."""
    left, _right, _, _ = established()
    (sa,) = left.ike_sas()
    assert left.rekey_child(sa.ike_id, left.child_sas()[0][1].child_id, 1.0)
    (request,) = left.take_datagrams()
    header = decode_message(strip(request.data)).header
    forged = build_plain(
        IkeHeader(
            header.spi_i,
            header.spi_r,
            0,
            ExchangeType.INFORMATIONAL,
            header.message_id,
            FLAG_RESPONSE,
        ),
        [Notify(NotifyType.INVALID_IKE_SPI)],
    )
    left.receive(forged, LEFT, RIGHT, 1.0)
    assert left.drops.counts["response without an SK payload"] == 1
    assert left.ike_sas()[0].state.label == "ESTABLISHED" and left.ike_sas()[0].outstanding


@pytest.mark.parametrize("repeat", range(6))
def test_simultaneous_ike_rekey_converges(repeat: int) -> None:
    left, right, _, _ = established()
    child_spis = installed(left)
    assert left.rekey_ike(left.ike_sas()[0].ike_id, 1.0)
    assert right.rekey_ike(right.ike_sas()[0].ike_id, 1.0)
    cross(left, right, 1.0)
    pump(left, right, now=1.0)
    assert len(left.ike_sas()) == 1 and len(right.ike_sas()) == 1
    (l_sa,), (r_sa,) = left.ike_sas(), right.ike_sas()
    assert (l_sa.spi_i, l_sa.spi_r) == (r_sa.spi_i, r_sa.spi_r)
    assert installed(left) == child_spis and paired(left, right)


def test_extra_child_sa_with_create_child_sa() -> None:
    left, right, _, _ = established()
    (sa,) = left.ike_sas()
    assert left.create_child(sa.ike_id, "net", 1.0)
    pump(left, right, now=1.0)
    assert len(installed(left)) == 2 and paired(left, right)
    assert of_type(right.take_events(), ev.ChildSaUp)[0].outbound_active


def test_peer_deletes_child_and_close_action_none() -> None:
    left, right, _, _ = established()
    sa, child = left.child_sas()[0]
    assert left.delete_child(sa.ike_id, child.child_id, 1.0)
    pump(left, right, now=1.0)
    assert installed(left) == set() and installed(right) == set()
    assert left.ike_sas() and right.ike_sas()
    # The side that deleted it lets it go; the other holds its traffic a while (a peer that
    # deletes an expired SA re-creates it at once), and a rekey never asks for a hold.
    (ours,) = of_type(left.take_events(), ev.ChildSaDown)
    (theirs,) = of_type(right.take_events(), ev.ChildSaDown)
    assert ours.hold == 0 and theirs.hold > 0 and theirs.reason == "deleted by peer"


def test_dpd_detects_dead_peer_within_delay_plus_timeout() -> None:
    extra = "dpd_delay = 5s\n    dpd_timeout = 10s"
    left, right = engines(
        left_kw={"encap": f"no\n    {extra}"}, right_kw={"encap": f"no\n    {extra}"}
    )
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    left.take_events()
    # The peer dies: nothing reaches it any more.
    now = 0.0
    while (deadline := left.next_timer()) is not None and deadline < 60:
        now = deadline
        left.handle_timer(now)
        left.take_datagrams()
        if of_type(left.take_events(), ev.IkeSaDown):
            break
    assert 5 + 10 - 0.5 <= now <= 5 + 10 + 0.5
    assert left.ike_sas() == []


def test_dpd_answered_keeps_sa() -> None:
    extra = "dpd_delay = 5s"
    left, right = engines(left_kw={"encap": f"no\n    {extra}"})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    for step in range(1, 6):
        now = step * 5.0 + 0.01
        left.handle_timer(now)
        pump(left, right, now=now)
    assert left.ike_sas() and right.ike_sas()
    assert not of_type(left.take_events(), ev.IkeSaDown)


def test_lifetime_timers_trigger_rekey() -> None:
    child = "rekey_time = 20s\n        rand_time = 0s"
    left, right = engines(left_kw={"esp": f"aes256gcm16\n        {child}"})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    first = installed(left)
    assert left.next_timer() == pytest.approx(20.0)
    left.handle_timer(20.0)
    pump(left, right, now=20.0)
    assert installed(left) != first and len(installed(left)) == 1 and paired(left, right)


def test_large_ike_auth_goes_fragmented_both_ways() -> None:
    many = ",".join(f"198.51.100.{i}/32" for i in range(1, 120))
    far = ",".join(f"203.0.113.{i}/32" for i in range(1, 120))
    settings = EngineSettings(fragment_size=576)
    left_cfg = parse_swanctl(conf("192.0.2.1", "192.0.2.2", "left", "right", many, far))
    right_cfg = parse_swanctl(conf("192.0.2.2", "192.0.2.1", "right", "left", far, many))
    left = IkeEngine(left_cfg.connections, left_cfg.secrets, settings)
    right = IkeEngine(right_cfg.connections, right_cfg.secrets, settings)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right)
    assert all(len(d) <= 576 - 28 for d in crossed)
    fragments = [d for d in crossed if decode_message(strip(d)).header.next_payload == 53]
    assert len(fragments) > 6
    directions = {decode_message(strip(d)).header.is_response for d in fragments}
    assert directions == {False, True}
    (child,) = of_type(left.take_events(), ev.ChildSaUp)
    assert len(child.local_ts) == 119


def test_fragmented_request_retransmission_answered_from_cache() -> None:
    many = ",".join(f"198.51.100.{i}/32" for i in range(1, 60))
    settings = EngineSettings(fragment_size=576, retransmit_timeout=1.0)
    left_cfg = parse_swanctl(conf("192.0.2.1", "192.0.2.2", "left", "right", many, "0.0.0.0/0"))
    right_cfg = parse_swanctl(conf("192.0.2.2", "192.0.2.1", "right", "left", "0.0.0.0/0", many))
    left = IkeEngine(left_cfg.connections, left_cfg.secrets, settings)
    right = IkeEngine(right_cfg.connections, right_cfg.secrets, settings)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    lost: list[ev.Datagram] = []

    def lose_auth_response(d: ev.Datagram) -> bool:
        h = decode_message(strip(d.data)).header
        if h.exchange == ExchangeType.IKE_AUTH and h.is_response and len(lost) < 1:
            lost.append(d)
            return True
        return False

    pump(left, right, drop=lose_auth_response)
    assert lost and not of_type(left.take_events(), ev.ChildSaUp)
    left.handle_timer(1.0)
    pump(left, right, now=1.0)
    assert of_type(left.take_events(), ev.ChildSaUp)
    assert len(of_type(right.take_events(), ev.ChildSaUp)) == 1


def test_reauthentication_is_make_before_break() -> None:
    left, right = engines(left_kw={"encap": "no\n    reauth_time = 30s\n    rand_time = 0s"})
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    left.take_events()
    right.take_events()
    (old,) = left.ike_sas()
    assert left.next_timer() == pytest.approx(30.0)
    left.handle_timer(30.0)
    pump(left, right, now=30.0)
    (new,) = left.ike_sas()
    assert new.ike_id != old.ike_id and (new.spi_i, new.spi_r) != (old.spi_i, old.spi_r)
    events = left.take_events()
    (up,) = of_type(events, ev.ChildSaUp)
    (down,) = of_type(events, ev.ChildSaDown)
    assert events.index(up) < events.index(down)  # the new Child SA before the old one goes
    assert len(installed(left)) == 1 and paired(left, right)
    assert len(right.ike_sas()) == 1


def test_keyingtries_retries_with_backoff() -> None:
    left, _right = engines(
        left_kw={"encap": "no\n    keyingtries = 3"},
        settings=EngineSettings(retransmit_timeout=1.0, retransmit_tries=0),
    )
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    starts = []
    now = 0.0
    while (deadline := left.next_timer()) is not None and deadline < 100:
        for d in left.take_datagrams():
            if decode_message(strip(d.data)).header.exchange == ExchangeType.IKE_SA_INIT:
                starts.append(now)
        now = deadline
        left.handle_timer(now)
    starts += [now] * len(left.take_datagrams())
    assert len(starts) == 3, starts  # keyingtries = 3 attempts in all
    assert starts[2] - starts[1] > starts[1] - starts[0]  # back-off grows
    assert left.ike_sas() == []


# ---------------------------------------------------------------------- hostile input


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ESTABLISHED: list[tuple[IkeEngine, IkeEngine, list[bytes]]] = []


def _established_pair() -> tuple[IkeEngine, IkeEngine, list[bytes]]:
    if not _ESTABLISHED:
        left, right = engines()
        left.initiate("c", "net", LEFT, RIGHT, 0.0)
        crossed = pump(left, right)
        _ESTABLISHED.append((left, right, [strip(d) for d in crossed]))
    return _ESTABLISHED[0]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_datagrams_never_raise_nor_disturb(data: st.DataObject) -> None:
    left, right, seen = _established_pair()
    base = data.draw(st.sampled_from(seen))
    mutated = bytearray(base)
    for _ in range(data.draw(st.integers(0, 6))):
        if not mutated:
            break
        i = data.draw(st.integers(0, len(mutated) - 1))
        mutated[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        mutated = mutated[: data.draw(st.integers(0, len(mutated)))]
    garbage = data.draw(st.binary(max_size=200))
    for engine, local, remote in ((right, RIGHT, LEFT), (left, LEFT, RIGHT)):
        engine.receive(bytes(mutated), local, remote, 1.0)
        engine.receive(garbage, local, remote, 1.0)
        engine.take_datagrams()
        engine.take_events()
        # A mutated IKE_SA_INIT request may open a new half-open SA: that is a new peer as
        # far as anyone can tell.  The established SA and its Child SA stay as they were.
        (sa,) = [s for s in engine.ike_sas() if s.state.label == "ESTABLISHED"]
        assert [c.child_id for c in sa.children.values()] == [1]


def test_level_2_traces_every_message_by_payload_type(caplog: pytest.LogCaptureFixture) -> None:
    """charon-style "sending/received <exchange> <request|response> <id> [ payloads ]" lines
    at level 2 (DEBUG), payload types only; nothing of the kind at the default level."""
    caplog.set_level(logging.INFO, logger="petrel.ike")
    established()
    assert "IKE_SA_INIT request" not in caplog.text
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="petrel.ike")
    established()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(
        line.startswith("IKE SA 1: sending IKE_SA_INIT request 0 [ SA KE No N(NAT_DETECTION")
        for line in lines
    ), lines
    mobike = "N(MOBIKE_SUPPORTED)"
    assert any(
        "received IKE_AUTH request 1 [ IDi" in line and f"AUTH SA TSi TSr {mobike} ]" in line
        for line in lines
    ), lines
    assert any(f"received IKE_AUTH response 1 [ IDr AUTH {mobike} SA TSi TSr" in x for x in lines)


def _with_second_child(text: str, local_ts: str, remote_ts: str) -> str:
    second = (
        f"    children {{\n      net2 {{\n        local_ts = {local_ts}\n"
        f"        remote_ts = {remote_ts}\n        esp_proposals = aes256gcm16\n      }}\n"
    )
    return text.replace("    children {\n", second, 1)


def test_children_asked_for_while_connecting_follow_ike_auth() -> None:
    """A second child initiated before the IKE SA is up queues a CREATE_CHILD_SA task behind
    IKE_AUTH (once, however often it is asked for) and comes up right after it."""
    lt, rt = "198.51.100.2/32", "203.0.113.2/32"
    left_text = _with_second_child(
        conf("192.0.2.1", "192.0.2.2", "left", "right", "198.51.100.1/32", "203.0.113.1/32"),
        lt,
        rt,
    )
    right_text = _with_second_child(
        conf("192.0.2.2", "192.0.2.1", "right", "left", "203.0.113.1/32", "198.51.100.1/32"),
        rt,
        lt,
    )
    left_cfg, right_cfg = parse_swanctl(left_text), parse_swanctl(right_text)
    left = IkeEngine(left_cfg.connections, left_cfg.secrets)
    right = IkeEngine(right_cfg.connections, right_cfg.secrets)
    ike_id = left.initiate("c", "net", LEFT, RIGHT, 0.0)
    assert left.initiate("c", "net2", LEFT, RIGHT, 0.0) == ike_id
    assert left.initiate("c", "net2", LEFT, RIGHT, 0.0) == ike_id
    assert left.initiate("c", "net", LEFT, RIGHT, 0.0) == ike_id
    wire = pump(left, right)
    names = sorted(child.config.name for _, child in left.child_sas())
    assert names == ["net", "net2"] and paired(left, right)
    exchanges = [decode_message(strip(d)).header.exchange for d in wire]
    assert exchanges.count(ExchangeType.CREATE_CHILD_SA) == 2  # request and response
