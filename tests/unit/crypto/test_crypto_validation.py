"""Path validation (RFC 5280 §6 subset per RFC 4945) with chains made by petrel's pki_ops:
every key type and signature scheme, and each refusal with its typed reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from crypto_pki_helpers import NOW, START, Node, leaf, root, sub

from petrel.crypto.keys import KeyType, generate_private_key
from petrel.crypto.pki_ops import CertSpec, Revoke, issue, self_signed, sign_crl
from petrel.crypto.validation import (
    CertStatus,
    EkuPolicy,
    PathFailure,
    PathValidationError,
    Revocation,
    crls_to_fetch,
    enforce_revocation,
    validate_path,
)


def _refused(reason: PathFailure, *args: object, **kwargs: object) -> PathValidationError:
    with pytest.raises(PathValidationError) as info:
        validate_path(*args, now=kwargs.pop("now", NOW), **kwargs)  # type: ignore[arg-type]
    assert info.value.reason is reason, str(info.value)
    return info.value


@pytest.fixture(scope="module")
def chain() -> tuple[Node, Node, Node]:
    ca = root("ecdsa", 384)
    im = sub(ca, "rsa", 2048, spec=CertSpec(path_len=0))
    return ca, im, leaf(im, "ed25519", None)


@pytest.mark.parametrize(
    ("kinds", "pss"),
    [
        ((("rsa", 2048), ("rsa", 2048), ("rsa", 2048)), False),
        ((("rsa", 2048), ("rsa", 2048), ("ecdsa", 256)), True),
        ((("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521)), False),
        ((("ed25519", None), ("ed448", None), ("ed25519", None)), False),
        ((("ecdsa", 384), ("rsa", 2048), ("ed448", None)), True),
    ],
)
def test_chains_of_every_key_type(kinds: tuple[tuple[str, int | None], ...], pss: bool) -> None:
    ca = root(*kinds[0])
    im = sub(ca, *kinds[1], spec=CertSpec(pss=pss))
    ee = leaf(im, *kinds[2], spec=CertSpec(pss=pss))
    path = validate_path(ee.cert, [im.cert], [ca.cert], now=NOW)
    assert path.chain == (ee.cert, im.cert, ca.cert)
    assert [s.key_type.value for s in path.schemes] == [kinds[1][0], kinds[0][0]]
    if pss:
        assert path.schemes[0].pss == (kinds[1][0] == "rsa")
    kinds_ee_first = [KeyType(k) for k, _ in reversed(kinds)]
    assert [t for t, _ in path.key_strengths] == kinds_ee_first
    assert [b for _, b in path.key_strengths] == [c.public_key.bits for c in path.chain]
    assert path.statuses == (CertStatus.SKIPPED, CertStatus.SKIPPED)


def test_anchor_directly_and_pinned_end_entity(chain: tuple[Node, Node, Node]) -> None:
    ca, im, ee = chain
    assert validate_path(im.cert, [], [ca.cert], now=NOW, ike=False).chain == (im.cert, ca.cert)
    assert validate_path(ee.cert, [], [im.cert], now=NOW).anchor == im.cert
    assert validate_path(ee.cert, [], [ee.cert], now=NOW).chain == (ee.cert,)


def test_expired_and_not_yet_valid(chain: tuple[Node, Node, Node]) -> None:
    ca, im, ee = chain
    error = _refused(
        PathFailure.EXPIRED, ee.cert, [im.cert], [ca.cert], now=NOW + timedelta(days=4000)
    )
    assert "certificate expired" in str(error)
    _refused(
        PathFailure.NOT_YET_VALID, ee.cert, [im.cert], [ca.cert], now=START - timedelta(days=2)
    )
    old_ca = root(spec=CertSpec(not_before=START - timedelta(days=30), lifetime_days=2))
    ee2 = leaf(old_ca)
    error = _refused(PathFailure.EXPIRED, ee2.cert, [], [old_ca.cert])
    assert error.certificate == old_ca.cert


def test_untrusted_ca_and_self_signed(chain: tuple[Node, Node, Node]) -> None:
    ca, im, ee = chain
    other = root(dn="C=CH, O=Elsewhere, CN=Other Root")
    error = _refused(PathFailure.UNTRUSTED, ee.cert, [im.cert], [other.cert])
    assert "untrusted CA" in str(error)
    _refused(PathFailure.UNTRUSTED, ee.cert, [], [ca.cert])  # intermediate missing
    _refused(PathFailure.UNTRUSTED, ee.cert, [im.cert, ca.cert], [other.cert])  # root not trusted
    key = generate_private_key("ed25519")
    lone = self_signed(key, "CN=lone", CertSpec(now=START))
    _refused(PathFailure.SELF_SIGNED, lone, [], [ca.cert])


def test_bad_signature_and_impostor_issuer(chain: tuple[Node, Node, Node]) -> None:
    ca, im, ee = chain
    broken = bytearray(ee.cert.signature)
    broken[10] ^= 0x40
    tampered = replace(ee.cert, signature=bytes(broken))
    error = _refused(PathFailure.BAD_SIGNATURE, tampered, [im.cert], [ca.cert])
    assert "signature invalid" in str(error)
    # Same DN, other key: its key ID differs from the certificate's authorityKeyIdentifier,
    # so it is not an issuer candidate at all (as strongSwan: keyids first, then DNs).
    impostor = sub(ca, dn=im.cert.subject_str)
    _refused(PathFailure.UNTRUSTED, ee.cert, [impostor.cert], [ca.cert])
    assert validate_path(ee.cert, [impostor.cert, im.cert], [ca.cert], now=NOW)


def test_ca_false_as_issuer_and_key_usage(chain: tuple[Node, Node, Node]) -> None:
    ca, im, ee = chain
    fake = leaf(ee, dn="C=CH, O=Petrel, CN=issued by an end entity")
    error = _refused(PathFailure.NOT_CA, fake.cert, [ee.cert, im.cert], [ca.cert])
    assert "CA:FALSE used as issuer" in str(error)
    assert error.certificate == ee.cert
    no_sign = sub(ca, dn="C=CH, CN=no keyCertSign", spec=CertSpec(key_usage=frozenset({"cRLSign"})))
    ee2 = leaf(no_sign)
    _refused(PathFailure.NO_CERT_SIGN, ee2.cert, [no_sign.cert], [ca.cert])


def test_path_length(chain: tuple[Node, Node, Node]) -> None:
    ca, im, _ = chain  # im has pathlen 0
    deeper = sub(im, dn="C=CH, CN=too deep")
    ee = leaf(deeper)
    error = _refused(PathFailure.PATH_LENGTH, ee.cert, [deeper.cert, im.cert], [ca.cert])
    assert "path length exceeded" in str(error) and error.certificate == im.cert
    chain_ok = sub(root(spec=CertSpec(path_len=1)), dn="C=CH, CN=one")
    assert chain_ok


def test_end_entity_key_usage_and_eku(chain: tuple[Node, Node, Node]) -> None:
    ca, im, _ = chain
    enc_only = leaf(im, spec=CertSpec(key_usage=frozenset({"keyEncipherment"})))
    _refused(PathFailure.KEY_USAGE, enc_only.cert, [im.cert], [ca.cert])
    for usage in ({"digitalSignature"}, {"nonRepudiation"}):
        ok = leaf(im, spec=CertSpec(key_usage=frozenset(usage)))
        assert validate_path(ok.cert, [im.cert], [ca.cert], now=NOW)
    server = leaf(im, spec=CertSpec(flags=("serverAuth",)))
    assert validate_path(server.cert, [im.cert], [ca.cert], now=NOW)
    _refused(PathFailure.EXT_KEY_USAGE, server.cert, [im.cert], [ca.cert], eku=EkuPolicy.RFC4945)
    ike = leaf(im, spec=CertSpec(flags=("ipsecIKE",)))
    assert validate_path(ike.cert, [im.cert], [ca.cert], now=NOW, eku="rfc4945")
    ocsp = leaf(im, spec=CertSpec(flags=("ocspSigning",)))
    _refused(PathFailure.EXT_KEY_USAGE, ocsp.cert, [im.cert], [ca.cert])
    assert validate_path(ocsp.cert, [im.cert], [ca.cert], now=NOW, eku="any")


def test_unknown_critical_extension(chain: tuple[Node, Node, Node]) -> None:
    ca, im, _ = chain
    odd = leaf(im, spec=CertSpec(critical=("1.3.6.1.4.1.99999.1",)))
    error = _refused(PathFailure.CRITICAL_EXTENSION, odd.cert, [im.cert], [ca.cert])
    assert "1.3.6.1.4.1.99999.1" in str(error)
    odd_ca = sub(ca, dn="C=CH, CN=odd CA", spec=CertSpec(critical=("1.3.6.1.4.1.99999.2",)))
    _refused(PathFailure.CRITICAL_EXTENSION, leaf(odd_ca).cert, [odd_ca.cert], [ca.cert])


def test_revocation_policies(chain: tuple[Node, Node, Node]) -> None:
    ca, im, ee = chain
    args = (ee.cert, [im.cert], [ca.cert])
    im_crl = sign_crl(im.cert, im.key, [Revoke(ee.cert.serial, reason="key-compromise")], now=START)
    error = _refused(PathFailure.REVOKED, *args, crls=[im_crl])
    assert "revoked" in str(error)
    held = sign_crl(im.cert, im.key, [Revoke(ee.cert.serial, reason="certificate-hold")], now=START)
    _refused(PathFailure.REVOKED, *args, crls=[held])
    clean_im = sign_crl(im.cert, im.key, [], now=START)
    clean_ca = sign_crl(ca.cert, ca.key, [], now=START)
    crls = [clean_im, clean_ca]
    # relaxed: only revocation fails; no CRLs at all is fine.
    assert validate_path(*args, now=NOW, revocation="relaxed")
    # ifuri: no CRL and no distribution point = fine.
    assert validate_path(*args, now=NOW, revocation=Revocation.IFURI)
    # strict: every certificate needs a current CRL.
    _refused(PathFailure.REVOCATION_UNKNOWN, *args, revocation="strict")
    _refused(PathFailure.REVOCATION_UNKNOWN, *args, revocation="strict", crls=[clean_im])
    path = validate_path(*args, now=NOW, revocation="strict", crls=crls)
    assert path.statuses == (CertStatus.GOOD, CertStatus.GOOD)
    # A stale CRL: strict and ifuri fail, relaxed passes; a listed serial stays revoked.
    late = NOW + timedelta(days=30)
    _refused(PathFailure.REVOCATION_UNKNOWN, *args, revocation="ifuri", crls=crls, now=late)
    assert validate_path(*args, now=late, crls=crls).statuses[0] is CertStatus.STALE
    _refused(PathFailure.REVOKED, *args, crls=[im_crl], now=late)
    # A CRL signed by someone else is ignored; one not yet valid too.
    forged = sign_crl(ca.cert, ca.key, [Revoke(ee.cert.serial)], now=START)
    assert validate_path(*args, now=NOW, crls=[forged])
    future = sign_crl(im.cert, im.key, [Revoke(ee.cert.serial)], now=NOW + timedelta(days=1))
    assert validate_path(*args, now=NOW, crls=[future])


def test_ifuri_with_distribution_point(chain: tuple[Node, Node, Node]) -> None:
    ca, im, _ = chain
    ee = leaf(im, spec=CertSpec(crl_uris=("http://crl.petrel.test/im.crl",)))
    args = (ee.cert, [im.cert], [ca.cert])
    error = _refused(PathFailure.REVOCATION_UNKNOWN, *args, revocation="ifuri")
    assert "failed" in str(error)
    crl = sign_crl(im.cert, im.key, [], now=START)
    assert validate_path(*args, now=NOW, revocation="ifuri", crls=[crl])


def test_crls_to_fetch(chain: tuple[Node, Node, Node]) -> None:
    """What to fetch: distribution points of certificates with no usable or a stale CRL,
    http:// and file:// only, at most four a certificate, minus those already tried."""
    ca, im, _ = chain
    uris = (
        "ldap://192.0.2.80/cn=im",
        "http://192.0.2.80/1.crl",
        "file:///var/lib/crl/2.crl",
        "http://192.0.2.80/3.crl",
        "http://192.0.2.80/4.crl",
        "http://192.0.2.80/5.crl",
    )
    ee = leaf(im, spec=CertSpec(crl_uris=uris))
    args = (ee.cert, [im.cert], [ca.cert])
    path = validate_path(*args, now=NOW)
    assert path.statuses[0] is CertStatus.FAILED
    assert crls_to_fetch(path, frozenset()) == uris[1:5]
    assert crls_to_fetch(path, frozenset(uris[1:3])) == uris[3:5]
    enforce_revocation(path, "relaxed")
    with pytest.raises(PathValidationError):
        enforce_revocation(path, "ifuri")
    im_crl = sign_crl(im.cert, im.key, [], now=START)
    good = validate_path(*args, now=NOW, crls=[im_crl])
    assert crls_to_fetch(good, frozenset()) == ()
    stale = validate_path(*args, now=NOW + timedelta(days=30), crls=[im_crl])
    assert stale.statuses[0] is CertStatus.STALE
    assert crls_to_fetch(stale, frozenset()) == uris[1:5]


