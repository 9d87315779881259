"""AUTH signatures: RFC 7427 Appendix A AlgorithmIdentifiers byte-exact, every scheme round
trip, cross-checks with the library, classic methods 1 and 9-11 (RFC 4754), tampering, and
hostile AUTH data (typed errors only)."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.crypto import sigschemes as S
from petrel.crypto.errors import CryptoError
from petrel.crypto.keys import (
    KeyType,
    PrivateKey,
    generate_private_key,
    public_key_from_library,
)
from petrel.crypto.pki_errors import BadSignature, KeyMismatch, MalformedInput, UnsupportedSignature
from petrel.crypto.signatures import (
    build_auth,
    classic_method,
    default_schemes,
    parse_auth,
    sign,
    verify_auth,
)
from petrel.wire.registry import AuthMethod, HashAlgorithm

h = bytes.fromhex
DS = AuthMethod.DIGITAL_SIGNATURE
OCTETS = b"IKE_SA_INIT message | Nonce | prf(SK_p, RestOfID)" * 3

# RFC 7427 Appendix A (A.1 PKCS#1 v1.5, A.3 ECDSA, A.4.3 PSS SHA-256 as corrected by erratum
# 4305: no trailerField, lengths adjusted) and RFC 8420 §2 (EdDSA).
APPENDIX_A = {
    "rsa-sha1": "300d06092a864886f70d0101050500",
    "rsa-sha256": "300d06092a864886f70d01010b0500",
    "rsa-sha384": "300d06092a864886f70d01010c0500",
    "rsa-sha512": "300d06092a864886f70d01010d0500",
    "ecdsa-sha256": "300a06082a8648ce3d040302",
    "ecdsa-sha384": "300a06082a8648ce3d040303",
    "ecdsa-sha512": "300a06082a8648ce3d040304",
    "rsa/pss-sha256": "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c"
    "301a06092a864886f70d010108300d06096086480165030402010500a203020120",
    "ed25519": "300506032b6570",
    "ed448": "300506032b6571",
}
SCHEMES = {
    "rsa-sha1": S.RSA_PKCS1_SHA1,
    "rsa-sha256": S.RSA_PKCS1_SHA256,
    "rsa-sha384": S.RSA_PKCS1_SHA384,
    "rsa-sha512": S.RSA_PKCS1_SHA512,
    "ecdsa-sha256": S.ECDSA_SHA256,
    "ecdsa-sha384": S.ECDSA_SHA384,
    "ecdsa-sha512": S.ECDSA_SHA512,
    "rsa/pss-sha256": S.RSA_PSS_SHA256,
    "ed25519": S.ED25519,
    "ed448": S.ED448,
}
# RFC 7427 A.4.3 as printed (with trailerField 1) and A.4.1 (empty parameters = SHA-1 defaults).
PSS_SHA256_ORIGINAL = (
    "304606092a864886f70d01010a3039a00f300d06096086480165030402010500a11c301a06092a864886f7"
    "0d010108300d06096086480165030402010500a203020120a303020101"
)
PSS_EMPTY = "300d06092a864886f70d01010a3000"


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {
        "rsa": generate_private_key("rsa", 2048),
        "p256": generate_private_key("ecdsa", 256),
        "p384": generate_private_key("ecdsa", 384),
        "p521": generate_private_key("ecdsa", 521),
        "ed25519": generate_private_key("ed25519"),
        "ed448": generate_private_key("ed448"),
    }


def _key_for(scheme: S.SignatureScheme, keys: dict[str, PrivateKey]) -> PrivateKey:
    return {
        KeyType.RSA: keys["rsa"],
        KeyType.ECDSA: keys["p384"],
        KeyType.ED25519: keys["ed25519"],
        KeyType.ED448: keys["ed448"],
    }[scheme.key_type]


@pytest.mark.parametrize("name", sorted(APPENDIX_A))
def test_algorithm_identifiers_are_byte_exact(name: str) -> None:
    assert SCHEMES[name].algorithm_identifier() == h(APPENDIX_A[name])
    assert S.parse_algorithm_identifier(h(APPENDIX_A[name])) == SCHEMES[name]
    assert SCHEMES[name].name == name


def test_pss_original_form_and_defaults_parse() -> None:
    assert S.parse_algorithm_identifier(h(PSS_SHA256_ORIGINAL)) == S.RSA_PSS_SHA256
    default = S.parse_algorithm_identifier(h(PSS_EMPTY))
    assert (default.hash, default.mgf1_hash, default.salt_length) == (
        HashAlgorithm.SHA1,
        HashAlgorithm.SHA1,
        20,
    )
    assert default.algorithm_identifier() == h(PSS_EMPTY)


@pytest.mark.parametrize("bits", [384, 512])
def test_pss_sha384_sha512_identifiers(bits: int) -> None:
    scheme = S.RSA_PSS_SHA384 if bits == 384 else S.RSA_PSS_SHA512
    blob = scheme.algorithm_identifier()
    assert blob[:2] == h("3041") and blob.endswith(bytes([0xA2, 3, 2, 1, bits // 8]))
    assert S.parse_algorithm_identifier(blob) == scheme


def _all_schemes(keys: dict[str, PrivateKey]) -> list[tuple[PrivateKey, S.SignatureScheme]]:
    out = [(keys["rsa"], s) for s in default_schemes(keys["rsa"], rsa_pss=True)]
    out += [(keys[c], s) for c in ("p256", "p384", "p521") for s in default_schemes(keys[c])]
    out += [(keys["p256"], S.ECDSA_SHA512), (keys["p521"], S.ECDSA_SHA256)]

    out += [(keys["ed25519"], S.ED25519), (keys["ed448"], S.ED448)]
    return out


def test_every_scheme_round_trips_and_tamper_fails(keys: dict[str, PrivateKey]) -> None:
    pairs = _all_schemes(keys)
    assert len(pairs) == 16
    for key, scheme in pairs:
        data = build_auth(key, DS, OCTETS, scheme)
        assert data[0] == len(scheme.algorithm_identifier())
        assert verify_auth(key.public, DS, data, OCTETS) == scheme
        with pytest.raises(BadSignature):
            verify_auth(key.public, DS, data, OCTETS + b"x")
        bad = bytearray(data)
        bad[-1] ^= 0x01
        with pytest.raises(BadSignature):
            verify_auth(key.public, DS, bytes(bad), OCTETS)


@pytest.mark.parametrize(
    ("curve", "method", "width"),
    [
        ("p256", AuthMethod.ECDSA_SHA256_P256, 32),
        ("p384", AuthMethod.ECDSA_SHA384_P384, 48),
        ("p521", AuthMethod.ECDSA_SHA512_P521, 66),
    ],
)
def test_classic_ecdsa_is_fixed_width_r_s(
    keys: dict[str, PrivateKey], curve: str, method: AuthMethod, width: int
) -> None:
    key = keys[curve]
    assert classic_method(key) == method
    data = build_auth(key, method, OCTETS)
    assert len(data) == 2 * width
    expected = {32: S.ECDSA_SHA256, 48: S.ECDSA_SHA384, 66: S.ECDSA_SHA512}[width]
    assert verify_auth(key.public, method, data, OCTETS) == expected
    # Checked independently: r || s is a valid signature once DER-encoded for the library.
    hash_cls = {32: hashes.SHA256, 48: hashes.SHA384, 66: hashes.SHA512}[width]
    r, s = int.from_bytes(data[:width], "big"), int.from_bytes(data[width:], "big")
    key.public._key.verify(encode_dss_signature(r, s), OCTETS, ec.ECDSA(hash_cls()))
    with pytest.raises(MalformedInput):
        verify_auth(key.public, method, data[:-1], OCTETS)


def test_classic_rsa_is_pkcs1_sha1(keys: dict[str, PrivateKey]) -> None:
    key = keys["rsa"]
    assert classic_method(key) == AuthMethod.RSA_SIG
    data = build_auth(key, AuthMethod.RSA_SIG, OCTETS)
    key.public._key.verify(data, OCTETS, padding.PKCS1v15(), hashes.SHA1())
    assert verify_auth(key.public, AuthMethod.RSA_SIG, data, OCTETS) == S.RSA_PKCS1_SHA1


def test_classic_methods_refuse_wrong_curves_and_eddsa(keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(KeyMismatch):
        build_auth(keys["p384"], AuthMethod.ECDSA_SHA256_P256, OCTETS)
    data = build_auth(keys["p256"], AuthMethod.ECDSA_SHA256_P256, OCTETS)
    with pytest.raises(KeyMismatch):  # right width for P-256, but the key is P-384
        verify_auth(keys["p384"].public, AuthMethod.ECDSA_SHA256_P256, data, OCTETS)
    with pytest.raises(KeyMismatch):
        verify_auth(keys["rsa"].public, AuthMethod.ECDSA_SHA256_P256, data, OCTETS)
    with pytest.raises(UnsupportedSignature):
        classic_method(keys["ed25519"])


def test_ours_verified_by_the_library(keys: dict[str, PrivateKey]) -> None:
    for key, scheme in _all_schemes(keys):
        sig = sign(key, scheme, OCTETS)
        lib = key.public._key
        hash_cls = {
            HashAlgorithm.SHA1: hashes.SHA1,
            HashAlgorithm.SHA2_256: hashes.SHA256,
            HashAlgorithm.SHA2_384: hashes.SHA384,
            HashAlgorithm.SHA2_512: hashes.SHA512,
        }.get(scheme.hash)
        if scheme.pss:
            assert hash_cls is not None
            pss = padding.PSS(padding.MGF1(hash_cls()), scheme.salt_length or 0)
            lib.verify(sig, OCTETS, pss, hash_cls())
        elif scheme.key_type is KeyType.RSA:
            assert hash_cls is not None
            lib.verify(sig, OCTETS, padding.PKCS1v15(), hash_cls())
        elif scheme.key_type is KeyType.ECDSA:
            assert hash_cls is not None
            decode_dss_signature(sig)  # DER, as RFC 7427 wants for ECDSA
            lib.verify(sig, OCTETS, ec.ECDSA(hash_cls()))
        else:
            lib.verify(sig, OCTETS)


def test_library_signatures_verified_by_ours() -> None:
    rsa_key = rsa.generate_private_key(65537, 3072)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed4_key = ed448.Ed448PrivateKey.generate()
    pss = padding.PSS(padding.MGF1(hashes.SHA384()), 48)
    cases = [
        (rsa_key, S.RSA_PSS_SHA384, rsa_key.sign(OCTETS, pss, hashes.SHA384())),
        (rsa_key, S.RSA_PKCS1_SHA512, rsa_key.sign(OCTETS, padding.PKCS1v15(), hashes.SHA512())),
        (ec_key, S.ECDSA_SHA256, ec_key.sign(OCTETS, ec.ECDSA(hashes.SHA256()))),
        (ed_key, S.ED25519, ed_key.sign(OCTETS)),
        (ed4_key, S.ED448, ed4_key.sign(OCTETS)),
    ]
    for lib_key, scheme, sig in cases:
        public = public_key_from_library(lib_key.public_key())
        algorithm = scheme.algorithm_identifier()
        data = bytes([len(algorithm)]) + algorithm + sig
        assert verify_auth(public, DS, data, OCTETS) == scheme
    # RSA method 1: PKCS#1 v1.5 with SHA-1 made by the library.
    sig = rsa_key.sign(OCTETS, padding.PKCS1v15(), hashes.SHA1())
    public = public_key_from_library(rsa_key.public_key())
    assert verify_auth(public, AuthMethod.RSA_SIG, sig, OCTETS) == S.RSA_PKCS1_SHA1


def test_sha1_is_verify_only(keys: dict[str, PrivateKey]) -> None:
    for key in keys.values():
        assert all(s.hash != HashAlgorithm.SHA1 for s in default_schemes(key, rsa_pss=True))
    with pytest.raises(UnsupportedSignature):
        build_auth(keys["rsa"], DS, OCTETS, S.RSA_PKCS1_SHA1)
    # A peer's SHA-1 signature (RFC 7427 A.1 sha1WithRSAEncryption) still verifies.
    for key, scheme in (
        (keys["rsa"], S.RSA_PKCS1_SHA1),
        (keys["p256"], S.SignatureScheme(KeyType.ECDSA, HashAlgorithm.SHA1)),
    ):
        algorithm = scheme.algorithm_identifier()
        data = bytes([len(algorithm)]) + algorithm + sign(key, scheme, OCTETS)
        assert verify_auth(key.public, DS, data, OCTETS) == scheme


def test_default_scheme_order_follows_key_strength(keys: dict[str, PrivateKey]) -> None:
    names = [s.name for s in default_schemes(keys["rsa"])]
    assert names == ["rsa-sha256", "rsa-sha384", "rsa-sha512"]
    assert [s.name for s in default_schemes(keys["rsa"], rsa_pss=True)][:1] == ["rsa/pss-sha256"]
    assert [s.name for s in default_schemes(keys["p384"])] == ["ecdsa-sha384", "ecdsa-sha512"]
    assert [s.name for s in default_schemes(keys["p521"])] == ["ecdsa-sha512"]
    assert default_schemes(keys["ed448"]) == [S.ED448]
    big = generate_private_key("rsa", 4096)
    assert [s.name for s in default_schemes(big)] == ["rsa-sha384", "rsa-sha512", "rsa-sha256"]


def test_wrong_key_type_is_key_mismatch(keys: dict[str, PrivateKey]) -> None:
    data = build_auth(keys["rsa"], DS, OCTETS, S.RSA_PKCS1_SHA256)
    for other in ("p256", "ed25519", "ed448"):
        with pytest.raises(KeyMismatch):
            verify_auth(keys[other].public, DS, data, OCTETS)
    with pytest.raises(KeyMismatch):
        sign(keys["ed25519"], S.ECDSA_SHA256, OCTETS)


HOSTILE = [
    ("", MalformedInput),  # empty
    ("00", MalformedInput),  # zero-length AlgorithmIdentifier
    ("0f300d06092a86", MalformedInput),  # length beyond the payload
    ("0f300d06092a864886f70d01010b0500", MalformedInput),  # no signature after it
    ("11300d06092a864886f70d01010b0500", MalformedInput),  # length too long by two
    ("0e300d06092a864886f70d01010b05aa", MalformedInput),  # inner length mismatch
    ("0d308006092a864886f70d01010b0500", MalformedInput),  # indefinite length
    ("1030810d06092a864886f70d01010b0500ff", MalformedInput),  # non-minimal length
    ("0f300d06092a864886f70d0101040500ff", UnsupportedSignature),  # md5WithRSAEncryption
    ("09300706032b65700500ff", MalformedInput),  # Ed25519 with parameters
    ("0f300d06092a864886f70d01010b0400ff", MalformedInput),  # params not NULL
    ("0b3009060480808001050000ff", MalformedInput),  # OID arc not minimal
    ("03020100ff", MalformedInput),  # not a SEQUENCE
    ("14301206092a864886f70d01010a3005a303020102ff", MalformedInput),  # PSS trailer 2
    ("14301206092a864886f70d01010a3005a203020181ff", MalformedInput),  # PSS salt negative
    # PSS with an unknown hash OID (sha-224's neighbour 2.16.840.1.101.3.4.2.0).
    ("20301e06092a864886f70d01010a3011a00f300d06096086480165030402000500ff", UnsupportedSignature),
    ("0c300a06082a8648ce3d040309ff", UnsupportedSignature),  # unknown ecdsa-with OID
    ("0c300a06082a8648ce3d040389ff", MalformedInput),  # OID cut inside an arc
]


@pytest.mark.parametrize(("hexdata", "error"), HOSTILE)
def test_hostile_auth_data_is_a_typed_error(
    keys: dict[str, PrivateKey], hexdata: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        parse_auth(DS, h(hexdata))
    with pytest.raises(CryptoError):
        verify_auth(keys["rsa"].public, DS, h(hexdata), OCTETS)


@pytest.mark.parametrize("method", [0, 2, 3, 12, 13, 200])
def test_non_signature_methods_are_unsupported(keys: dict[str, PrivateKey], method: int) -> None:
    with pytest.raises(UnsupportedSignature):
        parse_auth(method, b"\x01\x02")
    with pytest.raises(UnsupportedSignature):
        build_auth(keys["rsa"], method, OCTETS)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([1, 9, 10, 11, 14]))
def test_random_auth_data_never_crashes(data: bytes, method: int) -> None:
    key = generate_private_key("ed25519") if method == 14 else None
    try:
        scheme, _ = parse_auth(method, data)
        if key is not None:
            verify_auth(key.public, method, data, OCTETS)
    except CryptoError:
        return
    assert scheme is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_algorithm_identifiers_never_crash(data: bytes) -> None:
    with contextlib.suppress(CryptoError):
        S.parse_algorithm_identifier(b"\x30" + bytes([len(data)]) + data)
