"""Credentials made by strongSwan's ``pki`` tool, in swanctl's folder layout: loaded, their
paths validated, identities matched, AUTH signed with pki's keys and verified, and refused when
expired, untrusted, revoked (``pki --signcrl``), for the wrong identity, through a CA:FALSE
issuer, or with a key type the ``auth`` constraint forbids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cred_helpers import OCTETS, need_pki, pki

from petrel.credentials.authenticate import AuthFailure, sign_local, verify_peer
from petrel.credentials.constraints import AuthConstraint
from petrel.credentials.folders import load_folders
from petrel.credentials.identities import MATCH_NONE, cert_match, parse_identity
from petrel.credentials.store import CredentialStore
from petrel.crypto.keys import KeyType, generate_private_key
from petrel.crypto.pki_ops import CertSpec, issue
from petrel.crypto.validation import PathFailure, PathValidationError, validate_path
from petrel.crypto.x509 import Certificate, load_certificate, load_crl
from petrel.wire.registry import HashAlgorithm

ALL = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)
EE_DN = "C=CH, O=strongSwan, CN=moon.strongswan.org"
SANS = ("moon.strongswan.org", "moon@strongswan.org", "192.168.0.1")
# name -> ((type, size) of root, intermediate, end entity), key folder of the end entity
CHAINS = {
    "rsa3072": ((("rsa", 3072), ("rsa", 3072), ("rsa", 3072)), "rsa"),
    "ecdsa": ((("ecdsa", 384), ("ecdsa", 384), ("ecdsa", 256)), "ecdsa"),
    "ed25519": ((("ed25519", 0), ("ed25519", 0), ("ed25519", 0)), "pkcs8"),
    "mixed": ((("ecdsa", 384), ("rsa", 3072), ("ed25519", 0)), "private"),
}


@dataclass(frozen=True)
class Made:
    base: Path
    root: Certificate
    intermediate: Certificate
    end_entity: Certificate

    @property
    def now(self) -> datetime:
        return self.end_entity.not_before + timedelta(hours=1)


def _gen(path: Path, kind: str, size: int) -> Path:
    args = ["--gen", "--type", kind, "--outform", "pem"] + (["--size", str(size)] if size else [])
    path.write_bytes(pki(*args))
    return path


def _make(base: Path, name: str) -> Made:
    (root_kind, im_kind, ee_kind), key_folder = CHAINS[name]
    for folder in ("x509", "x509ca", "x509crl", key_folder, "work"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    work = base / "work"
    root_key = _gen(work / "root.key", *root_kind)
    root = base / "x509ca" / "root.pem"
    root.write_bytes(
        pki(
            "--self",
            "--in",
            root_key,
            "--ca",
            "--outform",
            "pem",
            "--dn",
            f"C=CH, O=strongSwan, CN={name} Root CA",
        )
    )
    im_key = _gen(work / "im.key", *im_kind)
    im = base / "x509" / "im.pem"
    im_pub = pki("--pub", "--in", im_key)
    im.write_bytes(
        pki(
            "--issue",
            "--cacert",
            root,
            "--cakey",
            root_key,
            "--ca",
            "--dn",
            f"C=CH, O=strongSwan, CN={name} Intermediate CA",
            "--outform",
            "pem",
            stdin=im_pub,
        )
    )
    ee_key = _gen(base / key_folder / "moon.key", *ee_kind)
    ee = base / "x509" / "moon.pem"
    san_args = [a for s in SANS for a in ("--san", s)]
    ee.write_bytes(
        pki(
            "--issue",
            "--cacert",
            im,
            "--cakey",
            im_key,
            "--dn",
            EE_DN,
            *san_args,
            "--flag",
            "serverAuth",
            "--outform",
            "pem",
            stdin=pki("--pub", "--in", ee_key),
        )
    )
    return Made(base, *(load_certificate(p.read_bytes()) for p in (root, im, ee)))


@pytest.fixture(scope="module", params=sorted(CHAINS))
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Made:
    need_pki()
    return _make(tmp_path_factory.mktemp(request.param), request.param)


def _peer_store(made: Made) -> CredentialStore:
    store = CredentialStore()
    store.add_ca(made.root)
    return store


def _sign(made: Made) -> tuple[bytes, list[bytes]]:
    own = load_folders(made.base)
    local = sign_local(
        own, identity=parse_identity("moon.strongswan.org"), octets=OCTETS, peer_hashes=ALL
    )
    assert [c.der for c in local.certificates] == [made.end_entity.der, made.intermediate.der]
    return local.data, [c.der for c in local.certificates]


def _verify(made: Made, store: CredentialStore | None = None, **changes: object) -> object:
    data, certs = _sign(made)
    args: dict[str, object] = {
        "method": 14,
        "auth_data": data,
        "octets": OCTETS,
        "now": made.now,
        "peer_id": parse_identity("moon.strongswan.org"),
        "certificates": certs,
    }
    args.update(changes)
    return verify_peer(store or _peer_store(made), **args)  # type: ignore[arg-type]


def test_folders_and_path(made: Made) -> None:
    store = load_folders(made.base)
    assert store.cas == (made.root,)
    assert store.certificates == (made.intermediate, made.end_entity)
    assert store.private_key_for(made.end_entity) is not None
    path = validate_path(made.end_entity, [made.intermediate], [made.root], now=made.now)
    assert path.chain == (made.end_entity, made.intermediate, made.root)
    assert path.key_strengths[-1][0] is made.root.public_key.key_type
    # strongSwan's own verdict on the same files agrees.
    out = pki(
        "--verify",
        "--in",
        made.base / "x509" / "moon.pem",
        "--cacert",
        made.base / "x509" / "im.pem",
        "--cacert",
        made.base / "x509ca" / "root.pem",
    )
    assert b"certificate trusted" in out


@pytest.mark.parametrize(
    "identity",
    [
        "moon.strongswan.org",
        "*.strongswan.org",
        "moon@strongswan.org",
        "192.168.0.1",
        EE_DN,
        "C=CH, O=strongSwan, CN=*",
    ],
)
def test_identities_match(made: Made, identity: str) -> None:
    assert cert_match(made.end_entity, parse_identity(identity)) > MATCH_NONE


def test_sign_and_verify_with_pki_keys(made: Made) -> None:
    peer = _verify(
        made, remote_id=parse_identity("C=CH, O=strongSwan, CN=*"), peer_id=parse_identity(EE_DN)
    )
    assert peer.path is not None and peer.path.anchor == made.root  # type: ignore[attr-defined]
    loose = AuthConstraint.parse("rsa-2048-ecdsa-256")
    assert _verify(made, constraint=loose)


def test_refusals(made: Made, tmp_path: Path) -> None:
    with pytest.raises(AuthFailure, match="certificate expired"):
        _verify(made, now=made.end_entity.not_after + timedelta(days=1))
    other = CredentialStore()
    other.add_ca(
        load_certificate(
            pki(
                "--self",
                "--in",
                _gen(tmp_path / "o.key", "ed25519", 0),
                "--ca",
                "--dn",
                "C=CH, CN=Other Root",
            )
        )
    )
    with pytest.raises(AuthFailure, match="untrusted CA"):
        _verify(made, other)
    with pytest.raises(AuthFailure, match="does not match the configured"):
        _verify(made, remote_id=parse_identity("sun.strongswan.org"))
    with pytest.raises(AuthFailure, match=r"does not confirm 'sun\.strongswan\.org'"):
        _verify(made, peer_id=parse_identity("sun.strongswan.org"))
    crl = pki(
        "--signcrl",
        "--cacert",
        made.base / "x509" / "im.pem",
        "--cakey",
        made.base / "work" / "im.key",
        "--cert",
        made.base / "x509" / "moon.pem",
        "--reason",
        "key-compromise",
    )
    revoking = _peer_store(made)
    revoking.add_crl(load_crl(crl))
    assert revoking.crls[0].entry(made.end_entity.serial) is not None
    with pytest.raises(AuthFailure, match="revoked"):
        _verify(made, revoking)


def test_key_type_forbidden_by_constraint(made: Made) -> None:
    ee_type = made.end_entity.public_key.key_type
    forbidding = {
        KeyType.RSA: "ecdsa-256",  # RSA keys in the chain, only ECDSA sizes allowed
        KeyType.ECDSA: "rsa-2048",
        KeyType.ED25519: "pubkey-sha256",  # the Ed25519 AUTH signature is not sha256
    }[ee_type]
    with pytest.raises(AuthFailure, match="not acceptable"):
        _verify(made, constraint=AuthConstraint.parse(forbidding))


def test_ca_false_issuer(made: Made) -> None:
    own = load_folders(made.base)
    ee_key = own.private_key_for(made.end_entity)
    assert ee_key is not None
    victim = generate_private_key("ecdsa", 256)
    fake = issue(
        victim.public,
        "C=CH, CN=issued by moon",
        made.end_entity,
        ee_key,
        CertSpec(now=made.now - timedelta(minutes=30)),
    )
    with pytest.raises(PathValidationError) as info:
        validate_path(fake, [made.end_entity, made.intermediate], [made.root], now=made.now)
    assert info.value.reason is PathFailure.NOT_CA
    assert "CA:FALSE used as issuer" in str(info.value)
