"""NAT traversal end to end (RFC 7296 §2.23, RFC 3948): L sits behind a masquerading router.

In ``nat_lab`` the router N hides L (192.0.2.1) behind its public address 192.0.2.129; R is
192.0.2.130. No side is told to force encapsulation: the NAT must be found from the
NAT_DETECTION_* notifies, IKE must move to UDP 4500 after IKE_SA_INIT, and ESP must travel in
UDP 4500 through the NAT. A capture on R's outer interface proves that nothing else crosses it.
"""

from __future__ import annotations

import socket
import time

import dpkt
import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, wait_for
from petrel.lab.pairs import logs, petrel_sas, start_pair

MARKER = b"PETREL-NAT-CLEARTEXT-MARKER-7c1"
ROUTER_PUBLIC = "192.0.2.129"
TRANSFER = 5 * 1024 * 1024
NAT_T_PORT = 4500
IKE_SA_INIT = 34
# petrel/daemon.py NAT_KEEPALIVE_INTERVAL is 20 s; allow for start-up and scheduling.
KEEPALIVE_WAIT = 25
ND_MLD = {130, 131, 132, 133, 134, 135, 136, 143}


def udp_packets(frames: list[bytes]) -> list[dpkt.ip.IP]:
    """IPv4 packets of a capture (ARP, IPv6 ND/MLD left out); anything else fails the test."""
    out = []
    for frame in frames:
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip, dpkt.arp.ARP):
            continue
        if isinstance(ip, dpkt.ip6.IP6):
            assert isinstance(ip.data, dpkt.icmp6.ICMP6) and ip.data.type in ND_MLD, repr(ip)
            continue
        assert isinstance(ip, dpkt.ip.IP), repr(ip)
        out.append(ip)
    return out


def addr(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, raw)


def check_outer_capture(packets: list[dpkt.ip.IP], public: str, right: str) -> None:
    """Only UDP 500/4500 between ``public`` and ``right``; IKE_SA_INIT alone on port 500,
    every later IKE message and all ESP on 4500 (RFC 7296 §2.23, RFC 3948 §2.1)."""
    assert len(packets) > 1000
    esp = ike4500 = 0
    for ip in packets:
        assert {addr(ip.src), addr(ip.dst)} == {public, right}, f"{addr(ip.src)}>{addr(ip.dst)}"
        assert isinstance(ip.data, dpkt.udp.UDP), f"not UDP: proto {ip.p}"
        udp = ip.data
        assert udp.sport in (500, NAT_T_PORT) and udp.dport in (500, NAT_T_PORT), (
            udp.sport,
            udp.dport,
        )
        payload = bytes(udp.data)
        if udp.sport == 500 or udp.dport == 500:
            assert (udp.sport, udp.dport) == (500, 500)
            assert len(payload) >= 28 and payload[18] == IKE_SA_INIT, payload[:28].hex()
        elif payload == b"\xff":
            continue  # NAT keepalive
        elif payload[:4] == b"\0\0\0\0":
            assert payload[4 + 18] != IKE_SA_INIT
            ike4500 += 1
        else:
            esp += 1
    assert ike4500 >= 2 and esp > 1000, (ike4500, esp)


def check_traffic(lab: Lab) -> None:
    L, R = lab.left, lab.right
    assert lab.ping(L.ns, L.inner4, R.inner4, count=3, payload=MARKER) == 3
    assert lab.ping(R.ns, R.inner4, L.inner4, count=3, payload=MARKER) == 3
    assert lab.tcp_transfer(L.ns, R.ns, L.inner4, R.inner4, TRANSFER, marker=MARKER)


