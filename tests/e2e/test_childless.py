"""Childless IKE SAs (RFC 6023) against strongSwan 5.9.8, either side initiating.

An IKE SA initiated alone (``swanctl --initiate --ike c``, ``petrel initiate --ike c``) comes
up with no Child SA on either side; the Child SA initiated next is created by CREATE_CHILD_SA
and carries pings.  With ``childless = force`` on the initiator, the first Child SA leaves
IKE_AUTH and is created by CREATE_CHILD_SA with its own key exchange.  What crossed the wire is
read from the messages charon parsed.
"""

from __future__ import annotations

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, wait_for
from petrel.lab.pairs import logs, petrel_sas, start_pair, swan_child_count

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

ESP_PFS = "aes256gcm16-x25519"


def no_child_payloads(payloads: str) -> bool:
    return not {"SA", "TSi", "TSr"} & set(payloads.split())


def petrel_children(peer: PetrelPeer) -> int:
    return sum(len(sa["child-sas"]) for sa in petrel_sas(peer))


def pings(lab: Lab) -> int:
    return lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4)


def test_strongswan_initiates_an_ike_sa_alone_then_its_child() -> None:
    with Lab() as lab:
        swan, petrel = start_pair(lab, "strongswan->petrel")
        assert isinstance(swan, StrongSwan) and isinstance(petrel, PetrelPeer)
        done = swan.swanctl("--initiate", "--ike", "c", "--timeout", "30", check=False)
        assert done.returncode == 0, logs(swan, petrel)
        assert [sa["state"] for sa in petrel_sas(petrel)] == ["ESTABLISHED"]
        assert petrel_children(petrel) == 0 and swan_child_count(swan) == 0
        (auth,) = swan.parsed("IKE_AUTH", "response")
        assert no_child_payloads(auth), auth
        assert any("N(CHDLESS_SUP)" in p for p in swan.parsed("IKE_SA_INIT", "response"))
        assert swan.initiate("net"), logs(swan, petrel)
        assert wait_for(lambda: petrel_children(petrel) == 1, 10), logs(swan, petrel)
        assert swan.parsed("CREATE_CHILD_SA", "response")
        assert pings(lab) == 3, logs(swan, petrel)


def test_petrel_initiates_an_ike_sa_alone_then_its_child() -> None:
    with Lab() as lab:
        petrel, swan = start_pair(lab, "petrel->strongswan")
        assert isinstance(swan, StrongSwan) and isinstance(petrel, PetrelPeer)
        done = petrel.cli("initiate", "--ike", "c", "--timeout", "30", timeout=40)
        assert done.returncode == 0, done.stdout + done.stderr + logs(petrel, swan)
        assert petrel_children(petrel) == 0 and swan_child_count(swan) == 0
        (auth,) = swan.parsed("IKE_AUTH", "request")
        assert no_child_payloads(auth), auth
        assert petrel.initiate("net"), logs(petrel, swan)
        assert wait_for(lambda: swan_child_count(swan) == 1, 10), logs(petrel, swan)
        assert pings(lab) == 3, logs(petrel, swan)


@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
def test_childless_force_moves_the_first_child_to_create_child_sa_with_pfs(pair: str) -> None:
    with Lab() as lab:
        left, right = start_pair(lab, pair, l_extra=["childless = force"], esp_proposals=ESP_PFS)
        swan = left if isinstance(left, StrongSwan) else right
        assert isinstance(swan, StrongSwan)
        assert left.initiate("net"), logs(left, right)
        assert wait_for(lambda: swan_child_count(swan) == 1, 10), logs(left, right)
        kind = "request" if swan is right else "response"
        (auth,) = swan.parsed("IKE_AUTH", kind)
        assert no_child_payloads(auth), auth
        creates = swan.parsed("CREATE_CHILD_SA", kind)
        assert creates and "KE" in creates[0].split(), creates
        assert pings(lab) == 3, logs(left, right)


def test_petrel_force_responder_refuses_a_child_in_ike_auth() -> None:
    """charon (childless = allow) puts the first Child SA in IKE_AUTH; Petrel (force) refuses
    it with INVALID_SYNTAX, as charon does, and nothing stays up."""
    with Lab() as lab:
        swan, petrel = start_pair(lab, "strongswan->petrel", r_extra=["childless = force"])
        assert isinstance(swan, StrongSwan) and isinstance(petrel, PetrelPeer)
        assert not swan.initiate("net", timeout=15)
        (auth,) = swan.parsed("IKE_AUTH", "response")
        assert "N(INVAL_SYN)" in auth.split(), auth
        assert wait_for(lambda: petrel_sas(petrel) == [], 5), logs(swan, petrel)
        assert "did not initiate a childless IKE SA" in petrel.log_text()
