"""IKEv2 AUTH signatures over given octets (the <Signed Octets> of RFC 7296 §2.15).

- Method 14, Digital Signature (RFC 7427 §3): AUTH data = 1-octet length of the
  AlgorithmIdentifier, the AlgorithmIdentifier DER, the signature. RSA PKCS#1 v1.5 and
  RSASSA-PSS, ECDSA (DER Ecdsa-Sig-Value, RFC 7427 §3 / RFC 5480), Ed25519 and Ed448 with the
  identity "hash" (RFC 8420).
- Method 1, RSA Digital Signature (RFC 7296 §3.8): RSASSA-PKCS1-v1_5 with SHA-1 (DigestInfo).
- Methods 9/10/11, ECDSA with SHA-256/P-256, SHA-384/P-384, SHA-512/P-521 (RFC 4754 §3, §7):
  the signature is r || s, each the curve's fixed width.

:func:`sign` / :func:`verify` are the raw operations, also used for certificates and CRLs.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from petrel.crypto.keys import KeyType, PrivateKey, PublicKey
from petrel.crypto.pki_errors import BadSignature, KeyMismatch, MalformedInput, UnsupportedSignature
from petrel.crypto.sigschemes import (
    HASH_SIZES,
    RSA_PKCS1_SHA1,
    SignatureScheme,
    parse_algorithm_identifier,
)
from petrel.wire.registry import AuthMethod, HashAlgorithm

__all__ = [
    "SIGNATURE_METHODS",
    "build_auth",
    "classic_method",
    "default_schemes",
    "parse_auth",
    "sign",
    "verify",
    "verify_auth",
]

SIGNATURE_METHODS = frozenset(
    {
        AuthMethod.RSA_SIG,
        AuthMethod.ECDSA_SHA256_P256,
        AuthMethod.ECDSA_SHA384_P384,
        AuthMethod.ECDSA_SHA512_P521,
        AuthMethod.DIGITAL_SIGNATURE,
    }
)
_HASHES: dict[HashAlgorithm, type[hashes.HashAlgorithm]] = {
    HashAlgorithm.SHA1: hashes.SHA1,
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}
# RFC 4754 §3: method -> (hash, curve bits, width of r and of s).
_ECDSA_METHODS: dict[int, tuple[HashAlgorithm, int, int]] = {
    AuthMethod.ECDSA_SHA256_P256: (HashAlgorithm.SHA2_256, 256, 32),
    AuthMethod.ECDSA_SHA384_P384: (HashAlgorithm.SHA2_384, 384, 48),
    AuthMethod.ECDSA_SHA512_P521: (HashAlgorithm.SHA2_512, 521, 66),
}
_ECDSA_METHOD_BY_BITS = {bits: AuthMethod(m) for m, (_, bits, _) in _ECDSA_METHODS.items()}


def _hash(hash_alg: HashAlgorithm) -> hashes.HashAlgorithm:
    cls = _HASHES.get(hash_alg)
    if cls is None:
        raise UnsupportedSignature(f"hash {hash_alg.name} cannot be used with this key")
    return cls()


def _padding(scheme: SignatureScheme) -> padding.AsymmetricPadding:
    if not scheme.pss:
        return padding.PKCS1v15()
    mgf = _hash(scheme.mgf1_hash or HashAlgorithm.SHA1)
    salt = HASH_SIZES[HashAlgorithm.SHA1] if scheme.salt_length is None else scheme.salt_length
    return padding.PSS(mgf=padding.MGF1(mgf), salt_length=salt)


def _check_key(key_type: KeyType, scheme: SignatureScheme) -> None:
    if key_type is not scheme.key_type:
        raise KeyMismatch(f"a {key_type.value} key cannot make or check {scheme.name} signatures")


def sign(key: PrivateKey, scheme: SignatureScheme, data: bytes) -> bytes:
    """Sign ``data``; ECDSA signatures are DER (as in X.509 and RFC 7427)."""
    _check_key(key.key_type, scheme)
    impl = key._key
    try:
        if scheme.key_type is KeyType.RSA:
            return bytes(impl.sign(bytes(data), _padding(scheme), _hash(scheme.hash)))
        if scheme.key_type is KeyType.ECDSA:
            return bytes(impl.sign(bytes(data), ec.ECDSA(_hash(scheme.hash))))
        return bytes(impl.sign(bytes(data)))
    except ValueError as exc:  # e.g. a PSS salt too long for a small modulus
        raise KeyMismatch(f"cannot sign {scheme.name} with this key: {exc}") from None


def verify(key: PublicKey, scheme: SignatureScheme, data: bytes, signature: bytes) -> None:
    """Check a signature; :class:`BadSignature` unless it verifies."""
    _check_key(key.key_type, scheme)
    impl = key._key
    try:
        if scheme.key_type is KeyType.RSA:
            impl.verify(bytes(signature), bytes(data), _padding(scheme), _hash(scheme.hash))
        elif scheme.key_type is KeyType.ECDSA:
            impl.verify(bytes(signature), bytes(data), ec.ECDSA(_hash(scheme.hash)))
        elif scheme.hash != HashAlgorithm.IDENTITY:
            raise UnsupportedSignature(f"{scheme.key_type.value} signs with the identity hash")
        else:
            impl.verify(bytes(signature), bytes(data))
    except (InvalidSignature, ValueError, TypeError, OverflowError):
        raise BadSignature(f"{scheme.name} signature does not verify") from None


def default_schemes(key: PublicKey | PrivateKey, rsa_pss: bool = False) -> list[SignatureScheme]:
    """RFC 7427 schemes for a key, best first: a hash at least as strong as the key (as
    strongSwan orders them), then for RSA the other SHA-2 hashes. PSS first if ``rsa_pss``."""
    bits = key.bits
    if key.key_type is KeyType.ED25519:
        return [SignatureScheme(KeyType.ED25519, HashAlgorithm.IDENTITY)]
    if key.key_type is KeyType.ED448:
        return [SignatureScheme(KeyType.ED448, HashAlgorithm.IDENTITY)]
    order = [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512]
    if key.key_type is KeyType.ECDSA:
        start = {256: 0, 384: 1}.get(bits, 2)
        return [SignatureScheme(KeyType.ECDSA, h) for h in order[start:]]
    start = 0 if bits <= 3072 else 1 if bits <= 7680 else 2
    chosen = order[start:] + list(reversed(order[:start]))
    pkcs1 = [SignatureScheme(KeyType.RSA, h) for h in chosen]
    return [SignatureScheme.rsa_pss(h) for h in chosen] + pkcs1 if rsa_pss else pkcs1


def classic_method(key: PublicKey | PrivateKey) -> AuthMethod:
    """The pre-RFC 7427 method for a key: 1 for RSA, 9/10/11 by ECDSA curve."""
    if key.key_type is KeyType.RSA:
        return AuthMethod.RSA_SIG
    if key.key_type is KeyType.ECDSA:
        return _ECDSA_METHOD_BY_BITS[key.bits]
    raise UnsupportedSignature(f"{key.key_type.value} keys need RFC 7427 (method 14)")


def build_auth(
    key: PrivateKey, method: AuthMethod, octets: bytes, scheme: SignatureScheme | None = None
) -> bytes:
    """The AUTH payload data for ``method`` signing ``octets``.

    Method 14 needs ``scheme`` (pick one with :func:`default_schemes` and the peer's
    SIGNATURE_HASH_ALGORITHMS; SHA-1 is refused); methods 1 and 9-11 fix their own scheme
    (method 1 is SHA-1 by definition, RFC 7296 §3.8).
    """
    if method == AuthMethod.DIGITAL_SIGNATURE:
        if scheme is None:
            raise ValueError("method 14 needs a signature scheme")
        if scheme.hash == HashAlgorithm.SHA1:  # RFC 8247 §3.2: verified from peers, never sent
            raise UnsupportedSignature("Petrel does not make SHA-1 signatures for method 14")
        algorithm = scheme.algorithm_identifier()
        return bytes([len(algorithm)]) + algorithm + sign(key, scheme, octets)
    if method == AuthMethod.RSA_SIG:
        return sign(key, RSA_PKCS1_SHA1, octets)
    ecdsa = _ECDSA_METHODS.get(method)
    if ecdsa is None:
        raise UnsupportedSignature(f"AUTH method {int(method)} is not a signature method")
    hash_alg, bits, width = ecdsa
    if key.key_type is not KeyType.ECDSA or key.bits != bits:
        raise KeyMismatch(f"AUTH method {int(method)} needs a P-{bits} ECDSA key")
    r, s = decode_dss_signature(sign(key, SignatureScheme(KeyType.ECDSA, hash_alg), octets))
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def parse_auth(method: int, data: bytes) -> tuple[SignatureScheme, bytes]:
    """The scheme and signature in AUTH data (no key needed). Classic ECDSA signatures are
    returned converted to DER, so :func:`verify` can check them."""
    data = bytes(data)
    if method == AuthMethod.DIGITAL_SIGNATURE:
        if not data:
            raise MalformedInput("empty AUTH data")
        length = data[0]
        if length == 0 or 1 + length > len(data):
            raise MalformedInput("AUTH AlgorithmIdentifier length exceeds the payload")
        scheme = parse_algorithm_identifier(data[1 : 1 + length])
        signature = data[1 + length :]
        if not signature:
            raise MalformedInput("AUTH data carries no signature")
        return scheme, signature
    if method == AuthMethod.RSA_SIG:
        if not data:
            raise MalformedInput("empty AUTH data")
        return RSA_PKCS1_SHA1, data
    if method in _ECDSA_METHODS:
        hash_alg, _, width = _ECDSA_METHODS[method]
        if len(data) != 2 * width:
            raise MalformedInput(f"ECDSA AUTH data must be {2 * width} octets (RFC 4754 §7)")
        r, s = int.from_bytes(data[:width], "big"), int.from_bytes(data[width:], "big")
        return SignatureScheme(KeyType.ECDSA, hash_alg), encode_dss_signature(r, s)
    raise UnsupportedSignature(f"AUTH method {method} is not a supported signature method")


def verify_auth(key: PublicKey, method: int, data: bytes, octets: bytes) -> SignatureScheme:
    """Check AUTH data of a signature method against ``octets``; the scheme used, or an error:
    :class:`MalformedInput`, :class:`UnsupportedSignature`, :class:`KeyMismatch` (e.g. an RSA
    key for method 9, a P-384 key for method 9) or :class:`BadSignature`."""
    scheme, signature = parse_auth(method, data)
    if method in _ECDSA_METHODS:
        bits = _ECDSA_METHODS[method][1]
        if key.key_type is not KeyType.ECDSA or key.bits != bits:
            raise KeyMismatch(f"AUTH method {method} needs a P-{bits} ECDSA key")
    verify(key, scheme, octets, signature)
    return scheme


def usable_hashes(schemes: Iterable[SignatureScheme]) -> list[HashAlgorithm]:
    """The SIGNATURE_HASH_ALGORITHMS values (RFC 7427 §4) these schemes need, in order."""
    out: list[HashAlgorithm] = []
    for scheme in schemes:
        if scheme.hash not in out:
            out.append(scheme.hash)
    return out
