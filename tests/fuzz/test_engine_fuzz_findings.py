"""Regression tests for Petrel bugs the engine fuzz target found in its virtual-IP worlds
(fixed; see fuzz/README.md "Crashes found, known bugs").

They use the engine target's worlds (fuzz/engine_scenarios*.py): the engines of a scenario,
restored, and the scenario's message with one payload changed, sealed with the receiving IKE
SA's keys as its peer would seal it.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))

from engine_scenarios import Scenario, deliver, scenarios

from petrel.ike import events as ev
from petrel.ike.protect import build_protected
from petrel.wire.payloads import TrafficSelector, TSi
from petrel.wire.registry import TsType


def _scenario(name: str) -> Scenario:
    return next(s for s in scenarios() if s.name == name)


def _v4(first: str, last: str) -> TrafficSelector:
    start, end = (ipaddress.ip_address(a).packed for a in (first, last))
    return TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, start, end)


@pytest.mark.parametrize(
    ("first", "last"),
    [("0.0.0.0", "255.255.255.255"), ("8.3.0.1", "10.3.0.1"), ("8.8.8.8", "8.8.8.8")],
)
def test_vip_client_child_sa_stays_within_its_virtual_ip(first: str, last: str) -> None:
    """RFC 7296 §2.19 with swanctl ``vips``: the client proposes TSi 0.0.0.0/0 while its
    address is unknown; once the gateway's CFG_REPLY assigns 10.3.0.1, its "dynamic" local
    selector means 10.3.0.1 (``IkeSa.local_ts_address``), so a TSi beyond it in the same
    IKE_AUTH response must be narrowed to it or refused (charon narrows the answer with its
    own configuration), not installed: the Child SA would claim traffic of other addresses."""
    scenario = _scenario("vip/auth-response")
    assert scenario.cipher is not None
    client = scenario.receiver.restore()
    edited = [TSi((_v4(first, last),)) if isinstance(p, TSi) else p for p in scenario.payloads]
    data = build_protected(scenario.header, edited, scenario.cipher)
    client.receive(data, scenario.local, scenario.remote, scenario.now)
    ups = [e for e in client.take_events() if isinstance(e, ev.ChildSaUp)]
    assert [str(s) for e in ups for s in e.local_ts] in ([], ["10.3.0.1/32"] * len(ups))


def test_ike_rekey_collision_keeps_the_virtual_ip() -> None:
    """The gateway answers the client's IKE SA rekey (the lease moves to the new SA), the
    answer is lost, and the gateway rekeys the old IKE SA too (it is still up until the
    client's Delete): the client, its own rekey outstanding, takes that as a collision, and so
    does the gateway when the answer comes (§2.8.1), its rekey losing.  The surviving IKE SA
    must still hold the client's virtual IP: ``settle_ike_rekey`` moves the old SA's (empty)
    virtual IPs over the winner's, so the lease, still counted, is never released, and the
    winner's "dynamic" selectors no longer mean the virtual IP."""
    scenario = _scenario("vip/rekey-ike-request")
    gateway, client = scenario.receiver.restore(), scenario.sender.restore()
    client.take_datagrams()
    for datagram in scenario.raw:
        gateway.receive(datagram, scenario.local, scenario.remote, scenario.now)
    gateway.take_datagrams()  # the answer is lost
    (old,) = [sa for sa in gateway.ike_sas() if sa.name == "c" and sa.rekeyed_to is not None]
    gateway.rekey_ike(old.ike_id, scenario.now)  # (refusing it would be a fix too)
    for src, dst in ((gateway, client), (client, gateway)):  # collision both ways
        deliver(dst, src.take_datagrams(), scenario.now)
    alive = [sa for sa in gateway.ike_sas() if sa.name == "c" and sa.rekeyed_to is None]
    assert [sa.remote_vips for sa in alive if sa.state.name == "ESTABLISHED"] == [
        (("p", "10.3.0.1"),)
    ]
    assert gateway.pools["p"].online == {"left": (0, 1)}
