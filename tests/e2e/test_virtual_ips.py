"""Virtual IPs: a strongSwan 5.9.8 remote-access client (``vips = 0.0.0.0``) gets its inner
address from a Petrel gateway's pool (``pools``), with the pool's DNS server, and pings the
protected network from it; a second connection of the same client gets the same address back.
Debian's ``swanctl --load-all`` loads the pool over VICI and ``--list-pools --leases`` lists
the lease.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, wait_for
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


def client_conf(lab: Lab, *extra: str) -> str:
    """L asks for a virtual IP and protects its traffic to R's inner address."""
    left, right = lab.left, lab.right
    return swanctl_psk_conf(
        local_addr=left.outer4,
        remote_addr=right.outer4,
        local_id="left",
        remote_id="right",
        local_ts="dynamic",
        remote_ts=f"{right.inner4}/32",
        conn_extra=["vips = 0.0.0.0", *extra],
    )


def gateway_conf(lab: Lab) -> str:
    """R hands out addresses of pool ``p`` (the POOL section is added by the caller)."""
    left, right = lab.left, lab.right
    return swanctl_psk_conf(
        local_addr=right.outer4,
        remote_addr=left.outer4,
        local_id="right",
        remote_id="left",
        local_ts=f"{right.inner4}/32",
        remote_ts="dynamic",
        conn_extra=["pools = p"],
    )


def start(lab: Lab, pools_by_vici: bool = False) -> tuple[StrongSwan, PetrelPeer]:
    left, right = lab.left, lab.right
    client, gateway = client_conf(lab), gateway_conf(lab)
    if pools_by_vici:  # Petrel starts without the pool; swanctl loads it with the connection
        petrel = PetrelPeer(lab, right.ns, "right", gateway.replace("pools = p", "")).start()
        folder = lab.workdir / "swanctl-for-petrel"
        folder.mkdir()
        (folder / "swanctl.conf").write_text(gateway + POOL)
        loaded = swanctl_to(petrel, folder, "--load-all", "--noprompt")
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    else:
        petrel = PetrelPeer(lab, right.ns, "right", gateway + POOL).start()
    swan = StrongSwan(lab, left.ns, "left", client).start()
    swan.load()
    return swan, petrel


def swanctl_to(petrel: PetrelPeer, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's swanctl against Petrel's VICI socket, its swanctl.conf in ``folder``."""
    env = {**os.environ, "SWANCTL_DIR": str(folder)}
    uri = ("--uri", f"unix://{petrel.vici}")
    return run_in(None, ["swanctl", *args, *uri], check=False, env=env)


def test_swanctl_loads_the_pool_and_lists_its_lease() -> None:
    with Lab() as lab:
        swan, petrel = start(lab, pools_by_vici=True)
        assert swan.initiate("net"), logs(swan, petrel)
        (sa,) = petrel_sas(petrel)
        assert sa["remote-vips"] == [VIP]
        listed = swanctl_to(petrel, lab.workdir, "--list-pools", "--leases")
        assert listed.returncode == 0, listed.stderr
        assert VIP in listed.stdout and "online" in listed.stdout and "left" in listed.stdout
        ours = petrel.cli("list-pools", "--json")
        assert ours.returncode == 0, ours.stderr
        (lease,) = json.loads(ours.stdout)["p"]["leases"].values()
        assert lease == {"address": VIP, "identity": "left", "status": "online"}
        table = petrel.cli("list-pools")
        assert table.returncode == 0 and VIP in table.stdout, table.stdout + table.stderr
        assert lab.ping(lab.left.ns, VIP, lab.right.inner4) == 3, logs(swan, petrel)


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


@pytest.mark.parametrize("gateway", ["strongswan", "petrel"])
def test_petrel_client_gets_a_virtual_ip_and_pings_from_it(gateway: str) -> None:
    """Petrel as the remote-access client (``vips = 0.0.0.0``): the address goes on its TUN
    device, its Child SA's local selector is that address, and pings leave from it."""
    with Lab() as lab:
        left, right = lab.left, lab.right
        client = client_conf(lab, "encap = yes")
        served = gateway_conf(lab) + POOL
        server: PetrelPeer | StrongSwan
        if gateway == "petrel":
            server = PetrelPeer(lab, right.ns, "right", served).start()
        else:
            server = StrongSwan(lab, right.ns, "right", served).start()
            server.load()
        petrel = PetrelPeer(lab, left.ns, "left", client).start()
        assert petrel.initiate("net"), logs(petrel, server)
        (sa,) = petrel_sas(petrel)
        (child,) = sa["child-sas"].values()
        assert child["local-ts"] == [f"{VIP}/32"], logs(petrel, server)
        assert f"virtual IP {VIP} installed on" in petrel.log_text()
        shown = run_in(left.ns, ["ip", "-o", "addr", "show", "to", f"{VIP}/32"]).stdout
        assert VIP in shown
        assert lab.ping(left.ns, VIP, right.inner4) == 3, logs(petrel, server)
        assert petrel.cli("terminate", "--ike", "c").returncode == 0
        assert wait_for(
            lambda: run_in(left.ns, ["ip", "-o", "addr", "show", "to", f"{VIP}/32"]).stdout == "",
            10,
        ), logs(petrel, server)
