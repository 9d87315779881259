"""The lab itself, proven with strongSwan <-> strongSwan (kernel-libipsec) between two namespaces.

This is the template for Petrel interop tests: build a Lab, start the two peers, bring the Child
SA up, then check traffic crosses the tunnel and only ciphertext crosses the wire.
"""

from __future__ import annotations

import dpkt
import pytest

from petrel.lab import Lab, StrongSwan
from petrel.lab.pairs import start_pair

MARKER = b"PETREL-PLAINTEXT-MARKER-7f3a"
ND_MLD = {130, 131, 132, 133, 134, 135, 136, 143}  # ICMPv6 MLD and neighbour discovery


def _start_pair(lab: Lab) -> tuple[StrongSwan, StrongSwan]:
    left, right = start_pair(lab, "strongswan->strongswan")
    assert isinstance(left, StrongSwan) and isinstance(right, StrongSwan)
    assert left.initiate("net"), left.log_text()[-4000:]
    return left, right


def _outer_packets(frames: list[bytes]) -> list[dpkt.ip.IP | dpkt.ip6.IP6]:
    """IP packets of the capture, minus ARP and IPv6 neighbour discovery / MLD."""
    out = []
    for frame in frames:
        ip = dpkt.ethernet.Ethernet(frame).data
        icmp6 = isinstance(ip, dpkt.ip6.IP6) and isinstance(ip.data, dpkt.icmp6.ICMP6)
        if icmp6 and ip.data.type in ND_MLD:
            continue
        if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
            out.append(ip)
        else:
            assert isinstance(ip, dpkt.arp.ARP), f"unexpected frame {frame.hex()}"
    return out


@pytest.mark.e2e
@pytest.mark.interop
def test_strongswan_pair_tunnel(lab: Lab) -> None:
    left, right = _start_pair(lab)
    sas = left.list_sas()
    assert "INSTALLED" in sas and "AES_GCM_16-256" in sas, sas
    assert "ESTABLISHED" in right.list_sas()

    cap = lab.capture(lab.left.ns, lab.left.ifname, "outer")
    L, R = lab.left, lab.right
    assert lab.ping(L.ns, L.inner4, R.inner4, count=3, payload=MARKER) == 3
    assert lab.tcp_transfer(L.ns, R.ns, L.inner4, R.inner4, 10 * 1024 * 1024, marker=MARKER)
    cap.stop()

    packets = _outer_packets(cap.frames())
    assert len(packets) > 1000  # 10 MiB crossed this interface
    ports = set()
    for ip in packets:
        assert isinstance(ip.data, dpkt.udp.UDP), f"non-UDP outer packet: {ip!r}"
        ports.add((ip.data.sport, ip.data.dport))
        assert ip.data.sport in (500, 4500) and ip.data.dport in (500, 4500)
    assert (4500, 4500) in ports  # kernel-libipsec forces UDP encapsulation
    assert MARKER not in cap.raw()
    # And the inner traffic is really routed through the tunnel: no SA, no connectivity.
    right.stop()
    left.stop()
    assert lab.ping(L.ns, L.inner4, R.inner4, count=1, wait=0.5) == 0


@pytest.mark.e2e
@pytest.mark.interop
def test_strongswan_pair_through_nat_and_loss(nat_lab: Lab) -> None:
    lab = nat_lab
    L, R = lab.left, lab.right
    # The plain lab first: L reaches R only through the router, masqueraded.
    assert lab.ping(L.ns, L.outer4, R.outer4, count=2) == 2
    assert lab.ping(L.ns, L.outer6, R.outer6, count=2) == 2
    _start_pair(lab)
    cap = lab.capture(R.ns, R.ifname, "behind-nat", "udp")
    assert lab.ping(L.ns, L.inner4, R.inner4, count=3) == 3
    assert lab.tcp_transfer(L.ns, R.ns, L.inner4, R.inner4, 256 * 1024)
    cap.stop()
    sources = {bytes(dpkt.ethernet.Ethernet(f).data.src) for f in cap.frames()}
    assert sources <= {bytes([192, 0, 2, 129]), bytes([192, 0, 2, 130])}  # L is hidden
    # Loss in the router: all dropped at 100 %, none once removed.
    lab.set_loss(100)
    assert lab.ping(L.ns, L.inner4, R.inner4, count=2, wait=0.3) == 0
    lab.set_loss(0)
    assert lab.ping(L.ns, L.inner4, R.inner4, count=2) == 2
