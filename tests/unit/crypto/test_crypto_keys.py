"""Key loading: PEM and DER, PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 and legacy encrypted PEM,
SubjectPublicKeyInfo and PKCS#1 public keys; key IDs; typed errors for bad input."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization as ser

from petrel.crypto import der
from petrel.crypto.keys import KeyType, generate_private_key, load_private_key, load_public_key
from petrel.crypto.pki_errors import CredentialError, MalformedInput, PassphraseError

PKCS8 = ser.PrivateFormat.PKCS8
TRADITIONAL = ser.PrivateFormat.TraditionalOpenSSL
NONE = ser.NoEncryption()


@pytest.mark.parametrize(
    ("kind", "bits", "described"),
    [
        ("rsa", 2048, "RSA 2048 bits"),
        ("ecdsa", 256, "ECDSA 256 bits (P-256)"),
        ("ecdsa", 384, "ECDSA 384 bits (P-384)"),
        ("ecdsa", 521, "ECDSA 521 bits (P-521)"),
        ("ed25519", None, "ED25519 256 bits"),
        ("ed448", None, "ED448 456 bits"),
    ],
)
def test_every_format_loads_the_same_key(kind: str, bits: int | None, described: str) -> None:
    key = generate_private_key(kind, bits)
    assert key.public.describe() == described
    lib = key._key
    formats = [(ser.Encoding.PEM, PKCS8), (ser.Encoding.DER, PKCS8)]
    if kind in ("rsa", "ecdsa"):  # PKCS#1 / SEC1
        formats += [(ser.Encoding.PEM, TRADITIONAL), (ser.Encoding.DER, TRADITIONAL)]
    for encoding, fmt in formats:
        loaded = load_private_key(lib.private_bytes(encoding, fmt, NONE))
        assert loaded.public == key.public
        assert loaded.key_type is KeyType(kind)
    secret = b"correct horse"
    for encoding in (ser.Encoding.PEM, ser.Encoding.DER):
        blob = lib.private_bytes(encoding, PKCS8, ser.BestAvailableEncryption(secret))
        assert load_private_key(blob, secret).public == key.public
        with pytest.raises(PassphraseError):
            load_private_key(blob)
        with pytest.raises(PassphraseError):
            load_private_key(blob, b"wrong")
    assert load_private_key(key.pem(secret), secret).public == key.public
    assert load_public_key(key.public.pem()) == key.public
    assert load_public_key(key.public.spki) == key.public


def test_legacy_encrypted_pem_and_pkcs1_public_keys() -> None:
    key = generate_private_key("rsa", 2048)
    legacy = key._key.private_bytes(
        ser.Encoding.PEM, TRADITIONAL, ser.BestAvailableEncryption(b"pw")
    )
    assert b"Proc-Type: 4,ENCRYPTED" in legacy
    assert load_private_key(legacy, b"pw").public == key.public
    with pytest.raises(PassphraseError):
        load_private_key(legacy)
    pkcs1 = key.public._key.public_bytes(ser.Encoding.DER, ser.PublicFormat.PKCS1)
    assert load_public_key(pkcs1) == key.public
    pkcs1_pem = key.public._key.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1)
    assert load_public_key(pkcs1_pem) == key.public


def test_key_ids_follow_rfc_7296_and_rfc_5280() -> None:
    key = generate_private_key("ecdsa", 256)
    assert key.public.spki_sha1 == hashlib.sha1(key.public.spki).digest()
    bit_string = der.read_one(key.public.spki).children()[1]
    assert key.public.pubkey_sha1 == hashlib.sha1(bit_string.value[1:]).digest()


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", b"\x30"],
)
def test_garbage_is_a_credential_error(data: bytes) -> None:
    with pytest.raises(CredentialError):
        load_private_key(data)
    with pytest.raises(CredentialError):
        load_public_key(data)


def test_unsupported_key_types_and_sizes() -> None:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, x25519

    for lib in (
        dsa.generate_private_key(2048),
        x25519.X25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP256K1()),
    ):
        blob = lib.private_bytes(ser.Encoding.PEM, PKCS8, NONE)
        with pytest.raises(CredentialError):
            load_private_key(blob)
    for kind, bits in (("rsa", 1024), ("ecdsa", 224), ("ed25519", 256), ("dsa", None)):
        with pytest.raises((CredentialError, ValueError)):
            generate_private_key(kind, bits)


def test_der_reader_is_strict() -> None:
    assert der.read_one(bytes.fromhex("0500")).tag == der.NULL
    for bad in ("05", "0501", "050000", "058100", "0580", "1f0100", "0485ffffffffff"):
        with pytest.raises(MalformedInput):
            der.read_one(bytes.fromhex(bad))
    assert der.decode_int(bytes.fromhex("00ff")) == 255
    for bad in ("", "0001", "ff80"):
        with pytest.raises(MalformedInput):
            der.decode_int(bytes.fromhex(bad))
    oid = "1.2.840.113549.1.1.10"
    assert der.decode_oid(der.read_one(der.encode_oid(oid)).value) == oid
    assert der.encode_int(128) == bytes.fromhex("02020080")
    assert der.tlv(der.OCTET_STRING, b"x" * 200)[:3] == bytes.fromhex("0481c8")


def test_every_wrong_passphrase_is_a_passphrase_error() -> None:
    """About one wrong passphrase in 256 decrypts to garbage with valid padding, which then
    fails to parse: still a wrong passphrase, never 'not a private key' (it was flaky)."""
    key = generate_private_key("ed448")
    blob = key._key.private_bytes(
        ser.Encoding.DER, PKCS8, ser.BestAvailableEncryption(b"correct horse")
    )
    for attempt in range(1500):
        with pytest.raises(PassphraseError):
            load_private_key(blob, b"wrong %d" % attempt)
