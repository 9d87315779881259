"""IKE_AUTH with certificates (RFC 7296 §2.15, RFC 7427, RFC 4945), raw public keys and NULL
authentication (RFC 7619): two engines in memory, credentials in swanctl folders made with
petrel's pki_ops, then a rekey of each kind over the certificate-authenticated IKE SA."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))

from crypto_pki_helpers import NOW, Node, leaf, root, sub
from test_ike_engine import LEFT, RIGHT, installed, of_type, paired, pump

import petrel.credentials.authenticate as authenticate
from petrel.config.swanctl import parse_swanctl
from petrel.crypto.keys import generate_private_key
from petrel.crypto.pki_ops import CertSpec, Revoke, issue, pem, sign_crl
from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine

MOON = "C=CH, O=Petrel, CN=moon.petrel.test"
SUN = "C=CH, O=Petrel, CN=sun.petrel.test"


def side(
    base: Path,
    me: str,
    peer: str,
    local: str,
    remote: str,
    ts: tuple[str, str],
    extra: str = "",
) -> str:
    base.mkdir(parents=True, exist_ok=True)
    return f"""
connections {{
  c {{
    local_addrs = {me}
    remote_addrs = {peer}
    {extra}
    local {{
{local}
    }}
    remote {{
{remote}
    }}
    children {{
      net {{
        local_ts = {ts[0]}
        remote_ts = {ts[1]}
      }}
    }}
  }}
}}
"""


def put(base: Path, folder: str, name: str, data: bytes) -> None:
    (base / folder).mkdir(parents=True, exist_ok=True)
    (base / folder / name).write_bytes(data)


def install(base: Path, node: Node, ca: Node, *chain: Node) -> None:
    """Our key and certificate, the CA we trust, intermediates to send."""
    put(base, "private", "key.pem", node.key.pem())
    put(base, "x509", "cert.pem", pem(node.cert))
    put(base, "x509ca", "ca.pem", pem(ca.cert))
    for i, intermediate in enumerate(chain):
        put(base, "x509", f"sub{i}.pem", pem(intermediate.cert))


def engines_from(tmp: Path, l_text: str, r_text: str) -> tuple[IkeEngine, IkeEngine]:
    made = []
    for name, text in (("left", l_text), ("right", r_text)):
        config = parse_swanctl(text, base_dir=str(tmp / name))
        made.append(
            IkeEngine(
                config.connections,
                config.secrets,
                credentials=config.credentials,
                clock=lambda: NOW,
            )
        )
    return made[0], made[1]


def cert_pair(
    tmp: Path,
    l_node: Node,
    r_node: Node,
    ca: Node,
    chain: tuple[Node, ...] = (),
    l_auth: str = "pubkey",
    r_remote_auth: str = "pubkey",
    r_remote_id: str = MOON,
    l_remote_id: str = SUN,
    right_crl: bytes = b"",
) -> tuple[IkeEngine, IkeEngine]:
    install(tmp / "left", l_node, ca, *chain)
    install(tmp / "right", r_node, ca, *chain)
    if right_crl:
        put(tmp / "right", "x509crl", "ca.crl", right_crl)
    l_text = side(
        tmp / "left",
        "192.0.2.1",
        "192.0.2.2",
        f"      auth = {l_auth}\n      id = {MOON}",
        f"      auth = pubkey\n      id = {l_remote_id}",
        ("198.51.100.1/32", "203.0.113.1/32"),
    )
    r_text = side(
        tmp / "right",
        "192.0.2.2",
        "192.0.2.1",
        f"      auth = pubkey\n      id = {SUN}",
        f"      auth = {r_remote_auth}\n      id = {r_remote_id}",
        ("203.0.113.1/32", "198.51.100.1/32"),
    )
    return engines_from(tmp, l_text, r_text)


def establish(left: IkeEngine, right: IkeEngine) -> tuple[list, list]:
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    return left.take_events(), right.take_events()


@pytest.mark.parametrize(
    ("kind", "bits", "pss"),
    [
        ("rsa", 3072, False),
        ("rsa", 3072, True),
        ("ecdsa", 256, False),
        ("ecdsa", 384, False),
        ("ed25519", None, False),
        ("ed448", None, False),
    ],
)
def test_certificates_through_an_intermediate(
    tmp_path: Path, kind: str, bits: int | None, pss: bool
) -> None:
    ca = root("ecdsa", 384)
    mid = sub(ca, "rsa", 3072)  # mixed chain: ECDSA root, RSA intermediate
    moon = leaf(mid, kind, bits, MOON, CertSpec(sans=("moon.petrel.test",), pss=pss))
    sun = leaf(mid, kind, bits, SUN, CertSpec(sans=("sun.petrel.test",), pss=pss))
    auth = "rsa/pss" if pss else "pubkey"
    left, right = cert_pair(tmp_path, moon, sun, ca, (mid,), l_auth=auth)
    l_events, r_events = establish(left, right)
    assert of_type(l_events, ev.IkeSaUp) and of_type(r_events, ev.IkeSaUp)
    assert len(installed(left)) == 1 and paired(left, right)
    (l_sa,), (r_sa,) = left.ike_sas(), right.ike_sas()
    assert l_sa.remote_id == SUN and r_sa.remote_id == MOON
    # A Child SA rekey and an IKE SA rekey over the certificate-authenticated SA.
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 1.0)
    pump(left, right, now=1.0)
    assert len(installed(left)) == 1 and paired(left, right)
    assert right.rekey_ike(right.ike_sas()[0].ike_id, 2.0)
    pump(left, right, now=2.0)
    assert len(left.ike_sas()) == 1 and len(installed(right)) == 1 and paired(left, right)


def test_identity_by_subject_alt_name_and_wildcards(tmp_path: Path) -> None:
    """The initiator names itself by an email subjectAltName of its certificate and accepts
    any responder whose DN fits ``C=CH, O=Petrel, CN=*``; the responder accepts
    ``*@petrel.test`` and an ECDSA-256 constraint."""
    ca = root()
    moon, sun = leaf(ca, dn=MOON), leaf(ca, dn=SUN, spec=CertSpec(sans=("sun.petrel.test",)))
    install(tmp_path / "left", moon, ca)
    install(tmp_path / "right", sun, ca)
    l_text = side(
        tmp_path / "left",
        "192.0.2.1",
        "192.0.2.2",
        "      auth = pubkey\n      id = moon@petrel.test",
        '      auth = pubkey\n      id = "C=CH, O=Petrel, CN=*"',
        ("198.51.100.1/32", "203.0.113.1/32"),
    )
    r_text = side(
        tmp_path / "right",
        "192.0.2.2",
        "192.0.2.1",
        f"      auth = pubkey\n      id = {SUN}",
        "      auth = ecdsa-256\n      id = *@petrel.test",
        ("203.0.113.1/32", "198.51.100.1/32"),
    )
    left, right = engines_from(tmp_path, l_text, r_text)
    l_events, _ = establish(left, right)
    assert of_type(l_events, ev.IkeSaUp)
    assert right.ike_sas()[0].remote_id == "moon@petrel.test"
    assert left.ike_sas()[0].remote_id == SUN


def refused(left: IkeEngine, right: IkeEngine, caplog: pytest.LogCaptureFixture) -> str:
    l_events, r_events = establish(left, right)
    assert not of_type(l_events, ev.IkeSaUp) and not of_type(r_events, ev.IkeSaUp)
    failed = of_type(l_events, ev.NegotiationFailed) + of_type(r_events, ev.NegotiationFailed)
    assert any(int(f.notify) == 24 for f in failed), failed  # AUTHENTICATION_FAILED
    assert installed(left) == set() == installed(right)
    return caplog.text


def test_expired_certificate_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = root()
    old = CertSpec(sans=("moon.petrel.test",), now=NOW - timedelta(days=400), lifetime_days=30)
    left, right = cert_pair(tmp_path, leaf(ca, dn=MOON, spec=old), leaf(ca, dn=SUN), ca)
    assert "expired" in refused(left, right, caplog)


def test_untrusted_ca_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca, other = root(), root(dn="C=CH, O=Elsewhere, CN=Other CA")
    left, right = cert_pair(tmp_path, leaf(other, dn=MOON), leaf(ca, dn=SUN), ca)
    assert "untrusted" in refused(left, right, caplog).lower()


def test_revoked_certificate_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = root()
    moon = leaf(ca, dn=MOON)
    crl = sign_crl(ca.cert, ca.key, [Revoke(moon.cert.serial)], now=NOW - timedelta(hours=1))
    left, right = cert_pair(tmp_path, moon, leaf(ca, dn=SUN), ca, right_crl=pem(crl))
    assert "revoked" in refused(left, right, caplog)


def test_identity_not_in_certificate_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = root()
    mallory = "C=CH, O=Petrel, CN=mallory.petrel.test"
    left, right = cert_pair(tmp_path, leaf(ca, dn=mallory), leaf(ca, dn=SUN), ca)
    # left claims MOON (its config) but holds mallory's certificate: no key for MOON
    assert "no private key found" in refused(left, right, caplog)


def test_ca_false_certificate_used_as_ca_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = root()
    not_a_ca = leaf(ca, dn="C=CH, O=Petrel, CN=not a CA")
    key = generate_private_key("ecdsa", 256)
    spec = CertSpec(now=NOW - timedelta(days=1))
    moon = Node(key, issue(key.public, MOON, not_a_ca.cert, not_a_ca.key, spec))
    left, right = cert_pair(tmp_path, moon, leaf(ca, dn=SUN), ca, (not_a_ca,))
    assert "CA:FALSE" in refused(left, right, caplog)


def test_key_type_forbidden_by_constraint_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = root("rsa", 2048)
    moon = leaf(ca, "rsa", 2048, MOON)
    left, right = cert_pair(tmp_path, moon, leaf(ca, dn=SUN), ca, r_remote_auth="rsa-3072")
    assert "not acceptable" in refused(left, right, caplog)


def test_tampered_signature_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = root()
    left, right = cert_pair(tmp_path, leaf(ca, dn=MOON), leaf(ca, dn=SUN), ca)
    real = authenticate.build_auth

    def tampered(*args, **kwargs):  # type: ignore[no-untyped-def]
        data = bytearray(real(*args, **kwargs))
        data[-1] ^= 0x01
        return bytes(data)

    mp = pytest.MonkeyPatch()
    mp.setattr(authenticate, "build_auth", tampered)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    # IKE_SA_INIT and the initiator's tampered IKE_AUTH request
    for _ in range(2):
        for d in left.take_datagrams():
            right.receive(d.data[4:] if d.data[:4] == b"\0" * 4 else d.data, d.remote, d.local, 0.0)
        for d in right.take_datagrams():
            left.receive(d.data[4:] if d.data[:4] == b"\0" * 4 else d.data, d.remote, d.local, 0.0)
    mp.undo()
    pump(left, right)
    assert not right.ike_sas() or right.ike_sas()[0].remote_id == ""
    assert "signature" in caplog.text and "invalid" in caplog.text


def test_raw_public_keys(tmp_path: Path) -> None:
    keys = {name: generate_private_key("ed25519") for name in ("left", "right")}
    for name, other in (("left", "right"), ("right", "left")):
        put(tmp_path / name, "private", "key.pem", keys[name].pem())
        put(tmp_path / name, "pubkey", "own.pem", keys[name].public.pem())
        put(tmp_path / name, "pubkey", "peer.pem", keys[other].public.pem())
    texts = [
        side(
            tmp_path / name,
            me,
            peer,
            f"      auth = pubkey\n      id = {name}.petrel.test\n      pubkeys = own.pem",
            f"      auth = pubkey\n      id = {other}.petrel.test\n      pubkeys = peer.pem",
            ts,
        )
        for name, other, me, peer, ts in (
            ("left", "right", "192.0.2.1", "192.0.2.2", ("198.51.100.1/32", "203.0.113.1/32")),
            ("right", "left", "192.0.2.2", "192.0.2.1", ("203.0.113.1/32", "198.51.100.1/32")),
        )
    ]
    left, right = engines_from(tmp_path, *texts)
    l_events, _ = establish(left, right)
    assert of_type(l_events, ev.IkeSaUp) and paired(left, right)


def test_null_authentication(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    texts = [
        side(tmp_path / name, me, peer, "      auth = null", "      auth = null", ts)
        for name, me, peer, ts in (
            ("left", "192.0.2.1", "192.0.2.2", ("198.51.100.1/32", "203.0.113.1/32")),
            ("right", "192.0.2.2", "192.0.2.1", ("203.0.113.1/32", "198.51.100.1/32")),
        )
    ]
    left, right = engines_from(tmp_path, *texts)
    l_events, _ = establish(left, right)
    assert of_type(l_events, ev.IkeSaUp) and paired(left, right)
    assert left.ike_sas()[0].remote_id == "%null"
    assert "UNAUTHENTICATED" in caplog.text


def test_null_does_not_satisfy_pubkey(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = root()
    install(tmp_path / "right", leaf(ca, dn=SUN), ca)
    l_text = side(
        tmp_path / "left",
        "192.0.2.1",
        "192.0.2.2",
        "      auth = null",
        "      auth = null",
        ("198.51.100.1/32", "203.0.113.1/32"),
    )
    r_text = side(
        tmp_path / "right",
        "192.0.2.2",
        "192.0.2.1",
        f"      auth = pubkey\n      id = {SUN}",
        "      auth = pubkey",
        ("203.0.113.1/32", "198.51.100.1/32"),
    )
    left, right = engines_from(tmp_path, l_text, r_text)
    refused(left, right, caplog)
    assert "no connection for initiator" in caplog.text
