"""MOBIKE (RFC 4555) with Petrel as the responder: a strongSwan 5.9.8 client changes address.

The client (charon, ``mobike = yes`` as by default) brings the tunnel up from 192.0.2.1; then
its namespace gains 192.0.2.3 and loses 192.0.2.1.  charon notices, sends UPDATE_SA_ADDRESSES
from the new address, and Petrel moves the IKE SA and the Child SA there: the same Child SA
carries pings again (charon rekeys it: its kernel-libipsec cannot move an
installed SA), and what charon parsed shows MOBIKE agreed in IKE_AUTH and
Petrel's NAT detection answer to the update.
"""

from __future__ import annotations

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, wait_for
from petrel.lab.pairs import logs, petrel_sas, start_pair

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

NEW_ADDRESS = "192.0.2.3"


def remote_host(petrel: PetrelPeer) -> str:
    (sa,) = petrel_sas(petrel)
    return str(sa["remote-host"])


def pings(lab: Lab) -> int:
    return lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4)


def test_client_moves_to_a_new_address() -> None:
    with Lab() as lab:
        swan, petrel = start_pair(lab, "strongswan->petrel")
        assert isinstance(swan, StrongSwan) and isinstance(petrel, PetrelPeer)
        assert swan.initiate("net"), logs(swan, petrel)
        assert pings(lab) == 3, logs(swan, petrel)
        (before,) = petrel_sas(petrel)
        (auth,) = swan.parsed("IKE_AUTH", "response")
        assert "N(MOBIKE_SUP)" in auth.split(), auth

        host = lab.left
        # Keep the new (secondary) address when the primary one goes.
        lab.sysctl(host.ns, f"net.ipv4.conf.{host.ifname}.promote_secondaries", "1")
        run_in(host.ns, ["ip", "addr", "add", f"{NEW_ADDRESS}/24", "dev", host.ifname])
        run_in(host.ns, ["ip", "addr", "del", f"{host.outer4}/24", "dev", host.ifname])

        assert wait_for(lambda: remote_host(petrel) == NEW_ADDRESS, 30), logs(swan, petrel)
        updates = [p for p in swan.parsed("INFORMATIONAL", "response") if "NATD_S_IP" in p]
        assert updates, logs(swan, petrel)
        # The same IKE SA, moved (charon then rekeys its Child SA: kernel-libipsec cannot move
        # an installed SA, so charon falls back to a rekey from the new address).
        (after,) = petrel_sas(petrel)
        assert after["initiator-spi"] == before["initiator-spi"], logs(swan, petrel)
        assert wait_for(lambda: pings(lab) == 3, 10), logs(swan, petrel)
        assert "peer updated its address to 192.0.2.3:4500 (MOBIKE)" in petrel.log_text()
