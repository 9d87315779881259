"""CRL fetching during IKE_AUTH (RFC 5280 §4.2.1.13; strongSwan's revocation plugin): two
engines in memory whose end-entity certificates name a CRL distribution point. The engine
that verifies parks its IKE_AUTH, asks its host once per URI (``FetchCrl``), ignores the
peer's retransmissions meanwhile, and resumes on ``crl_fetched``; ``revocation`` decides
with what was fetched, as charon does (strict: a good CRL; ifuri: a good CRL when the
certificate names a distribution point; relaxed: anything but revoked)."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))

from crypto_pki_helpers import NOW, Node, leaf, root
from test_ike_engine import LEFT, RIGHT, installed, of_type, pump
from test_ike_pubkey_auth import MOON, SUN, install, side

from petrel.config.swanctl import parse_swanctl
from petrel.crypto.pki_ops import CertSpec, Revoke, pem, sign_crl
from petrel.crypto.x509 import Crl, load_crl
from petrel.ike import events as ev
from petrel.ike.engine import EngineSettings, IkeEngine

CDP = "http://192.0.2.80/ca.crl"
DROP_PARKED = "retransmitted request awaiting a CRL fetch"


def with_cdp(ca: Node, dn: str, san: str, uris: tuple[str, ...] = (CDP,)) -> Node:
    return leaf(ca, dn=dn, spec=CertSpec(sans=(san,), crl_uris=uris))


def pair(
    tmp: Path,
    ca: Node,
    moon: Node,
    sun: Node,
    right_revocation: str = "relaxed",
    left_revocation: str = "relaxed",
    fetch: bool = True,
    settings: EngineSettings | None = None,
) -> tuple[IkeEngine, IkeEngine]:
    """left (moon) initiates to right (sun); each checks the other with ``*_revocation``."""
    install(tmp / "left", moon, ca)
    install(tmp / "right", sun, ca)
    texts = (
        side(
            tmp / "left", "192.0.2.1", "192.0.2.2",
            f"      auth = pubkey\n      id = {MOON}",
            f"      auth = pubkey\n      id = {SUN}\n      revocation = {left_revocation}",
            ("198.51.100.1/32", "203.0.113.1/32"),
        ),
        side(
            tmp / "right", "192.0.2.2", "192.0.2.1",
            f"      auth = pubkey\n      id = {SUN}",
            f"      auth = pubkey\n      id = {MOON}\n      revocation = {right_revocation}",
            ("203.0.113.1/32", "198.51.100.1/32"),
        ),
    )  # fmt: skip
    made = []
    for name, text in zip(("left", "right"), texts, strict=True):
        config = parse_swanctl(text, base_dir=str(tmp / name))
        made.append(
            IkeEngine(
                config.connections,
                config.secrets,
                settings or EngineSettings(fetch_crls=fetch),
                credentials=config.credentials,
                clock=lambda: NOW,
            )
        )
    return made[0], made[1]


def crl(ca: Node, revoked: tuple[Node, ...] = (), age: timedelta = timedelta(hours=1)) -> bytes:
    """A CRL of ``ca`` issued ``age`` ago, valid 15 days, in PEM."""
    entries = [Revoke(n.cert.serial) for n in revoked]
    return pem(sign_crl(ca.cert, ca.key, entries, now=NOW - age))


def fetches(events: list) -> list[str]:
    return [e.uri for e in of_type(events, ev.FetchCrl)]


def up(engine: IkeEngine, events: list) -> bool:
    return bool(of_type(events, ev.IkeSaUp)) and len(installed(engine)) == 1


def test_responder_parks_ignores_retransmissions_and_resumes(tmp_path: Path) -> None:
    ca = root()
    left, right = pair(tmp_path, ca, with_cdp(ca, MOON, "moon.petrel.test"), leaf(ca, dn=SUN))
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    r_events = right.take_events()
    assert fetches(r_events) == [CDP]
    assert not of_type(left.take_events(), ev.IkeSaUp)  # no IKE_AUTH response yet
    # The initiator retransmits its IKE_AUTH request: dropped, not processed, no new fetch.
    deadline = left.next_timer()
    assert deadline is not None
    left.handle_timer(deadline)
    pump(left, right, now=deadline)
    assert fetches(right.take_events()) == []
    assert right.drops.counts[DROP_PARKED] == 1
    right.crl_fetched(CDP, crl(ca), deadline + 0.5)
    pump(left, right, now=deadline + 0.5)
    assert up(left, left.take_events()) and up(right, right.take_events())
    # The fetched CRL is cached: the next IKE SA needs no fetch while it is current.
    assert left.terminate(left.ike_sas()[0].ike_id, 9.0)
    pump(left, right, now=9.0)
    assert left.ike_sas() == [] and right.ike_sas() == []
    left.take_events(), right.take_events()
    left.initiate("c", "net", LEFT, RIGHT, 10.0)
    pump(left, right, now=10.0)
    assert fetches(right.take_events()) == []
    assert of_type(left.take_events(), ev.IkeSaUp)


def test_revoked_by_fetched_crl(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "petrel")
    ca = root()
    moon = with_cdp(ca, MOON, "moon.petrel.test")
    left, right = pair(tmp_path, ca, moon, leaf(ca, dn=SUN))
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(right.take_events()) == [CDP]
    right.crl_fetched(CDP, crl(ca, (moon,)), 1.0)
    pump(left, right, now=1.0)
    failed = of_type(left.take_events(), ev.NegotiationFailed)
    assert any(int(f.notify) == 24 for f in failed)  # AUTHENTICATION_FAILED received
    assert installed(left) == set() == installed(right)
    assert "revoked" in caplog.text and "fetched CRL of 'C=CH, O=Petrel, CN=Petrel Root" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("revocation", "accepted"), [("strict", False), ("ifuri", False), ("relaxed", True)]
)
def test_failed_fetch_with_each_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, revocation: str, accepted: bool
) -> None:
    """A distribution point exists but the fetch fails: charon's VALIDATION_FAILED, which
    only ``relaxed`` accepts."""
    ca = root()
    left, right = pair(
        tmp_path, ca, with_cdp(ca, MOON, "moon.petrel.test"), leaf(ca, dn=SUN), revocation
    )
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(right.take_events()) == [CDP]
    right.crl_fetched(CDP, None, 10.0, "connection refused")
    pump(left, right, now=10.0)
    assert up(left, left.take_events()) is accepted
    assert f"CRL fetching from '{CDP}' failed: connection refused" in caplog.text
    if not accepted:
        assert "revocation status unknown" in caplog.text and f"revocation = {revocation}" in (
            caplog.text
        )


@pytest.mark.parametrize(
    ("revocation", "accepted"), [("strict", False), ("ifuri", True), ("relaxed", True)]
)
def test_no_distribution_point(tmp_path: Path, revocation: str, accepted: bool) -> None:
    """No CRL and no distribution point: charon's VALIDATION_SKIPPED, nothing to fetch;
    ``strict`` refuses it, ``ifuri`` and ``relaxed`` accept it."""
    ca = root()
    left, right = pair(tmp_path, ca, leaf(ca, dn=MOON), leaf(ca, dn=SUN), revocation)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(right.take_events()) == []
    assert up(left, left.take_events()) is accepted


def test_stale_crl_is_fetched_again(tmp_path: Path) -> None:
    """A CRL past its nextUpdate is stale: fetched again; a fresh answer makes it good."""
    ca = root()
    left, right = pair(
        tmp_path, ca, with_cdp(ca, MOON, "moon.petrel.test"), leaf(ca, dn=SUN), "strict"
    )
    right.auth.store.add_fetched_crl(CDP, _crl_obj(crl(ca, age=timedelta(days=30))))
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(right.take_events()) == [CDP]
    right.crl_fetched(CDP, crl(ca), 1.0)
    pump(left, right, now=1.0)
    assert up(left, left.take_events())


def test_stale_crl_and_failed_fetch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Stale CRL, fetch fails: charon's VALIDATION_STALE — refused by ``ifuri``."""
    ca = root()
    left, right = pair(
        tmp_path, ca, with_cdp(ca, MOON, "moon.petrel.test"), leaf(ca, dn=SUN), "ifuri"
    )
    right.auth.store.add_fetched_crl(CDP, _crl_obj(crl(ca, age=timedelta(days=30))))
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    right.crl_fetched(CDP, None, 1.0, "timeout")
    pump(left, right, now=1.0)
    assert not of_type(left.take_events(), ev.IkeSaUp)
    assert "CRL stale, revocation = ifuri" in caplog.text


