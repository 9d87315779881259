"""Rekeys driven by strongSwan while Petrel's traffic flows (issue 7.4).

strongSwan rekeys the Child SA on its own timers (every 8 s, no jitter) and the IKE SA every
28 s; Petrel rekeys its Child SA only every 20 s and never the IKE SA.  Outbound traffic must
always find an SA (RFC 7296 §2.8 make-before-break on the responder): every ping from
Petrel's side answered, no ``outbound_no_policy`` drop — whichever side set the SAs up, and
when strongSwan's IKE SA rekey overlaps its Child SA rekey.

One trap in the scenario as first reported: strongSwan 5.9.8 derives a Child SA's default
``life_time`` as 110 % of ``rekey_time`` in whole seconds, so ``rekey_time = 8s`` gives a
life time of 8 s too: the SA hard-expires instead of being rekeyed, and charon deletes it and
creates a new one (``closing expired CHILD_SA`` … ``scheduling CHILD_SA recreate after hard
expire``), dropping its own traffic in between — strongSwan↔strongSwan loses pings there as
well.  The rekey tests give strongSwan an explicit ``life_time``; the last test pins what
Petrel does when the peer deletes and re-creates: it holds its traffic for the new SA.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, wait_for
from petrel.lab.pairs import child_spis, logs, petrel_sas, start_pair
from petrel.lab.traffic import flood_ping, loss_report

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

PINGS = 4500  # 45 s at 100/s: five Child SA rekeys by strongSwan, one IKE SA rekey
SWAN_REKEYS = ["rekey_time = 8s", "rand_time = 0s", "life_time = 12s"]


def start_driven_by_strongswan(
    lab: Lab, pair: str, swan_child: list[str], swan_ike: list[str] = ()
) -> tuple[PetrelPeer, StrongSwan]:
    """``pair`` as in lab.pairs; Petrel rekeys its Child SA every 20 s, never its IKE SA."""
    petrel_child = ["rekey_time = 20s", "rand_time = 0s"]
    if pair.startswith("petrel"):
        petrel_child.append("start_action = start")
    sides = {
        "petrel": {"extra": ["rekey_time = 0s"], "child": petrel_child},
        "strongswan": {"extra": list(swan_ike), "child": swan_child},
    }
    l_kind, r_kind = pair.split("->")
    left, right = start_pair(
        lab,
        pair,
        l_extra=sides[l_kind]["extra"],
        r_extra=sides[r_kind]["extra"],
        l_child_extra=sides[l_kind]["child"],
        r_child_extra=sides[r_kind]["child"],
    )
    petrel = left if isinstance(left, PetrelPeer) else right
    swan = right if isinstance(right, StrongSwan) else left
    assert isinstance(petrel, PetrelPeer) and isinstance(swan, StrongSwan)
    if pair.startswith("strongswan"):
        assert swan.initiate("net"), logs(petrel, swan)
    assert wait_for(lambda: len(child_spis(petrel)) == 1, 20), logs(petrel, swan)
    return petrel, swan


def drops(petrel: PetrelPeer) -> dict[str, int]:
    counts = json.loads(petrel.cli("stats").stdout)["drops"]["esp"]
    return {reason: int(n) for reason, n in counts.items()}


def ping_from_petrel(lab: Lab, petrel: PetrelPeer, count: int) -> tuple[int, int, list[str]]:
    me, other = (lab.left, lab.right) if petrel.ns == lab.left.ns else (lab.right, lab.left)
    return flood_ping(me.ns, me.inner4, other.inner4, count)


def assert_nothing_lost(lab: Lab, petrel: PetrelPeer, swan: StrongSwan, pinged) -> None:  # type: ignore[no-untyped-def]
    sent, received, missing = pinged
    report = loss_report(lab, petrel, swan, missing)
    assert sent > 0 and received == sent, report
    dropped = drops(petrel)
    assert dropped.get("outbound_no_policy", 0) == 0, report
    assert dropped.get("outbound_hold_expired", 0) == 0, report
    assert len(child_spis(petrel)) == 1, logs(petrel, swan)
    (sa,) = (s for s in petrel_sas(petrel) if s["state"] == "ESTABLISHED")
    assert len(sa["child-sas"]) == 1


@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
def test_child_rekeys_on_strongswan_timers_lose_nothing(lab: Lab, pair: str) -> None:
    """The field scenario: Child SA rekeys every 8 s and an IKE SA rekey at 28 s, all by
    strongSwan, 4,500 pings from Petrel's side.  The IKE SA rekey sits midway between two
    Child SA rekeys: charon 5.9.8 loses a Child SA rekey that its own IKE SA rekey lands on
    (``CHILD_SA … not found for rekey``), lets that SA hard-expire and drops traffic in its
    own gap (seen in CI with 25 s, one second after the rekey at 24 s); the overlap itself is
    the next test's subject."""
    petrel, swan = start_driven_by_strongswan(lab, pair, SWAN_REKEYS, ["rekey_time = 28s"])
    assert_nothing_lost(lab, petrel, swan, ping_from_petrel(lab, petrel, PINGS))
    log = petrel.log_text()
    assert log.count("peer rekeys net") >= 4, log[-4000:]
    assert "rekeyed as" in log, log[-4000:]  # strongSwan's IKE SA rekey happened too
    assert "closing expired" not in swan.log_text()  # rekeyed, never expired


