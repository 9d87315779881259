"""`petrel decode` on a capture of a real Petrel↔strongSwan session, with the keys the daemon
saved (`--save-keys`, Wireshark's formats): IKE_AUTH and ESP decrypt; a wrong key does not."""

from __future__ import annotations

import json
import sys

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, strongswan_pair_confs

pytestmark = [pytest.mark.e2e, pytest.mark.interop]
MARKER = b"PETREL-DECODE-LIVE-MARKER-9d"


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes128-sha256"])
def test_decode_a_live_capture_with_saved_keys(lab: Lab, esp: str) -> None:
    keys = lab.workdir / "keys"
    l_conf, _ = strongswan_pair_confs(lab, conn_extra=["encap = yes"], esp_proposals=esp)
    _, r_conf = strongswan_pair_confs(lab, esp_proposals=esp)
    swan = StrongSwan(lab, lab.right.ns, "right", r_conf).start()
    swan.load()
    petrel = PetrelPeer(lab, lab.left.ns, "left", l_conf, daemon_args=["--save-keys", str(keys)])
    petrel.start()
    cap = lab.capture(lab.left.ns, lab.left.ifname, "live", "udp")
    assert petrel.initiate("net")
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=3, payload=MARKER) == 3
    assert petrel.cli("terminate", "--ike", "c").returncode == 0
    cap.stop()
    assert (keys / "ikev2_decryption_table").stat().st_mode & 0o077 == 0
    assert "saving IKE and ESP keys" in petrel.log_text()

    def decode(*extra: str) -> list[dict]:
        out = run_in(
            None,
            [sys.executable, "-m", "petrel.cli", "decode", str(cap.path), "--json", *extra],
            check=False,
        )
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    rows = decode(
        "--ike-keys", str(keys / "ikev2_decryption_table"), "--esp-keys", str(keys / "esp_sa")
    )
    auth = [r for r in rows if r.get("exchange") == "IKE_AUTH"]
    assert len(auth) == 2 and all(not r.get("error") for r in auth), auth
    assert auth[0]["inner_payloads"][:1] == ["IDi"] and "AUTH" in auth[0]["inner_payloads"]
    deletes = [r for r in rows if r.get("exchange") == "INFORMATIONAL"]
    assert any("DELETE" in r.get("inner_payloads", []) for r in deletes)
    esp_rows = [r for r in rows if r.get("kind") == "esp"]
    assert len(esp_rows) >= 6 and all("icmp" in str(r.get("inner", "")) for r in esp_rows)

    # A wrong key: a clear integrity failure, not a traceback.
    table = (keys / "ikev2_decryption_table").read_text().split(",")
    table[2] = "00" * (len(table[2]) // 2)
    bad = lab.workdir / "bad_table"
    bad.write_text(",".join(table))
    rows = decode("--ike-keys", str(bad))
    assert any("integrity check failed" in str(r.get("error", "")) for r in rows), rows