def test_initiator_parks_and_resumes(tmp_path: Path) -> None:
    """The initiator checks the responder's certificate: it parks the IKE_AUTH response,
    sends nothing meanwhile, then completes the exchange with the Child SA."""
    ca = root()
    sun = with_cdp(ca, SUN, "sun.petrel.test")
    left, right = pair(tmp_path, ca, leaf(ca, dn=MOON), sun, left_revocation="strict")
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(left.take_events()) == [CDP]
    assert left.take_datagrams() == []  # nothing is sent while the response is parked
    left.crl_fetched(CDP, crl(ca), 1.0)
    pump(left, right, now=1.0)
    assert up(left, left.take_events())


@pytest.mark.parametrize(("revocation", "accepted"), [("strict", False), ("relaxed", True)])
def test_host_that_never_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, revocation: str, accepted: bool
) -> None:
    """No answer within ``crl_wait_timeout``: the pending fetches count as failed."""
    ca = root()
    settings = EngineSettings(fetch_crls=True, crl_wait_timeout=5.0)
    left, right = pair(
        tmp_path, ca, leaf(ca, dn=MOON), with_cdp(ca, SUN, "sun.petrel.test"),
        left_revocation=revocation, settings=settings,
    )  # fmt: skip
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(left.take_events()) == [CDP]
    assert left.next_timer() == 5.0
    left.handle_timer(5.0)
    pump(left, right, now=5.0)
    assert up(left, left.take_events()) is accepted
    assert f"no answer for CRL fetches from '{CDP}' in time" in caplog.text
    left.crl_fetched(CDP, crl(ca), 6.0)  # a late answer is still cached, resumes nothing
    assert CDP in left.auth.store.fetched_crls


