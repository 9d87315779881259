"""Fail closed (issue 7.5, 7.6): a Child SA negotiated while Petrel starts is installed before
it is used, and a route of the host's own never carries protected traffic around the tunnel.

Petrel routes protected prefixes through its TUN device in its own table (220) behind a
policy rule that Petrel's own IKE/ESP packets skip (``not fwmark``), as strongSwan does with
kernel-libipsec; a plain route in the main table to the same prefix cannot shadow it.
"""

from __future__ import annotations

import json
import subprocess

import dpkt
import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, strongswan_pair_confs, wait_for
from petrel.lab.pairs import child_spis, logs, petrel_sas, start_pair

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


def shadow_routes(lab: Lab, fam: str) -> None:
    """Plain routes to the other side's inner address over the veth: without IPsec, pings
    between the inner addresses then flow in clear, and are answered."""
    for me, other in ((lab.left, lab.right), (lab.right, lab.left)):
        inner, outer = getattr(other, f"inner{fam}"), getattr(other, f"outer{fam}")
        run_in(me.ns, ["ip", f"-{fam}", "route", "add", inner, "via", outer])


def esp_drops(petrel: PetrelPeer) -> dict[str, str]:
    return json.loads(petrel.cli("stats").stdout)["drops"]["esp"]


@pytest.mark.parametrize(
    ("pair", "fam"),
    [
        ("strongswan->petrel", "4"),
        ("petrel->strongswan", "4"),
        ("petrel->petrel", "4"),
        ("petrel->petrel", "6"),
    ],
)
def test_shadowing_route_never_carries_protected_traffic(lab: Lab, pair: str, fam: str) -> None:
    shadow_routes(lab, fam)
    l_in, r_in = getattr(lab.left, f"inner{fam}"), getattr(lab.right, f"inner{fam}")
    # The shadow is real: with no daemon running, the pings cross in clear and are answered.
    clear = lab.capture(lab.left.ns, lab.left.ifname, "clear", "icmp or icmp6")
    assert lab.ping(lab.left.ns, l_in, r_in, count=2) == 2
    clear.stop()
    assert sum(b"petrel-ping" in frame for frame in clear.frames()) == 4
    left, right = start_pair(lab, pair, v6=fam == "6")
    assert left.initiate("net"), logs(left, right)
    cap = lab.capture(lab.left.ns, lab.left.ifname, "tunnel", "")
    assert lab.ping(lab.left.ns, l_in, r_in, count=5) == 5
    assert lab.ping(lab.right.ns, r_in, l_in, count=5) == 5
    cap.stop()
    protocols = set()
    for frame in cap.frames():
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip, dpkt.ip.IP):
            protocols.add(ip.p)
        elif isinstance(ip, dpkt.ip6.IP6):
            protocols.add(ip.nxt)
    # Nothing in clear either way: only IKE and ESP (raw, or in UDP); IPv6 neighbour
    # discovery (ICMPv6 on the outer link) is no echo, so echo requests are looked for too.
    assert dpkt.ip.IP_PROTO_ICMP not in protocols, protocols
    assert protocols - {dpkt.ip.IP_PROTO_ICMP6} <= {dpkt.ip.IP_PROTO_UDP, 50}, protocols
    assert not any(b"petrel-ping" in frame for frame in cap.frames())
    for peer in (left, right):
        if isinstance(peer, PetrelPeer):
            table = run_in(peer.ns, ["ip", f"-{fam}", "route", "show", "table", "220"]).stdout
            assert "dev petrel" in table, table
            (sa,) = petrel_sas(peer)
            (child,) = sa["child-sas"].values()
            assert child["state"] == "INSTALLED" and int(child["packets-out"]) >= 5


def test_peer_initiating_the_instant_petrel_listens_gets_a_working_tunnel(lab: Lab) -> None:
    """strongSwan retransmits its IKE_SA_INIT every 0.2 s while Petrel is not yet running,
    so the exchange starts with the first datagram Petrel reads; the Child SA it negotiates
    must be in the data plane before the peer can use it (no "ESP for an unknown SPI")."""
    l_conf, r_conf = strongswan_pair_confs(lab)
    fast = "  retransmit_timeout = 0.2\n  retransmit_base = 1.0\n  retransmit_tries = 100"
    swan = StrongSwan(lab, lab.left.ns, "left", l_conf, fast).start()
    swan.load()
    initiating = subprocess.Popen(
        ["swanctl", "--initiate", "--child", "net", "--uri", f"unix://{swan.vici}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lab.procs.append(initiating)  # type: ignore[arg-type]
    assert wait_for(lambda: "sending packet" in swan.log_text(), 10)
    petrel = PetrelPeer(lab, lab.right.ns, "right", r_conf).start()
    out, _ = initiating.communicate(timeout=60)
    assert initiating.returncode == 0, out + logs(swan, petrel)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=3) == 3
    assert lab.ping(lab.right.ns, lab.right.inner4, lab.left.inner4, count=3) == 3
    assert "ESP-for-an-unknown-SPI" not in esp_drops(petrel), logs(swan, petrel)
    (sa,) = petrel_sas(petrel)
    (child,) = sa["child-sas"].values()
    assert child["state"] == "INSTALLED"
    log = petrel.log_text()
    assert log.index("data plane on") < log.index("listening on") < log.index("established")
    assert len(child_spis(petrel)) == 1
