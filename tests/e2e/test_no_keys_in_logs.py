"""Petrel never logs key material (issue 3 §6, issue 9 §4), even at its most verbose level:
every key of every SA — IKE SK_e*/SK_a*, ESP keys, across Child and IKE rekeys — and the PSK
are absent from both daemons' logs, from their VICI listings (`petrel list-sas`, swanctl's raw
`--list-sas`, `--list-conns`, `--counters`) and from their metrics (`petrel stats`). The keys
come from the daemons' own `--save-keys` tables."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from petrel.decode.keys import parse_esp_sa, parse_ikev2_table
from petrel.lab import Lab, PetrelPeer, strongswan_pair_confs, wait_for
from petrel.lab.pairs import logs, petrel_sas
from petrel.lab.process import run_in
from petrel.lab.strongswan import DEFAULT_PSK

pytestmark = pytest.mark.e2e


def forms(secret: bytes) -> set[str]:
    """How a secret could show up in a text log: hex either case, base64, repr escapes."""
    return {
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    }


def saved_secrets(peer: PetrelPeer) -> list[bytes]:
    keys = peer.dir / "keys"
    secrets: list[bytes] = []
    for sa in parse_ikev2_table((keys / "ikev2_decryption_table").read_text()).values():
        secrets += [sa.sk_ei, sa.sk_er, sa.sk_ai, sa.sk_ar]
    for esp in parse_esp_sa((keys / "esp_sa").read_text()):
        secrets += [esp.encr_key, esp.auth_key]
    return [s for s in secrets if s]


@pytest.mark.parametrize("esp", ["aes256gcm16-x25519", "aes128-sha256-modp2048"])
def test_no_key_material_in_verbose_logs(lab: Lab, esp: str) -> None:
    l_conf, r_conf = strongswan_pair_confs(lab, esp_proposals=esp)
    right, left = (
        PetrelPeer(lab, host.ns, name, conf, log="4")
        for host, name, conf in ((lab.right, "right", r_conf), (lab.left, "left", l_conf))
    )
    for peer in (right, left):
        peer.daemon_args = ["--save-keys", str(peer.dir / "keys")]
        peer.start()
    assert left.initiate("net"), logs(left, right)
    for args in (["--child", "net"], ["--ike", "c"], ["--child", "net"]):
        before = petrel_sas(left)
        assert left.cli("rekey", *args).returncode == 0
        assert wait_for(lambda b=before: petrel_sas(left) != b and len(petrel_sas(left)) == 1, 15)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    listings = {peer.name: listings_of(peer) for peer in (left, right)}
    for peer in (left, right):  # and a crash would leave no core file holding the keys
        assert peer.proc is not None
        limits = Path(f"/proc/{peer.proc.pid}/limits").read_text()
        assert re.search(r"Max core file size\s+0\s+0\s", limits), limits
    assert left.cli("terminate", "--ike", "c").returncode == 0
    psk = base64.b64decode(DEFAULT_PSK[2:])
    secrets = saved_secrets(left) + saved_secrets(right)
    # Three IKE SAs (initial, rekeyed) and three Child SAs at least, each with its keys.
    assert len(secrets) >= 12
    for peer in (left, right):
        text = peer.log_text()
        assert "[IKE]" in text and "[NET]" in text  # verbose logging did happen
        assert "ESTABLISHED" in listings[peer.name]  # the listings did list the SAs
        for secret in [psk, *secrets]:
            leaked = [form for form in forms(secret) if form in text]
            assert not leaked, f"{peer.name} logged key material ({len(secret)} octets)"
            leaked = [form for form in forms(secret) if form in listings[peer.name]]
            assert not leaked, f"{peer.name} listed key material ({len(secret)} octets)"


def listings_of(peer: PetrelPeer) -> str:
    """What the daemon tells over VICI: its SAs, connections, counters and statistics."""
    texts = [peer.cli("list-sas").stdout, peer.cli("stats").stdout]
    for args in (["--list-sas"], ["--list-conns"], ["--counters"]):
        result = run_in(
            None, ["swanctl", *args, "--raw", "--uri", f"unix://{peer.vici}"], check=False
        )
        assert result.returncode == 0, result.stderr
        texts.append(result.stdout)
    return "\n".join(texts)
