"""VICI load-conn / load-shared / load-cert / load-key → the model: the same objects as from
swanctl.conf text, and charon's reply texts for what is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from petrel.config.swanctl import parse_swanctl
from petrel.config.vici_conf import (
    ViciConfigError,
    certificate_from_vici,
    connection_from_vici,
    connections_from_vici,
    private_key_from_vici,
    shared_secret_from_vici,
)
from petrel.control.vici import decode_message, encode_message
from petrel.crypto.pki_ops import pem
from petrel.policy.connection import SharedSecret
from petrel.policy.identity import Identity

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))

from crypto_pki_helpers import leaf, root

PSK_CONF = """\
connections {
  c {
    local_addrs = 192.0.2.1
    remote_addrs = 192.0.2.2
    version = 2
    proposals = aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048
    dpd_delay = 30s
    rekey_time = 2h
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
        local_ts = 198.51.100.1/32, 198.51.100.8/29[tcp/80]
        remote_ts = 203.0.113.1/32
        esp_proposals = aes256gcm16-x25519
        rekey_time = 20m
        life_time = 30m
        rekey_bytes = 1M
        life_packets = 100000
        start_action = trap
        dpd_action = restart
      }
      web {
        esp_proposals = chacha20poly1305
      }
    }
  }
}
"""

PSK_VICI = {
    "c": {
        "local_addrs": ["192.0.2.1"],
        "remote_addrs": ["192.0.2.2"],
        "version": "2",
        "proposals": ["aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048"],
        "dpd_delay": "30s",
        "rekey_time": "2h",
        "local": {"auth": "psk", "id": "left"},
        "remote": {"auth": "psk", "id": "right"},
        "children": {
            "net": {
                "local_ts": ["198.51.100.1/32", "198.51.100.8/29[tcp/80]"],
                "remote_ts": ["203.0.113.1/32"],
                "esp_proposals": ["aes256gcm16-x25519"],
                "rekey_time": "20m",
                "life_time": "30m",
                "rekey_bytes": "1M",
                "life_packets": "100000",
                "start_action": "trap",
                "dpd_action": "restart",
            },
            "web": {"esp_proposals": ["chacha20poly1305"]},
        },
    }
}


def wire(message: dict) -> dict:
    """As the server sees it: through the VICI codec (lists, blobs as surrogate strings)."""
    return decode_message(encode_message(message))


def test_psk_connection_with_lifetimes_is_the_swanctl_conf_one() -> None:
    from_file = parse_swanctl(PSK_CONF).connections
    from_vici = {c.name: c for c in connections_from_vici(wire(PSK_VICI))}
    assert from_vici == from_file
    net = from_vici["c"].children["net"]
    assert (net.rekey_time, net.life_time, net.rand_time) == (1200.0, 1800.0, 600.0)
    assert (net.rekey_bytes, net.life_bytes) == (1 << 20, (1 << 20) * 110 // 100)


def test_defaults_of_an_almost_empty_connection() -> None:
    conn = connection_from_vici("d", wire({"remote_addrs": ["192.0.2.9"]}))
    text = "connections {\n d {\n remote_addrs = 192.0.2.9\n }\n}\n"
    assert conn == parse_swanctl(text).connections["d"]
    assert conn.local.auth == "pubkey" and conn.children == {}


def test_list_keys_may_arrive_as_plain_values() -> None:
    a = connection_from_vici("c", wire({"local_addrs": "192.0.2.1", "proposals": "default"}))
    b = connection_from_vici("c", wire({"local_addrs": ["192.0.2.1"], "proposals": ["default"]}))
    assert a == b


def _pki(tmp_path: Path) -> tuple:
    ca = root(dn="C=CH, O=Petrel, CN=VICI Root")
    moon = leaf(ca, dn="C=CH, O=Petrel, CN=moon.petrel.test")
    sun = leaf(ca, dn="C=CH, O=Petrel, CN=sun.petrel.test")
    for folder, name, item in (
        ("x509ca", "ca.pem", pem(ca.cert)),
        ("x509", "moon.pem", pem(moon.cert)),
        ("pubkey", "sun.pub", sun.key.public.pem()),
    ):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_bytes(item)
    return ca, moon, sun


def test_certificate_and_raw_key_connection_is_the_swanctl_conf_one(tmp_path: Path) -> None:
    ca, moon, sun = _pki(tmp_path)
    text = """\