def test_newest_crl_wins() -> None:
    ca = root()
    ee = leaf(ca)
    old = sign_crl(ca.cert, ca.key, [], now=START - timedelta(days=20), number=1)
    new = sign_crl(ca.cert, ca.key, [], now=START, number=2)
    path = validate_path(ee.cert, [], [ca.cert], now=NOW, crls=[old, new], revocation="strict")
    assert path.statuses == (CertStatus.GOOD,)


def test_chain_length_is_bounded() -> None:
    node = root(spec=CertSpec(now=START))
    anchor, intermediates = node.cert, []
    for depth in range(9):
        node = sub(node, dn=f"C=CH, CN=level {depth}")
        intermediates.append(node.cert)
    ee = leaf(node)
    _refused(PathFailure.TOO_LONG, ee.cert, intermediates, [anchor])


def test_issue_checks_the_ca_key() -> None:
    ca, other = root(), root()
    from petrel.crypto.pki_errors import CredentialError

    with pytest.raises(CredentialError):
        issue(generate_private_key("ed25519").public, "CN=x", ca.cert, other.key)


def test_unsupported_signature_algorithm_is_refused(chain: tuple[Node, Node, Node]) -> None:
    from cryptography import x509 as lib
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    from petrel.crypto.pki_ops import to_name
    from petrel.crypto.x509 import load_certificate

    ca, im, _ = chain  # im has an RSA key: sign a certificate with RSA and SHA-224
    key = generate_private_key("ecdsa", 256)
    cert = (
        lib.CertificateBuilder()
        .subject_name(to_name("CN=sha224"))
        .issuer_name(to_name(im.cert.subject_str))
        .public_key(key.public._key)
        .serial_number(5)
        .not_valid_before(START)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(im.key._key, hashes.SHA224())
    )
    loaded = load_certificate(cert.public_bytes(Encoding.DER))
    assert loaded.scheme is None and "1.2.840.113549.1.1.14" in loaded.scheme_error
    _refused(PathFailure.UNSUPPORTED, loaded, [im.cert], [ca.cert])