def test_ike_rekey_queued_during_child_rekey_loses_nothing(lab: Lab) -> None:
    """strongSwan starts an IKE SA rekey while its Child SA rekey is under way (queued right
    behind it, so it runs between the CREATE_CHILD_SA and the old SA's Delete or just after),
    and once while Petrel rekeys the Child SA itself: the Child SAs move to the new IKE SA
    mid-rekey and traffic never lacks an SA."""
    petrel, swan = start_driven_by_strongswan(lab, "petrel->strongswan", ["rekey_time = 0s"])
    result: list[tuple[int, int, list[str]]] = []
    pinger = threading.Thread(target=lambda: result.append(ping_from_petrel(lab, petrel, 3000)))
    pinger.start()
    for round_ in range(5):
        time.sleep(4)
        if round_ == 4:  # Petrel's Child SA rekey against strongSwan's IKE SA rekey
            assert petrel.cli("rekey", "--child", "net").returncode == 0
        else:
            swan.swanctl("--rekey", "--child", "net", check=False)
        swan.swanctl("--rekey", "--ike", "c", check=False)
    pinger.join(timeout=120)
    assert_nothing_lost(lab, petrel, swan, result[0])
    log = petrel.log_text()
    assert log.count("peer rekeys net") >= 4, log[-4000:]
    assert log.count("rekeyed as") >= 5, log[-4000:]
    assert "rekeying net" in log, log[-4000:]


def test_peer_recreating_an_expired_child_sa_gets_our_traffic_held(lab: Lab) -> None:
    """The scenario exactly as first reported (``rekey_time = 8s``, ``rand_time = 0s``, no
    ``life_time``): charon deletes the expired Child SA and creates a new one.  Petrel holds
    what it sends in between and delivers it on the new SA: its data plane drops nothing at
    all (no ``outbound_no_policy``, nothing expired in the hold, no unknown SPI), and nothing
    leaves unprotected.  What charon itself drops in its own gap (ESP that reaches it after it
    removed the SA, its replies while it has none) Petrel cannot prevent: strongSwan↔strongSwan
    loses 4-9 of 4,500 pings the same way, sometimes several in a row (measured 2026-12-01)."""
    petrel, swan = start_driven_by_strongswan(
        lab, "petrel->strongswan", ["rekey_time = 8s", "rand_time = 0s"], ["rekey_time = 25s"]
    )
    cap = lab.capture(lab.left.ns, lab.left.ifname, "recreate", "icmp")
    # 40 s of pings: charon's 8 s expiries, less the ones Petrel's own 20 s rekey pre-empts
    # (its new SA restarts charon's timer), still come three times or more under CI load.
    sent, received, missing = ping_from_petrel(lab, petrel, 4000)
    cap.stop()
    recreations = len(re.findall(r"closing expired CHILD_SA", swan.log_text()))
    assert recreations >= 3, swan.log_text()[-3000:]
    report = loss_report(lab, petrel, swan, missing)
    assert drops(petrel) == {}, report
    assert received >= sent * 0.99, report  # the tunnel carried traffic throughout
    assert "deleted by peer" in petrel.log_text()
    assert cap.frames() == []  # only ESP in UDP 4500 crossed the wire, never the pings
    assert len(child_spis(petrel)) == 1, logs(petrel, swan)