def test_fetching_disabled_keeps_the_old_behaviour(tmp_path: Path) -> None:
    """A host that does not fetch (the default): no FetchCrl, the policy decides at once."""
    ca = root()
    left, right = pair(
        tmp_path, ca, with_cdp(ca, MOON, "moon.petrel.test"), leaf(ca, dn=SUN), "relaxed",
        fetch=False,
    )  # fmt: skip
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(right.take_events()) == []
    assert up(left, left.take_events())


def test_fetches_in_flight_are_bounded(tmp_path: Path) -> None:
    """Past ``max_crl_fetches`` URIs in flight, a URI is not fetched: a failed fetch."""
    ca = root()
    uris = tuple(f"http://192.0.2.80/{i}.crl" for i in range(3))
    left, right = pair(
        tmp_path, ca, with_cdp(ca, MOON, "moon.petrel.test", uris), leaf(ca, dn=SUN),
        settings=EngineSettings(fetch_crls=True, max_crl_fetches=2),
    )  # fmt: skip
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert fetches(right.take_events()) == list(uris[:2])
    assert right.drops.counts["CRL fetch refused: too many in flight"] == 1
    right.crl_fetched(uris[0], None, 1.0, "refused")
    right.crl_fetched(uris[0], None, 1.0, "answered twice")  # ignored
    pump(left, right, now=1.0)
    assert not of_type(left.take_events(), ev.IkeSaUp)  # still waits for the second
    right.crl_fetched(uris[1], crl(ca), 1.5)
    pump(left, right, now=1.5)
    assert up(left, left.take_events())


def _crl_obj(data: bytes) -> Crl:
    return load_crl(data)
