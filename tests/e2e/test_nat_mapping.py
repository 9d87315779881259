"""A NAT that forgets its mappings (reboot, timeout) and maps the hidden host anew on another
port: the SAs must follow it without being torn down (RFC 7296 §2.23, RFC 3948 §2.3)."""

from __future__ import annotations

import time

import pytest

from petrel.lab import Lab, PetrelPeer, run_in
from petrel.lab.pairs import logs, petrel_sas, start_pair

pytestmark = [pytest.mark.e2e, pytest.mark.interop]
KEEPALIVE = 20.0  # Petrel's and strongSwan's NAT keepalive interval
RETRANSMIT = 4.0  # first IKE retransmission


def remap_nat(lab: Lab) -> None:
    """New mappings from another port range, then forget every existing one."""
    assert lab.router is not None
    lab.nft(
        lab.router,
        "flush chain ip nat post\n"
        'add rule ip nat post oifname "nR" meta l4proto udp masquerade to :30000-39999\n'
        'add rule ip nat post oifname "nR" masquerade\n',
    )
    run_in(lab.router, ["conntrack", "-F"], check=False)


def outage(lab: Lab, seconds: float) -> float | None:
    """Ping L→R once every 0.5 s until replies come back; the time that took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=1, wait=0.5) == 1:
            return time.monotonic() - start
    return None


@pytest.mark.parametrize("pair", ["strongswan->petrel", "petrel->strongswan"])
def test_sa_follows_a_new_nat_mapping(nat_lab: Lab, pair: str) -> None:
    """strongSwan behind the NAT (Petrel follows its authentic ESP at once), and Petrel behind
    the NAT (MOBIKE is agreed, so strongSwan does not follow IKE messages by themselves:
    Petrel's liveness check carries NAT detection, shows the new mapping, and Petrel sends
    UPDATE_SA_ADDRESSES, RFC 4555 §3.8)."""
    lab = nat_lab
    l_extra = ["dpd_delay = 10s"] if pair.startswith("petrel") else []
    left, right = start_pair(lab, pair, l_extra=l_extra)
    assert left.initiate("net"), logs(left, right)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    petrel = right if isinstance(right, PetrelPeer) else left
    assert isinstance(petrel, PetrelPeer)
    (before,) = petrel_sas(petrel)

    remap_nat(lab)
    took = outage(lab, KEEPALIVE + RETRANSMIT + 6)
    assert took is not None, logs(left, right)
    assert took <= KEEPALIVE + RETRANSMIT, took
    # The same IKE SA carries on, with one Child SA (charon on kernel-libipsec cannot move an
    # SA to a new port, so when it is the one to follow it rekeys the Child SA instead).
    (after,) = petrel_sas(petrel)
    assert after["initiator-spi"] == before["initiator-spi"]
    assert len(after["child-sas"]) == 1
    if petrel is right:
        assert list(after["child-sas"]) == list(before["child-sas"])  # followed, not rekeyed
        assert after["remote-port"] != before["remote-port"]
        assert 30000 <= int(after["remote-port"]) <= 39999
    assert lab.ping(lab.right.ns, lab.right.inner4, lab.left.inner4, count=2) == 2
    if petrel is left:
        assert "our NAT mapping changed, updating the peer (MOBIKE)" in petrel.log_text()
