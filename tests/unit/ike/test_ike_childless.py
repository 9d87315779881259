"""Childless IKE SAs (RFC 6023) under strongSwan's ``childless`` policy, two engines in memory."""

from __future__ import annotations

import pytest
from ike_pair import LEFT, RIGHT, conf, engine_of, of_type, opened, pump, sent, strip

from petrel.config.errors import ConfigError
from petrel.config.swanctl import parse_swanctl
from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine
from petrel.ike.sa import IkeSa, IkeState
from petrel.wire.codec import decode_message
from petrel.wire.payloads import KE, SA, Notify, TSi, TSr
from petrel.wire.registry import ExchangeType, NotifyType


def _engine(me: str, peer: str, my_id: str, peer_id: str, policy: str, esp: str) -> IkeEngine:
    local_ts, remote_ts = (
        ("198.51.100.1/32", "203.0.113.1/32")
        if my_id == "left"
        else ("203.0.113.1/32", "198.51.100.1/32")
    )
    extra = f"childless = {policy}"
    text = conf(me, peer, my_id, peer_id, local_ts, remote_ts, esp=esp, extra=extra)
    return engine_of(text)


ENDS = ("192.0.2.1", "192.0.2.2", "left", "right", "0.0.0.0/0", "0.0.0.0/0")


def pair(
    left: str = "allow", right: str = "allow", esp: str = "aes256gcm16"
) -> tuple[IkeEngine, IkeEngine]:
    return (
        _engine("192.0.2.1", "192.0.2.2", "left", "right", left, esp),
        _engine("192.0.2.2", "192.0.2.1", "right", "left", right, esp),
    )


def _sa(engine: IkeEngine) -> IkeSa | None:
    sas = engine.ike_sas()
    return sas[0] if sas else None


def _init_round(left: IkeEngine, right: IkeEngine, child: str | None) -> list[bytes]:
    """IKE_SA_INIT both ways; returns what left sent next (its IKE_AUTH request, if any)."""
    left.initiate("c", child, LEFT, RIGHT, 0.0)
    for d in left.take_datagrams():
        right.receive(strip(d.data), d.remote, d.local, 0.0)
    response = right.take_datagrams()
    for d in response:
        left.receive(strip(d.data), d.remote, d.local, 0.0)
    return sent(left)


def _announces(engine_right: IkeEngine) -> bool:
    left, _ = pair()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    for d in left.take_datagrams():
        engine_right.receive(strip(d.data), d.remote, d.local, 0.0)
    (response,) = sent(engine_right)
    notifies = decode_message(response).notifies()
    return any(n.notify_type == NotifyType.CHILDLESS_IKEV2_SUPPORTED for n in notifies)


@pytest.mark.parametrize(
    ("policy", "announced"), [("allow", True), ("force", True), ("never", False)]
)
def test_rfc6023_3_responder_announces_support_unless_never(policy: str, announced: bool) -> None:
    _, right = pair(right=policy)
    assert _announces(right) is announced


def test_rfc6023_3_ike_only_initiation_then_child_by_create_child_sa() -> None:
    left, right = pair()
    (auth,) = _init_round(left, right, None)
    left_sa = _sa(left)
    assert left_sa is not None
    right_sa = _sa(right)
    assert right_sa is not None
    _, payloads = opened(right_sa, auth)
    assert not [p for p in payloads if isinstance(p, SA | TSi | TSr)]
    right.receive(auth, LEFT, RIGHT, 0.0)
    pump(left, right)
    assert left_sa.state is IkeState.ESTABLISHED and right_sa.state is IkeState.ESTABLISHED
    assert not left.child_sas() and not right.child_sas()
    left.initiate("c", "net", LEFT, RIGHT, 1.0)
    pump(left, right, 1.0)
    assert len(left.child_sas()) == len(right.child_sas()) == 1


@pytest.mark.parametrize("policy", ["force", "prefer"])
def test_rfc6023_force_and_prefer_create_the_first_child_with_its_own_key_exchange(
    policy: str,
) -> None:
    left, right = pair(left=policy, esp="aes256gcm16-x25519")
    (auth,) = _init_round(left, right, "net")
    right_sa = _sa(right)
    assert right_sa is not None
    _, payloads = opened(right_sa, auth)
    assert not [p for p in payloads if isinstance(p, SA | TSi | TSr)]
    right.receive(auth, LEFT, RIGHT, 0.0)
    (auth_response,) = sent(right)
    left.receive(auth_response, RIGHT, LEFT, 0.0)
    (create,) = sent(left)
    assert decode_message(create).header.exchange == ExchangeType.CREATE_CHILD_SA
    _, payloads = opened(right_sa, create)
    assert [p for p in payloads if isinstance(p, KE)]  # PFS: not IKE_AUTH's keys
    right.receive(create, LEFT, RIGHT, 0.0)
    pump(left, right)
    assert len(left.child_sas()) == len(right.child_sas()) == 1
    assert of_type(left.take_events(), ev.ChildSaUp)


def test_prefer_falls_back_to_a_regular_ike_auth_without_support() -> None:
    left, right = pair(left="prefer", right="never")
    (auth,) = _init_round(left, right, "net")
    right_sa = _sa(right)
    assert right_sa is not None
    _, payloads = opened(right_sa, auth)
    assert [p for p in payloads if isinstance(p, SA)]
    right.receive(auth, LEFT, RIGHT, 0.0)
    pump(left, right)
    assert len(left.child_sas()) == len(right.child_sas()) == 1


@pytest.mark.parametrize(("policy", "child"), [("force", "net"), ("allow", None)])
def test_initiator_aborts_when_the_peer_does_not_support_childless(
    policy: str, child: str | None
) -> None:
    left, right = pair(left=policy, right="never")
    assert _init_round(left, right, child) == []  # no IKE_AUTH request
    assert _sa(left) is None


def test_responder_force_refuses_a_child_sa_in_ike_auth() -> None:
    left, right = pair(left="allow", right="force")
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert _sa(left) is None and _sa(right) is None
    failed = of_type(left.take_events(), ev.NegotiationFailed)
    assert [int(e.notify) for e in failed] == [int(NotifyType.INVALID_SYNTAX)]


def test_responder_never_refuses_a_childless_ike_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """An initiator that sends a childless IKE_AUTH although we did not announce support."""
    monkeypatch.setattr("petrel.ike.ike_auth.plan_initiator", lambda sa, conn: (None, None))
    left, right = pair(right="never")
    (auth,) = _init_round(left, right, "net")
    right.receive(auth, LEFT, RIGHT, 0.0)
    (answer,) = sent(right)
    left_sa = _sa(left)
    assert left_sa is not None
    _, payloads = opened(left_sa, answer)
    assert [int(p.notify_type) for p in payloads if isinstance(p, Notify)] == [
        int(NotifyType.INVALID_SYNTAX)
    ]
    assert _sa(right) is None


@pytest.mark.parametrize("value", ["allow", "prefer", "force", "never"])
def test_childless_setting_is_read(value: str) -> None:
    text = conf(*ENDS, extra=f"childless = {value}")
    assert parse_swanctl(text).connections["c"].childless == value


def test_unknown_childless_value_is_refused() -> None:
    text = conf(*ENDS, extra="childless = sometimes")
    with pytest.raises(ConfigError, match="childless"):
        parse_swanctl(text)
