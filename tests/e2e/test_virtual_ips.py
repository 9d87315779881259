"""Virtual IPs: a strongSwan 5.9.8 remote-access client (``vips = 0.0.0.0``) gets its inner
address from a Petrel gateway's pool (``pools``), with the pool's DNS server, and pings the
protected network from it; a second connection of the same client gets the same address back.
"""

from __future__ import annotations

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, wait_for
from petrel.lab.pairs import logs, petrel_sas
from petrel.lab.strongswan import swanctl_psk_conf

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

VIP = "198.51.100.129"
POOL = """
pools {
  p {
    addrs = 198.51.100.128/29
    dns = 192.0.2.53
  }
}
"""


def start(lab: Lab) -> tuple[StrongSwan, PetrelPeer]:
    left, right = lab.left, lab.right
    client = swanctl_psk_conf(
        local_addr=left.outer4,
        remote_addr=right.outer4,
        local_id="left",
        remote_id="right",
        local_ts="dynamic",
        remote_ts=f"{right.inner4}/32",
        conn_extra=["vips = 0.0.0.0"],
    )
    gateway = swanctl_psk_conf(
        local_addr=right.outer4,
        remote_addr=left.outer4,
        local_id="right",
        remote_id="left",
        local_ts=f"{right.inner4}/32",
        remote_ts="dynamic",
        conn_extra=["pools = p"],
    )
    petrel = PetrelPeer(lab, right.ns, "right", gateway + POOL).start()
    swan = StrongSwan(lab, left.ns, "left", client).start()
    swan.load()
    return swan, petrel


def test_client_gets_a_virtual_ip_and_pings_from_it() -> None:
    with Lab() as lab:
        swan, petrel = start(lab)
        assert swan.initiate("net"), logs(swan, petrel)
        log = swan.log_text()
        assert f"installing new virtual IP {VIP}" in log, logs(swan, petrel)
        # charon parses the DNS server (the lab loads no plugin that would install it).
        assert "processing INTERNAL_IP4_DNS attribute" in log, logs(swan, petrel)
        (auth,) = swan.parsed("IKE_AUTH", "response")
        assert "CPRP(ADDR DNS)" in auth, auth
        (sa,) = petrel_sas(petrel)
        assert sa["remote-vips"] == [VIP]
        (child,) = sa["child-sas"].values()
        assert child["remote-ts"] == [f"{VIP}/32"]
        assert lab.ping(lab.left.ns, VIP, lab.right.inner4) == 3, logs(swan, petrel)

        swan.swanctl("--terminate", "--ike", "c", check=False)
        assert wait_for(lambda: petrel_sas(petrel) == [], 10), logs(swan, petrel)
        assert swan.initiate("net"), logs(swan, petrel)
        (again,) = petrel_sas(petrel)
        assert again["remote-vips"] == [VIP]  # the same identity, the same address
        assert wait_for(lambda: lab.ping(lab.left.ns, VIP, lab.right.inner4) == 3, 10)