connections {
  pk {
    remote_addrs = 192.0.2.2
    send_cert = always
    local {
      auth = ecdsa-256
      certs = moon.pem
    }
    remote {
      auth = pubkey
      id = sun.petrel.test
      cacerts = ca.pem
      pubkeys = sun.pub
      revocation = strict
    }
    children {
      net {
        remote_ts = 203.0.113.0/24
        life_time = 2h
      }
    }
  }
}
"""
    from_file = parse_swanctl(text, base_dir=str(tmp_path)).connections["pk"]
    message = {
        "pk": {
            "remote_addrs": ["192.0.2.2"],
            "send_cert": "always",
            # swanctl sends the files' contents: PEM here, DER works too
            "local": {"auth": "ecdsa-256", "certs": [moon.cert.der]},
            "remote": {
                "auth": "pubkey",
                "id": "sun.petrel.test",
                "cacerts": [pem(ca.cert)],
                "pubkeys": [sun.key.public.pem()],
                "revocation": "strict",
            },
            "children": {"net": {"remote_ts": ["203.0.113.0/24"], "life_time": "2h"}},
        }
    }
    from_vici = connection_from_vici("pk", wire(message)["pk"])
    assert from_vici == from_file
    assert from_vici.local.certs[0].subject_str == "C=CH, O=Petrel, CN=moon.petrel.test"
    assert from_vici.remote.pubkeys == (sun.key.public,)


@pytest.mark.parametrize(
    ("message", "errmsg"),
    [
        ({"bogus": "1"}, "unknown option: bogus, config discarded"),
        ({"local": {"auth": "psk", "colour": "red"}}, "unknown option: colour, config discarded"),
        ({"children": {"net": {"colour": "red"}}}, "unknown option: colour, config discarded"),
        ({"frobnicate": {}}, "invalid section: frobnicate"),
        (
            {"children": {"net": {"mode": "transport"}}},
            "connections.c.children.net.mode = transport is not supported yet, config discarded",
        ),
        ({"vips": ["0.0.0.0", "x"]}, "connections.c.vips: 'x' is not an IP address"),
        ({"version": "1"}, "Petrel speaks IKEv2 only"),
        ({"local_port": "x"}, "connections.c.local_port: invalid number 'x', config discarded"),
        ({"proposals": ["aes256-nonsense"]}, "connections.c.proposals: "),
        ({"local": {"auth": "eap-md5"}}, "connections.c.local.auth: "),
        ({"local-1": {}, "local-2": {}}, "multiple authentication rounds are not supported"),
        ({"local": {"cert-1": {"file": "x.pem"}}}, "certificate sections are not supported"),
        ({"local": {"certs": [b"not a certificate"]}}, "invalid value for: certs"),
        ({"remote": {"pubkeys": [b"\x30\x03junk"]}}, "invalid value for: pubkeys"),
    ],
)
def test_refusals_name_the_option(message: dict, errmsg: str) -> None:
    with pytest.raises(ViciConfigError) as info:
        connection_from_vici("c", wire(message))
    assert errmsg in str(info.value)


def test_shared_ike_secret() -> None:
    unique, secret = shared_secret_from_vici(
        wire({"id": "ike-1", "type": "IKE", "data": b"\x00raw\xff", "owners": ["left", "right"]})
    )
    assert unique == "ike-1"
    assert secret == SharedSecret((Identity.parse("left"), Identity.parse("right")), b"\x00raw\xff")
    # no owners: any (as a swanctl.conf secret without ids)
    assert shared_secret_from_vici(wire({"type": "ike", "data": "x"})) == (
        None,
        SharedSecret((), b"x"),
    )


@pytest.mark.parametrize(
    ("message", "errmsg"),
    [
        ({"data": "x"}, "shared key type missing"),
        ({"type": "EAP", "data": "x"}, "EAP shared keys are not supported by Petrel"),
        ({"type": "ppk", "data": "x"}, "PPK shared keys are not supported by Petrel"),
        ({"type": "FOO", "data": "x"}, "invalid shared key type: FOO"),
        ({"type": "IKE"}, "shared key data missing"),
    ],
)
def test_shared_refusals(message: dict, errmsg: str) -> None:
    with pytest.raises(ViciConfigError, match=errmsg):
        shared_secret_from_vici(wire(message))


def test_load_cert_kinds(tmp_path: Path) -> None:
    ca, moon, sun = _pki(tmp_path)
    loaded = certificate_from_vici(wire({"type": "X509", "flag": "CA", "data": pem(ca.cert)}))
    assert loaded.ca and loaded.certificates == (ca.cert,)
    loaded = certificate_from_vici(wire({"type": "X509", "data": moon.cert.der}))
    assert not loaded.ca and loaded.certificates == (moon.cert,)
    loaded = certificate_from_vici(wire({"type": "x509ca", "data": ca.cert.der}))  # legacy
    assert loaded.ca
    loaded = certificate_from_vici(wire({"type": "PUBKEY", "data": sun.key.public.pem()}))
    assert loaded.pubkey == sun.key.public
    for message, errmsg in (
        ({"type": "X509", "flag": "CA", "data": moon.cert.der}, "lacks CA basic constraint"),
        ({"type": "X509", "flag": "AA", "data": ca.cert.der}, "X509 AA certificates are not"),
        ({"type": "X509_AC", "data": ca.cert.der}, "X509_AC certificates are not supported"),
        ({"type": "X509", "flag": "BOGUS", "data": "x"}, "invalid certificate flag 'BOGUS'"),
        ({"type": "nonsense", "data": "x"}, "invalid certificate type 'nonsense'"),
        ({"data": "x"}, "certificate type missing"),
        ({"type": "X509"}, "certificate data missing"),
        ({"type": "X509", "data": b"junk"}, "parsing X509 certificate failed"),
    ):
        with pytest.raises(ViciConfigError, match=errmsg):
            certificate_from_vici(wire(message))


def test_load_key() -> None:
    node = root()
    pem_key = node.key.pem()
    assert private_key_from_vici(wire({"type": "any", "data": pem_key})) == node.key
    assert private_key_from_vici(wire({"type": "ECDSA", "data": node.key.der()})) == node.key
    for message, errmsg in (
        ({"type": "rsa", "data": pem_key}, "parsing RSA private key failed"),
        ({"type": "dsa", "data": pem_key}, "DSA keys are not supported by Petrel"),
        ({"type": "what", "data": pem_key}, "invalid key type: what"),
        ({"data": pem_key}, "key type missing"),
        ({"type": "any"}, "key data missing"),
    ):
        with pytest.raises(ViciConfigError, match=errmsg):
            private_key_from_vici(wire(message))
