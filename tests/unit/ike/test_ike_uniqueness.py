"""Duplicate IKE SAs under strongSwan's ``unique`` policy, the responder deciding."""

from __future__ import annotations

import logging

import pytest
from ike_pair import LEFT, RIGHT, conf, engine_of, of_type, pump, rewrite, strip

from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine
from petrel.ike.sa import IkeState
from petrel.wire.payloads import Notify
from petrel.wire.registry import NotifyType


def gateway(policy: str) -> IkeEngine:
    text = conf(
        "192.0.2.2",
        "%any",
        "right",
        "left",
        "203.0.113.1/32",
        "0.0.0.0/0",
        extra=f"unique = {policy}",
    )
    return engine_of(text)


def client() -> IkeEngine:
    return engine_of(
        conf("192.0.2.1", "192.0.2.2", "left", "right", "198.51.100.1/32", "203.0.113.1/32")
    )


def connect(left: IkeEngine, right: IkeEngine, now: float, initial_contact: bool) -> None:
    """A client's IKE SA, its IKE_AUTH with or without INITIAL_CONTACT."""
    left.initiate("c", "net", LEFT, RIGHT, now)
    for src, dst in ((left, right), (right, left)):
        for d in src.take_datagrams():
            dst.receive(strip(d.data), d.remote, d.local, now)
    (left_sa,) = left.ike_sas()
    right_sa = next(sa for sa in right.ike_sas() if sa.established_at is None)
    (auth,) = [strip(d.data) for d in left.take_datagrams()]
    if not initial_contact:
        auth = rewrite(
            left_sa,
            right_sa,
            auth,
            lambda p: [
                x
                for x in p
                if not (isinstance(x, Notify) and x.notify_type == NotifyType.INITIAL_CONTACT)
            ],
        )
    right.receive(auth, RIGHT, LEFT, now)
    pump(right, left, now)


def established(engine: IkeEngine) -> list[int]:
    return [sa.ike_id for sa in engine.ike_sas() if sa.state is IkeState.ESTABLISHED]


@pytest.mark.parametrize(
    ("policy", "initial_contact", "kept"),
    [
        ("no", False, "both"),
        ("no", True, "new"),
        ("never", True, "both"),
        ("replace", False, "new"),
        ("replace", True, "new"),
        ("keep", False, "old"),
    ],
)
def test_unique_policy(
    policy: str, initial_contact: bool, kept: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="petrel.ike")
    right = gateway(policy)
    first, second = client(), client()  # two devices (or a rebooted one) with one identity
    connect(first, right, 0.0, initial_contact=True)
    (old,) = established(right)
    right.take_events()
    connect(second, right, 1.0, initial_contact)
    now_up = established(right)
    new = [i for i in now_up if i != old]
    expected = {"both": 2, "new": 1, "old": 1}[kept]
    assert len(now_up) == expected
    assert (old in now_up) is (kept in ("both", "old"))
    assert bool(new) is (kept in ("both", "new"))
    if kept == "old":
        assert not established(second)  # refused with AUTHENTICATION_FAILED
        failed = of_type(right.take_events(), ev.NegotiationFailed)
        assert [int(e.notify) for e in failed] == [int(NotifyType.AUTHENTICATION_FAILED)]
    if policy == "replace" and not initial_contact:  # deleted with a Delete, not dropped
        assert f"deleting duplicate IKE SA {old}" in caplog.text
