"""Certificates and CRLs as frozen values: fields, key IDs, PEM bundles, hostile input."""

from __future__ import annotations

import pytest
from crypto_pki_helpers import NOW, leaf, root, sub

from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.pki_ops import CertSpec, Revoke, pem, sign_crl
from petrel.crypto.sigschemes import ECDSA_SHA256, RSA_PSS_SHA256
from petrel.crypto.x509 import Certificate, load_certificate, load_certificates, load_crl
from petrel.wire.registry import HashAlgorithm


def test_certificate_fields() -> None:
    ca = root()
    im = sub(ca, "rsa", 2048, spec=CertSpec(path_len=0))
    spec = CertSpec(
        sans=("moon.petrel.test", "moon@petrel.test", "192.0.2.1", "2001:db8::1", "uri:sip:x"),
        flags=("serverAuth", "ipsecIKE"),
        crl_uris=("http://crl.petrel.test/im.crl",),
        pss=True,
    )
    ee = leaf(im, "ed25519", None, spec=spec).cert
    assert ee.subject_str == "C=CH, O=Petrel, CN=moon.petrel.test"
    assert ee.issuer_str == "C=CH, O=Petrel, CN=Petrel Intermediate CA"
    assert [(n.kind, str(n)) for n in ee.alt_names] == [
        ("dns", "moon.petrel.test"),
        ("email", "moon@petrel.test"),
        ("ip", "192.0.2.1"),
        ("ip", "2001:db8::1"),
        ("uri", "sip:x"),
    ]
    assert ee.ext_key_usage == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.17"}
    assert ee.crl_uris == ("http://crl.petrel.test/im.crl",)
    assert ee.is_ca is None and ee.key_usage is None and ee.unhandled_critical == ()
    assert ee.scheme == RSA_PSS_SHA256
    assert ee.authority_key_id == im.cert.subject_key_id == im.key.public.pubkey_sha1
    assert ee.keyid == ee.public_key.spki_sha1
    assert im.cert.is_ca and im.cert.path_len == 0
    assert im.cert.key_usage == {"keyCertSign", "cRLSign"}
    assert im.cert.scheme == ECDSA_SHA256
    assert ca.cert.is_self_issued and not ee.is_self_issued


def test_pem_der_and_bundles() -> None:
    ca = root()
    im = sub(ca)
    bundle = pem(ca.cert) + b"junk between blocks\n" + pem(im.cert)
    assert [c.der for c in load_certificates(bundle)] == [ca.cert.der, im.cert.der]
    assert load_certificate(bundle) == ca.cert
    assert load_certificate(ca.cert.der) == ca.cert
    assert load_certificates(ca.cert.der) == [ca.cert]


def test_crl_fields() -> None:
    ca = root("rsa", 2048)
    crl = sign_crl(
        ca.cert,
        ca.key,
        [Revoke(7, reason="key-compromise"), Revoke(9, reason="certificate-hold"), Revoke(11)],
        now=NOW,
        number=42,
        digest=HashAlgorithm.SHA2_384,
    )
    again = load_crl(pem(crl))
    assert again == load_crl(crl.der) == crl
    assert crl.issuer.equals(ca.cert.subject)
    assert crl.number == 42 and not crl.is_delta
    assert crl.this_update == NOW and crl.next_update is not None
    assert [(e.serial, e.reason) for e in crl.revoked] == [
        (7, "keyCompromise"),
        (9, "certificateHold"),
        (11, None),
    ]
    assert crl.entry(9) is not None and crl.entry(8) is None
    assert crl.scheme is not None and crl.scheme.name == "rsa-sha384"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30\x03\x02\x01\x01",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
    ],
)
def test_garbage_certificates_and_crls(data: bytes) -> None:
    with pytest.raises(CredentialError):
        load_certificate(data)
    with pytest.raises(CredentialError):
        load_crl(data)


def test_every_truncation_of_a_certificate_is_a_credential_error() -> None:
    der = root().cert.der
    for cut in range(0, len(der), 7):
        with pytest.raises(CredentialError):
            load_certificate(der[:cut])


def test_mismatched_inner_signature_algorithm_is_refused() -> None:
    der = bytearray(leaf(root("ecdsa", 384)).cert.der)
    # The outer signatureAlgorithm is ecdsa-with-SHA384 (…04 03 03); turn the inner one
    # (the first occurrence, inside tbsCertificate) into ecdsa-with-SHA256.
    marker = bytes.fromhex("2a8648ce3d040303")
    at = bytes(der).index(marker)
    der[at + len(marker) - 1] = 0x02
    with pytest.raises(CredentialError, match="do not agree"):
        load_certificate(bytes(der))


def test_mutated_certificates_and_crls_only_raise_credential_errors() -> None:
    """Random byte flips, cuts and insertions: loaders and path validation either work or
    raise their typed errors (the library's InvalidVersion, DuplicateExtension … are mapped)."""
    import contextlib
    import random
    import warnings

    from petrel.crypto.validation import PathValidationError, validate_path

    ca = root("rsa", 2048)
    ee = leaf(sub(ca, spec=CertSpec(pss=True)), "ed448", None)
    crl = sign_crl(ca.cert, ca.key, [Revoke(3, reason="superseded")], now=NOW)
    seeds = [ca.cert.der, ee.cert.der, crl.der]
    rnd = random.Random(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the loaders must not leak library warnings either
        for _ in range(1500):
            data = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randint(1, 3)):
                at = rnd.randrange(len(data))
                if rnd.random() < 0.7:
                    data[at] = rnd.randrange(256)
                else:
                    del data[at : at + rnd.randint(1, 6)]
            for loader in (load_certificate, load_crl):
                try:
                    item = loader(bytes(data))
                except CredentialError:
                    continue
                if isinstance(item, Certificate):
                    with contextlib.suppress(PathValidationError):
                        validate_path(item, [], [ca.cert], now=NOW)
