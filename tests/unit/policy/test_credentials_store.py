"""Credential store and swanctl folders, and the two authenticator calls end to end with
petrel-made credentials: sign_local (method 14 and classic) and verify_peer with each refusal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cred_helpers import NOW, OCTETS, START, Node, leaf, root, sub, write_folder

from petrel.credentials.authenticate import AuthFailure, null_auth, sign_local, verify_peer
from petrel.credentials.constraints import AuthConstraint
from petrel.credentials.folders import load_folders
from petrel.credentials.identities import parse_identity
from petrel.credentials.store import CredentialStore
from petrel.crypto.auth import psk_auth
from petrel.crypto.keys import generate_private_key
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.pki_ops import CertSpec, Revoke, sign_crl
from petrel.crypto.prf import prf_spec
from petrel.policy.identity import Identity
from petrel.wire.registry import AuthMethod, HashAlgorithm, PrfId

ALL = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)
MOON = "C=CH, O=Petrel, CN=moon.petrel.test"
SUN = "C=CH, O=Petrel, CN=sun.petrel.test"
MOON_SANS = CertSpec(sans=("moon.petrel.test", "moon@petrel.test", "192.0.2.1"))


@pytest.fixture(scope="module")
def pki_nodes() -> dict[str, Node]:
    ca = root("ecdsa", 384)
    im = sub(ca, "rsa", 2048)
    return {
        "ca": ca,
        "im": im,
        "moon": leaf(im, "ed25519", None, dn=MOON, spec=MOON_SANS),
        "sun": leaf(im, "ecdsa", 256, dn=SUN, spec=CertSpec(sans=("sun.petrel.test",))),
    }


def _peer_store(nodes: dict[str, Node]) -> CredentialStore:
    store = CredentialStore()
    store.add_ca(nodes["ca"].cert)
    return store


def _own_store(nodes: dict[str, Node], name: str) -> CredentialStore:
    store = CredentialStore()
    store.add_ca(nodes["ca"].cert)
    store.add_certificate(nodes["im"].cert)
    store.add_certificate(nodes[name].cert)
    store.add_private_key(nodes[name].key)
    return store


def test_folders_load_every_kind(tmp_path: Path, pki_nodes: dict[str, Node]) -> None:
    ca, im, moon = pki_nodes["ca"], pki_nodes["im"], pki_nodes["moon"]
    write_folder(tmp_path, "x509ca", "ca.pem", ca.cert)
    write_folder(tmp_path, "x509", "im.der", im.cert.der)
    write_folder(tmp_path, "x509", "moon.pem", moon.cert)
    write_folder(tmp_path, "x509crl", "im.crl", sign_crl(im.cert, im.key, now=START))
    write_folder(tmp_path, "private", "moon.pem", moon.key.pem(b"s3cret"))
    write_folder(tmp_path, "rsa", "im.der", im.key.der())
    write_folder(tmp_path, "ecdsa", "ca.pem", ca.key.pem())
    write_folder(tmp_path, "pkcs8", "other.pem", generate_private_key("ed448").pem())
    write_folder(tmp_path, "pubkey", "peer.pem", pki_nodes["sun"].key.public.pem())
    with pytest.raises(CredentialError, match=r"private/moon.pem: .*passphrase"):
        load_folders(tmp_path)
    store = load_folders(tmp_path, passphrases={"moon.pem": b"s3cret"})
    assert store.cas == (ca.cert,)
    assert store.certificates == (im.cert, moon.cert)
    assert len(store.crls) == 1 and len(store.private_keys) == 4 and len(store.public_keys) == 1
    assert store.private_key_for(moon.cert) == moon.key
    assert store.ca_keyids() == [ca.cert.keyid]
    assert store.find_ca(ca.cert.keyid) == ca.cert and store.find_ca(b"x") is None
    write_folder(tmp_path, "rsa", "wrong.pem", ca.key.pem())
    with pytest.raises(CredentialError, match="ecdsa key in the rsa/ folder"):
        load_folders(tmp_path, passphrases={"moon.pem": b"s3cret"})


def test_select_local_and_certreq(pki_nodes: dict[str, Node]) -> None:
    store = _own_store(pki_nodes, "moon")
    other_ca = root(dn="C=CH, CN=Other CA")
    other = leaf(other_ca, dn="C=CH, CN=moon other", spec=MOON_SANS)
    store.add_ca(other_ca.cert)
    store.add_certificate(other.cert)
    store.add_private_key(other.key)
    ident = parse_identity("moon.petrel.test")
    assert store.local_certificates(ident) == [pki_nodes["moon"].cert, other.cert]
    first = store.select_local(ident)
    assert first is not None and first.to_send == (pki_nodes["moon"].cert, pki_nodes["im"].cert)
    asked = store.select_local(ident, [other_ca.cert.keyid])
    assert asked is not None and asked.certificate == other.cert and asked.intermediates == ()
    unknown = store.select_local(ident, [b"\x01" * 20])
    assert unknown is not None and unknown.certificate == pki_nodes["moon"].cert
    assert store.select_local(parse_identity("nobody.petrel.test")) is None
    assert store.select_local(parse_identity(MOON)) is not None


def test_shared_secrets_ranked_like_strongswan() -> None:
    store = CredentialStore()
    moon, sun, carol = (parse_identity(t) for t in ("moon.test", "sun.test", "carol@test"))
    store.add_shared_secret(b"moon-only", (moon,))
    store.add_shared_secret(b"sun-moon", (sun, moon))
    store.add_shared_secret(b"wild", (parse_identity("*.test"),))
    assert store.shared_secret(moon, sun) == b"sun-moon"  # both perfect
    assert store.shared_secret(moon, carol) == b"moon-only"  # only ours matches, perfectly
    assert store.shared_secret(carol, parse_identity("x.test")) == b"wild"
    assert store.shared_secret(carol, parse_identity("x.other")) is None
    # An owner-less secret fits anyone at the lowest level, and the peer's side weighs
    # first: it now beats one that names only us (strongSwan's get_shared).
    store.add_shared_secret(b"anyone")
    assert store.shared_secret(moon, carol) == b"anyone"
    assert store.shared_secret(carol, parse_identity("x.other")) == b"anyone"
    assert store.shared_secret(moon, sun) == b"sun-moon"
    with pytest.raises(ValueError):
        store.add_shared_secret(b"")


@pytest.mark.parametrize("signer", ["moon", "sun"])
def test_sign_and_verify_round_trip(pki_nodes: dict[str, Node], signer: str) -> None:
    own = _own_store(pki_nodes, signer)
    ident = pki_nodes[signer].cert.alt_names[0]
    my_id = parse_identity(str(ident))
    local = sign_local(
        own,
        identity=my_id,
        octets=OCTETS,
        peer_hashes=ALL,
        certreq_keyids=[pki_nodes["ca"].cert.keyid],
    )
    assert local.method == AuthMethod.DIGITAL_SIGNATURE
    assert [c.der for c in local.certificates] == [
        pki_nodes[signer].cert.der,
        pki_nodes["im"].cert.der,
    ]
    peer = verify_peer(
        _peer_store(pki_nodes),
        method=local.method,
        auth_data=local.data,
        octets=OCTETS,
        peer_id=my_id,
        remote_id=parse_identity("*.petrel.test"),
        now=NOW,
        certificates=[c.der for c in local.certificates],
    )
    assert peer.scheme == local.scheme and peer.path is not None
    assert peer.path.anchor == pki_nodes["ca"].cert


def test_classic_methods(pki_nodes: dict[str, Node]) -> None:
    own = _own_store(pki_nodes, "sun")
    sun_id = parse_identity("sun.petrel.test")
    local = sign_local(own, identity=sun_id, octets=OCTETS, peer_hashes=None)
    assert local.method == AuthMethod.ECDSA_SHA256_P256 and len(local.data) == 64
    peer = verify_peer(
        _peer_store(pki_nodes),
        method=local.method,
        auth_data=local.data,
        octets=OCTETS,
        peer_id=sun_id,
        now=NOW,
        certificates=local.certificates,
    )
    assert peer.scheme.name == "ecdsa-sha256"
    with pytest.raises(AuthFailure, match="need RFC 7427"):
        sign_local(
            _own_store(pki_nodes, "moon"),
            identity=parse_identity(MOON),
            octets=OCTETS,
            peer_hashes=None,
        )
    with pytest.raises(AuthFailure, match="no common hash"):
        sign_local(
            _own_store(pki_nodes, "moon"),
            identity=parse_identity(MOON),
            octets=OCTETS,
            peer_hashes=(HashAlgorithm.SHA2_256,),
        )
    with pytest.raises(AuthFailure, match="no private key"):
        sign_local(own, identity=parse_identity("x.test"), octets=OCTETS, peer_hashes=ALL)


def _moon_auth(nodes: dict[str, Node]) -> tuple[bytes, list[bytes]]:
    local = sign_local(
        _own_store(nodes, "moon"), identity=parse_identity(MOON), octets=OCTETS, peer_hashes=ALL
    )
    return local.data, [c.der for c in local.certificates]


def _verify(nodes: dict[str, Node], store: CredentialStore | None = None, **kw: object) -> object:
    data, certs = _moon_auth(nodes)
    args: dict[str, object] = {
        "method": 14,
        "auth_data": data,
        "octets": OCTETS,
        "peer_id": parse_identity(MOON),
        "now": NOW,
        "certificates": certs,
    }
    args.update(kw)
    return verify_peer(store or _peer_store(nodes), **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"remote_id": parse_identity("sun.petrel.test")}, "does not match the configured"),
        ({"peer_id": parse_identity("sun.petrel.test")}, "does not confirm 'sun.petrel.test'"),
        ({"now": NOW + timedelta(days=4000)}, "certificate expired"),
        ({"octets": OCTETS + b"!"}, "signature of .* invalid"),
        ({"constraint": AuthConstraint.parse("psk")}, "auth = psk"),
        (
            {"constraint": AuthConstraint.parse("rsa-2048-ecdsa-256-sha384")},
            "X.509 signature scheme rsa-sha256",
        ),
        ({"constraint": AuthConstraint.parse("ike:ecdsa-sha384")}, "IKE signature scheme ed25519"),
        ({"constraint": AuthConstraint.parse("rsa-4096-ecdsa-256")}, "RSA-2048 keys"),
        ({"certificates": [b"\x30\x00"]}, "unusable certificate"),
        ({"revocation": "strict"}, "revocation status unknown"),
        ({"method": 1}, "invalid"),
    ],
)
def test_verify_peer_refusals(
    pki_nodes: dict[str, Node], changes: dict[str, object], message: str
) -> None:
    with pytest.raises(AuthFailure, match=message):
        _verify(pki_nodes, **changes)


def test_verify_peer_trust_and_revocation(pki_nodes: dict[str, Node]) -> None:
    untrusting = CredentialStore()
    untrusting.add_ca(root(dn="C=CH, CN=Someone Else").cert)
    with pytest.raises(AuthFailure, match="untrusted CA"):
        _verify(pki_nodes, untrusting)
    revoking = _peer_store(pki_nodes)
    im = pki_nodes["im"]
    moon = pki_nodes["moon"].cert
    revoking.add_crl(sign_crl(im.cert, im.key, [Revoke(moon.serial)], now=START))
    with pytest.raises(AuthFailure, match="revoked"):
        _verify(pki_nodes, revoking)
    assert _verify(pki_nodes, constraint=AuthConstraint.parse("pubkey"))


def test_peer_without_certificates(pki_nodes: dict[str, Node]) -> None:
    moon = pki_nodes["moon"]
    stored = _peer_store(pki_nodes)
    stored.add_certificate(pki_nodes["im"].cert)
    stored.add_certificate(moon.cert)  # the peer's certificate, in x509/
    result = _verify(pki_nodes, stored, certificates=[])
    assert result.path is not None  # type: ignore[attr-defined]
    raw = CredentialStore()
    raw.add_public_key(moon.key.public, (parse_identity(MOON),))
    result = _verify(pki_nodes, raw, certificates=[])
    assert result.path is None and result.public_key == moon.key.public  # type: ignore[attr-defined]
    with pytest.raises(AuthFailure, match="no trusted public key"):
        _verify(pki_nodes, CredentialStore(), certificates=[])
    keyid = Identity(11, moon.key.public.spki_sha1)
    raw_only = CredentialStore()
    raw_only.add_public_key(moon.key.public)
    own = CredentialStore()
    own.add_public_key(moon.key.public, (keyid,))
    own.add_private_key(moon.key)
    local = sign_local(own, identity=keyid, octets=OCTETS, peer_hashes=ALL)
    assert local.certificates == ()
    peer = verify_peer(
        raw_only, method=14, auth_data=local.data, octets=OCTETS, peer_id=keyid, now=NOW
    )
    assert peer.path is None and peer.scheme.name == "ed25519"


def test_null_auth_is_psk_syntax_with_sk_p() -> None:
    prf = prf_spec(PrfId.HMAC_SHA2_256)
    sk_pi = bytes(range(32))
    assert null_auth(prf, sk_pi, OCTETS) == psk_auth(prf, sk_pi, OCTETS)
