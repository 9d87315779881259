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


@pytest.mark.parametrize("gateway", ["strongswan", "petrel"])
def test_petrel_client_roams_and_the_gateway_follows(gateway: str) -> None:
    """Petrel the MOBIKE initiator: its namespace swaps 192.0.2.1 for 192.0.2.3, Petrel sees
    the change on rtnetlink, moves its SAs and sends UPDATE_SA_ADDRESSES; the gateway
    follows (charon rekeys its Child SA: kernel-libipsec cannot move one; Petrel moves it
    in place), and pings pass again."""
    with Lab() as lab:
        # Any local address (as a roaming client has): sockets on the wildcard address.
        client, server = start_pair(lab, f"petrel->{gateway}", l_extra=["local_addrs = %any"])
        assert isinstance(client, PetrelPeer)
        assert client.initiate("net"), logs(client, server)
        assert pings(lab) == 3, logs(client, server)
        (before,) = petrel_sas(client)
        assert before["local-port"] == "4500"  # RFC 4555 §3.3: floated, NAT or not
        if isinstance(server, StrongSwan):
            (auth,) = server.parsed("IKE_AUTH", "request")
            assert "N(MOBIKE_SUP)" in auth.split(), auth

        host = lab.left
        lab.sysctl(host.ns, f"net.ipv4.conf.{host.ifname}.promote_secondaries", "1")
        run_in(host.ns, ["ip", "addr", "add", f"{NEW_ADDRESS}/24", "dev", host.ifname])
        run_in(host.ns, ["ip", "addr", "del", f"{host.outer4}/24", "dev", host.ifname])

        def local_host() -> str:
            return str(petrel_sas(client)[0]["local-host"])

        assert wait_for(lambda: local_host() == NEW_ADDRESS, 10), logs(client, server)
        if isinstance(server, StrongSwan):
            followed = lambda: f"{NEW_ADDRESS}[4500]" in server.list_sas()  # noqa: E731
        else:
            assert isinstance(server, PetrelPeer)
            followed = lambda: remote_host(server) == NEW_ADDRESS  # noqa: E731
        assert wait_for(followed, 10), logs(client, server)
        (after,) = petrel_sas(client)
        assert after["initiator-spi"] == before["initiator-spi"], logs(client, server)
        assert wait_for(lambda: pings(lab) == 3, 15), logs(client, server)
        assert "the peer follows us to 192.0.2.3:4500 (MOBIKE)" in client.log_text()
        if isinstance(server, PetrelPeer):  # moved in place: the same Child SA carries on
            assert list(after["child-sas"]) == list(before["child-sas"])
