"""The CLI without a daemon: ``config check``, what ``load`` sends, exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from petrel.cli import load

PETREL = [sys.executable, "-m", "petrel.cli"]

CONF = """connections {
  c {
    local_addrs = 192.0.2.1
    remote_addrs = 192.0.2.2
    proposals = aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048
    local {
      auth = psk
      id = left
    }
    remote {
      auth = psk
      id = right
    }
    children {
      net {
        local_ts = 198.51.100.1/32, 198.51.100.7/32
        remote_ts = 203.0.113.1/32
      }
    }
  }
}
secrets {
  ike-gw {
    id-1 = left
    id-2 = right
    secret = 0sdGVzdHRlc3R0ZXN0dGVzdA==
  }
}
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PETREL, *args], capture_output=True, text=True, timeout=60)


def test_config_check_ok(tmp_path: Path) -> None:
    (tmp_path / "swanctl.conf").write_text(CONF)
    result = run("config", "check", str(tmp_path))  # the folder holding swanctl.conf
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "c (net)" in result.stdout
    doc = json.loads(run("config", "check", "--json", str(tmp_path)).stdout)
    assert doc["ok"] and doc["connections"] == {"c": ["net"]} and doc["secrets"] == 1


def test_config_check_error_names_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "swanctl.conf"
    conf.write_text(CONF.replace("    local_addrs", "    bogus = 1\n    local_addrs"))
    result = run("config", "check", str(conf))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{conf}:3: unknown setting 'connections.c.bogus'"
    doc = json.loads(run("config", "check", "--json", str(conf)).stdout)
    assert doc == {
        "ok": False,
        "error": {
            "file": str(conf),
            "line": 3,
            "key": "connections.c.bogus",
            "message": "unknown setting 'connections.c.bogus'",
        },
    }
    assert run("config", "check", str(tmp_path / "none")).returncode == 1


def test_load_messages_are_swanctls(tmp_path: Path) -> None:
    conf = tmp_path / "swanctl.conf"
    conf.write_text(CONF)
    _config, messages = load.build_messages(conf)
    (conn,) = messages["load-conn"]
    c = conn["c"]
    assert c["proposals"] == ["aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048"]
    assert c["local_addrs"] == ["192.0.2.1"] and c["local"] == {"auth": "psk", "id": "left"}
    assert c["children"]["net"]["local_ts"] == ["198.51.100.1/32", "198.51.100.7/32"]
    assert messages["load-shared"] == [
        {"id": "ike-gw", "type": "IKE", "data": b"testtesttesttest", "owners": ["left", "right"]}
    ]
    assert messages["load-cert"] == [] and messages["load-key"] == []


def test_load_refuses_a_bad_file_before_sending(tmp_path: Path) -> None:
    conf = tmp_path / "swanctl.conf"
    conf.write_text("connections {\n  c {\n    version = 3\n  }\n}\n")
    result = run("--socket", str(tmp_path / "none.vici"), "load", str(conf))
    assert result.returncode == 1
    assert result.stderr.startswith(f"petrel load: {conf}:3:"), result.stderr


@pytest.mark.parametrize(
    "command",
    [["status"], ["list-conns"], ["list-certs", "--json"], ["list-pools"], ["up", "c"], ["log"]],
)
def test_unreachable_daemon_is_exit_3(tmp_path: Path, command: list[str]) -> None:
    result = run("--socket", str(tmp_path / "none.vici"), *command)
    assert result.returncode == 3, result
    assert "cannot reach the daemon" in result.stderr and "Traceback" not in result.stderr


def test_usage_is_exit_2() -> None:
    assert run("up").returncode == 2
    assert run("loglevel").returncode == 2


def test_load_messages_carry_credentials(tmp_path: Path) -> None:
    """Certificates (x509/ NONE, x509ca/ CA), the private key (DER) and the files that
    ``certs``/``cacerts`` name, inlined in the connection, as swanctl sends them."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))
    from crypto_pki_helpers import leaf, root

    from petrel.crypto.pki_ops import pem

    ca = root()
    me = leaf(ca, dn="C=CH, O=Petrel, CN=left")
    for folder, name, data in (
        ("x509ca", "ca.pem", pem(ca.cert)),
        ("x509", "left.pem", pem(me.cert)),
        ("private", "left.key", me.key.pem()),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(data)
        (tmp_path / folder / name).chmod(0o600)
    conf = tmp_path / "swanctl.conf"
    conf.write_text(
        CONF.replace("auth = psk\n      id = left", "auth = pubkey\n      certs = left.pem")
        .replace("auth = psk\n      id = right", "auth = pubkey\n      cacerts = ca.pem")
        .split("secrets {")[0]
    )
    _config, messages = load.build_messages(conf)
    c = messages["load-conn"][0]["c"]
    assert c["local"]["certs"] == [pem(me.cert)] and c["remote"]["cacerts"] == [pem(ca.cert)]
    assert {(m["type"], m["flag"], m["data"]) for m in messages["load-cert"]} == {
        ("X509", "NONE", me.cert.der),
        ("X509", "CA", ca.cert.der),
    }
    assert messages["load-key"] == [{"type": "any", "data": me.key.der()}]


def test_list_certs_summaries() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))
    from crypto_pki_helpers import root

    from petrel.cli.listings import _cert_summary

    ca = root()
    summary = _cert_summary(
        {"type": "X509", "flag": "CA", "has_privkey": "yes", "data": ca.cert.der}
    )
    assert summary["subject"] == summary["issuer"] == ca.cert.subject_str
    assert summary["flag"] == "CA" and summary["has_privkey"] == "yes"
    assert summary["key"].startswith("ECDSA 256 bits")
    raw = _cert_summary({"type": "PUBKEY", "data": ca.key.public.spki, "subject": "moon"})
    assert raw["key"].startswith("ECDSA") and raw["subject"] == "moon"
    broken = _cert_summary({"type": "X509", "data": b"\x30\x03junk"})
    assert broken["error"].startswith("cannot parse")
    json.dumps([summary, raw, broken])  # --json prints them as they are
