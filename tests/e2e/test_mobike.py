"""MOBIKE (RFC 4555) with Petrel as the responder: a strongSwan 5.9.8 client changes address.

The client (charon, ``mobike = yes`` as by default) brings the tunnel up from 192.0.2.1; then
its namespace gains 192.0.2.3 and loses 192.0.2.1.  charon notices, sends UPDATE_SA_ADDRESSES
from the new address, and Petrel moves the IKE SA and the Child SA there: the same Child SA
carries pings again (charon rekeys it: its kernel-libipsec cannot move an
installed SA), and what charon parsed shows MOBIKE agreed in IKE_AUTH and
Petrel's NAT detection answer to the update.  MOBIKE is agreed once per IKE SA lineage, so
the move works as well after either side has rekeyed the IKE SA.
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


def ike_spis(petrel: PetrelPeer) -> list[tuple[object, object]]:
    return [(sa["initiator-spi"], sa["responder-spi"]) for sa in petrel_sas(petrel)]


@pytest.mark.parametrize("rekeyed_by", [None, "strongswan", "petrel"])
def test_client_moves_to_a_new_address(rekeyed_by: str | None) -> None:
    with Lab() as lab:
        swan, petrel = start_pair(lab, "strongswan->petrel")
        assert isinstance(swan, StrongSwan) and isinstance(petrel, PetrelPeer)
        assert swan.initiate("net"), logs(swan, petrel)
        assert pings(lab) == 3, logs(swan, petrel)
        (auth,) = swan.parsed("IKE_AUTH", "response")
        assert "N(MOBIKE_SUP)" in auth.split(), auth
        if rekeyed_by is not None:
            first = ike_spis(petrel)
            if rekeyed_by == "strongswan":
                swan.swanctl("--rekey", "--ike", "c")
            else:
                assert petrel.cli("rekey", "--ike", "c").returncode == 0
            rekeyed = lambda: len(spis := ike_spis(petrel)) == 1 and spis != first  # noqa: E731
            assert wait_for(rekeyed, 15), logs(swan, petrel)
        (before,) = petrel_sas(petrel)

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