def check_petrel_sa(peer: PetrelPeer, *, behind_nat: bool, remote: str, swan_peer: bool) -> None:
    """Petrel's view of the SA. A strongSwan peer on kernel-libipsec always sends a NAT_DETECTION_
    SOURCE_IP that cannot match (it can only install UDP-encapsulated SAs), so Petrel rightly
    sees that peer as behind a NAT too, wherever it is."""
    (sa,) = petrel_sas(peer)
    assert sa["state"] == "ESTABLISHED"
    assert sa["nat-local"] == ("yes" if behind_nat else "no"), sa
    assert sa["nat-remote"] == ("yes" if swan_peer or not behind_nat else "no"), sa
    assert sa["nat-fake"] == "no", sa
    assert (sa["local-port"], sa["remote-port"]) == (str(NAT_T_PORT), str(NAT_T_PORT)), sa
    assert sa["remote-host"] == remote, sa
    (child,) = sa["child-sas"].values()
    assert child["state"] == "INSTALLED" and child["encap"] == "yes", child
    packets_in, packets_out = int(child["packets-in"]), int(child["packets-out"])
    assert packets_in > 100 and packets_out > 100 and packets_in + packets_out > 3000, child


def check_swan_sa(swan: StrongSwan, *, behind_nat: bool, remote: str) -> None:
    text = swan.list_sas()
    assert text.count("ESTABLISHED") == 1 and text.count("INSTALLED") == 1, text
    assert f"@ {remote}[{NAT_T_PORT}]" in text and "TUNNEL-in-UDP" in text, text
    raw = swan.swanctl("--list-sas", "--raw").stdout
    assert ("nat-local=yes" if behind_nat else "nat-remote=yes") in raw, raw


@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel", "petrel->petrel"])
def test_tunnel_through_nat(nat_lab: Lab, pair: str) -> None:
    lab = nat_lab
    R = lab.right
    assert lab.left_public4 == ROUTER_PUBLIC
    left, right = start_pair(lab, pair)
    cap = lab.capture(R.ns, R.ifname, "outer-r")
    assert left.initiate("net"), logs(left, right)
    check_traffic(lab)
    cap.stop()

    check_outer_capture(udp_packets(cap.frames()), ROUTER_PUBLIC, R.outer4)
    assert MARKER not in cap.raw()
    swan_l, swan_r = isinstance(left, StrongSwan), isinstance(right, StrongSwan)
    if isinstance(left, PetrelPeer):
        check_petrel_sa(left, behind_nat=True, remote=R.outer4, swan_peer=swan_r)
    else:
        check_swan_sa(left, behind_nat=True, remote=R.outer4)
    if isinstance(right, PetrelPeer):
        check_petrel_sa(right, behind_nat=False, remote=ROUTER_PUBLIC, swan_peer=swan_l)
    else:
        check_swan_sa(right, behind_nat=False, remote=ROUTER_PUBLIC)


@pytest.mark.e2e
@pytest.mark.interop
def test_petrel_behind_nat_sends_keepalives(nat_lab: Lab) -> None:
    """RFC 3948 §2.3, §4: the peer behind the NAT sends one-octet 0xFF datagrams on 4500."""
    lab = nat_lab
    L, R = lab.left, lab.right
    assert lab.router is not None
    inside = lab.capture(lab.router, "nL", "inside", f"udp and src host {L.outer4}")
    outside = lab.capture(R.ns, R.ifname, "outside", f"udp and src host {ROUTER_PUBLIC}")
    started = time.monotonic()
    left, right = start_pair(lab, "petrel->strongswan")
    assert left.initiate("net"), logs(left, right)
    assert lab.ping(L.ns, L.inner4, R.inner4, count=1) == 1

    def keepalives(cap: object) -> list[dpkt.ip.IP]:
        return [
            ip
            for ip in udp_packets(cap.frames())  # type: ignore[attr-defined]
            if bytes(ip.data.data) == b"\xff"
        ]

    # Nothing carries traffic from now on: the keepalive alone keeps the mapping alive.
    remaining = KEEPALIVE_WAIT - (time.monotonic() - started)
    assert wait_for(lambda: keepalives(inside), remaining, interval=0.5), logs(left)
    inside.stop()
    (first, *_) = keepalives(inside)
    assert addr(first.dst) == R.outer4
    assert (first.data.sport, first.data.dport) == (NAT_T_PORT, NAT_T_PORT)
    # ... and it crossed the NAT, from the same public 4500 mapping the SA uses.
    assert wait_for(lambda: keepalives(outside), 2, interval=0.2)
    outside.stop()
    (seen, *_) = keepalives(outside)
    assert addr(seen.dst) == R.outer4 and seen.data.sport == NAT_T_PORT
    assert "ESTABLISHED" in right.list_sas()  # type: ignore[union-attr]
