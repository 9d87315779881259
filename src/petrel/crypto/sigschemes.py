"""Signature schemes and their AlgorithmIdentifier encoding (RFC 7427 §3 and Appendix A).

A :class:`SignatureScheme` names what a signature is: key type, hash (RFC 7427 §7
SIGNATURE_HASH_ALGORITHMS value; IDENTITY for EdDSA, RFC 8420) and, for RSASSA-PSS, the
MGF1 hash and salt length (RFC 4055 §3.1). The same values describe the AUTH payload of
method 14 and the signatures inside X.509 certificates and CRLs.

Parsing a peer's AlgorithmIdentifier is strict: the DER is bounds-checked, the OID must be
one of the schemes below, parameters must have the form the RFCs give, and RSASSA-PSS
parameters are read field by field with their defaults (SHA-1, MGF1-SHA-1, 20, trailer 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from petrel.crypto import der
from petrel.crypto.keys import KeyType
from petrel.crypto.pki_errors import MalformedInput, UnsupportedSignature
from petrel.wire.registry import HashAlgorithm

__all__ = [
    "ECDSA_SHA256",
    "ECDSA_SHA384",
    "ECDSA_SHA512",
    "ED448",
    "ED25519",
    "HASH_SIZES",
    "RSA_PKCS1_SHA1",
    "RSA_PKCS1_SHA256",
    "RSA_PKCS1_SHA384",
    "RSA_PKCS1_SHA512",
    "RSA_PSS_SHA256",
    "RSA_PSS_SHA384",
    "RSA_PSS_SHA512",
    "SignatureScheme",
    "parse_algorithm_identifier",
]

HASH_SIZES = {
    HashAlgorithm.SHA1: 20,
    HashAlgorithm.SHA2_256: 32,
    HashAlgorithm.SHA2_384: 48,
    HashAlgorithm.SHA2_512: 64,
}
_HASH_NAMES = {
    HashAlgorithm.SHA1: "sha1",
    HashAlgorithm.SHA2_256: "sha256",
    HashAlgorithm.SHA2_384: "sha384",
    HashAlgorithm.SHA2_512: "sha512",
    HashAlgorithm.IDENTITY: "identity",
}
_MAX_SALT = 1024

_RSASSA_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"
_HASH_OIDS = {
    "1.3.14.3.2.26": HashAlgorithm.SHA1,
    "2.16.840.1.101.3.4.2.1": HashAlgorithm.SHA2_256,
    "2.16.840.1.101.3.4.2.2": HashAlgorithm.SHA2_384,
    "2.16.840.1.101.3.4.2.3": HashAlgorithm.SHA2_512,
}
_OID_OF_HASH = {h: oid for oid, h in _HASH_OIDS.items()}
# OID -> (key type, hash, parameters). "null": written as NULL, read as NULL or absent
# (RFC 4055 §5); "none": written absent, read absent or NULL (RFC 5758 §3.2);
# "absent": must be absent (RFC 8410 §3).
_SIMPLE_OIDS: dict[str, tuple[KeyType, HashAlgorithm, str]] = {
    "1.2.840.113549.1.1.5": (KeyType.RSA, HashAlgorithm.SHA1, "null"),
    "1.2.840.113549.1.1.11": (KeyType.RSA, HashAlgorithm.SHA2_256, "null"),
    "1.2.840.113549.1.1.12": (KeyType.RSA, HashAlgorithm.SHA2_384, "null"),
    "1.2.840.113549.1.1.13": (KeyType.RSA, HashAlgorithm.SHA2_512, "null"),
    "1.2.840.10045.4.1": (KeyType.ECDSA, HashAlgorithm.SHA1, "none"),
    "1.2.840.10045.4.3.2": (KeyType.ECDSA, HashAlgorithm.SHA2_256, "none"),
    "1.2.840.10045.4.3.3": (KeyType.ECDSA, HashAlgorithm.SHA2_384, "none"),
    "1.2.840.10045.4.3.4": (KeyType.ECDSA, HashAlgorithm.SHA2_512, "none"),
    "1.3.101.112": (KeyType.ED25519, HashAlgorithm.IDENTITY, "absent"),
    "1.3.101.113": (KeyType.ED448, HashAlgorithm.IDENTITY, "absent"),
}
_OID_OF_SIMPLE = {(k, h): oid for oid, (k, h, _) in _SIMPLE_OIDS.items()}


@dataclass(frozen=True, slots=True)
class SignatureScheme:
    """What a signature is made with. ``pss`` schemes carry their MGF1 hash and salt length."""

    key_type: KeyType
    hash: HashAlgorithm
    pss: bool = False
    mgf1_hash: HashAlgorithm | None = None
    salt_length: int | None = None

    @classmethod
    def rsa_pss(cls, hash_alg: HashAlgorithm) -> SignatureScheme:
        """RSASSA-PSS as IKEv2 uses it: MGF1 with the same hash, salt = hash length."""
        return cls(KeyType.RSA, hash_alg, True, hash_alg, HASH_SIZES[hash_alg])

    @property
    def name(self) -> str:
        """strongSwan-like: ``rsa-sha256``, ``rsa/pss-sha384``, ``ecdsa-sha256``, ``ed25519``."""
        if self.key_type in (KeyType.ED25519, KeyType.ED448):
            return self.key_type.value
        kind = "rsa/pss" if self.pss else self.key_type.value
        text = f"{kind}-{_HASH_NAMES[self.hash]}"
        if self.pss and self.mgf1_hash != self.hash:
            text += f"-mgf1{_HASH_NAMES.get(self.mgf1_hash or self.hash, '?')}"
        return text

    def __str__(self) -> str:
        return self.name

    def algorithm_identifier(self) -> bytes:
        """The DER AlgorithmIdentifier (RFC 7427 Appendix A; PSS in its errata form)."""
        if not self.pss:
            oid = _OID_OF_SIMPLE.get((self.key_type, self.hash))
            if oid is None:
                raise UnsupportedSignature(f"no AlgorithmIdentifier for {self.name}")
            params = der.tlv(der.NULL, b"") if _SIMPLE_OIDS[oid][2] == "null" else b""
            return der.tlv(der.SEQUENCE, der.encode_oid(oid) + params)
        return der.tlv(der.SEQUENCE, der.encode_oid(_RSASSA_PSS) + self._pss_params())

    def _pss_params(self) -> bytes:
        mgf1 = self.mgf1_hash or HashAlgorithm.SHA1
        salt = HASH_SIZES[HashAlgorithm.SHA1] if self.salt_length is None else self.salt_length
        fields = b""
        if self.hash != HashAlgorithm.SHA1:
            fields += der.tlv(der.context(0), _hash_identifier(self.hash))
        if mgf1 != HashAlgorithm.SHA1:
            mgf = der.tlv(der.SEQUENCE, der.encode_oid(_MGF1) + _hash_identifier(mgf1))
            fields += der.tlv(der.context(1), mgf)
        if salt != HASH_SIZES[HashAlgorithm.SHA1]:
            fields += der.tlv(der.context(2), der.encode_int(salt))
        return der.tlv(der.SEQUENCE, fields)


def _hash_identifier(hash_alg: HashAlgorithm) -> bytes:
    oid = _OID_OF_HASH.get(hash_alg)
    if oid is None:
        raise UnsupportedSignature(f"hash {hash_alg!r} has no OID")
    return der.tlv(der.SEQUENCE, der.encode_oid(oid) + der.tlv(der.NULL, b""))


RSA_PKCS1_SHA1 = SignatureScheme(KeyType.RSA, HashAlgorithm.SHA1)
RSA_PKCS1_SHA256 = SignatureScheme(KeyType.RSA, HashAlgorithm.SHA2_256)
RSA_PKCS1_SHA384 = SignatureScheme(KeyType.RSA, HashAlgorithm.SHA2_384)
RSA_PKCS1_SHA512 = SignatureScheme(KeyType.RSA, HashAlgorithm.SHA2_512)
RSA_PSS_SHA256 = SignatureScheme.rsa_pss(HashAlgorithm.SHA2_256)
RSA_PSS_SHA384 = SignatureScheme.rsa_pss(HashAlgorithm.SHA2_384)
RSA_PSS_SHA512 = SignatureScheme.rsa_pss(HashAlgorithm.SHA2_512)
ECDSA_SHA256 = SignatureScheme(KeyType.ECDSA, HashAlgorithm.SHA2_256)
ECDSA_SHA384 = SignatureScheme(KeyType.ECDSA, HashAlgorithm.SHA2_384)
ECDSA_SHA512 = SignatureScheme(KeyType.ECDSA, HashAlgorithm.SHA2_512)
ED25519 = SignatureScheme(KeyType.ED25519, HashAlgorithm.IDENTITY)
ED448 = SignatureScheme(KeyType.ED448, HashAlgorithm.IDENTITY)


def _hash_from_identifier(element: der.Tlv, what: str) -> HashAlgorithm:
    parts = element.expect(der.SEQUENCE, what).children()
    if not 1 <= len(parts) <= 2:
        raise MalformedInput(f"{what}: malformed AlgorithmIdentifier")
    oid = der.decode_oid(parts[0].expect(der.OID, what).value)
    if len(parts) == 2 and parts[1].raw != b"\x05\x00":
        raise MalformedInput(f"{what}: hash parameters must be NULL or absent")
    hash_alg = _HASH_OIDS.get(oid)
    if hash_alg is None:
        raise UnsupportedSignature(f"{what}: unsupported hash algorithm {oid}")
    return hash_alg


def _parse_pss(params: der.Tlv) -> SignatureScheme:
    hash_alg = mgf1 = HashAlgorithm.SHA1
    salt = HASH_SIZES[HashAlgorithm.SHA1]
    last = -1
    for element in params.expect(der.SEQUENCE, "RSASSA-PSS-params").children():
        number = element.tag - der.context(0)
        if not 0 <= number <= 3 or number <= last:
            raise MalformedInput("RSASSA-PSS-params: unexpected or repeated field")
        last = number
        (inner,) = _single(element)
        if number == 0:
            hash_alg = _hash_from_identifier(inner, "PSS hashAlgorithm")
        elif number == 1:
            mgf = inner.expect(der.SEQUENCE, "PSS maskGenAlgorithm").children()
            if len(mgf) != 2 or der.decode_oid(mgf[0].expect(der.OID).value) != _MGF1:
                raise UnsupportedSignature("PSS mask generation function is not MGF1")
            mgf1 = _hash_from_identifier(mgf[1], "MGF1 hash")
        elif number == 2:
            salt = der.decode_int(inner.expect(der.INTEGER, "PSS saltLength").value)
            if not 0 <= salt <= _MAX_SALT:
                raise MalformedInput(f"PSS salt length {salt} out of range")
        elif der.decode_int(inner.expect(der.INTEGER, "PSS trailerField").value) != 1:
            raise MalformedInput("PSS trailerField must be 1 (RFC 4055 §3.1)")
    return SignatureScheme(KeyType.RSA, hash_alg, True, mgf1, salt)


def _single(element: der.Tlv) -> list[der.Tlv]:
    inner = element.children()
    if len(inner) != 1:
        raise MalformedInput("explicitly tagged field must hold one element")
    return inner


def parse_algorithm_identifier(data: bytes) -> SignatureScheme:
    """The signature scheme an AlgorithmIdentifier names (exactly ``data``, no trailing bytes).

    Unknown OIDs and hashes raise :class:`UnsupportedSignature`; malformed DER or parameters
    of the wrong form raise :class:`MalformedInput`.
    """
    parts = der.read_one(data).expect(der.SEQUENCE, "AlgorithmIdentifier").children()
    if not 1 <= len(parts) <= 2:
        raise MalformedInput("AlgorithmIdentifier must hold an OID and optional parameters")
    oid = der.decode_oid(parts[0].expect(der.OID, "AlgorithmIdentifier").value)
    params = parts[1] if len(parts) == 2 else None
    if oid == _RSASSA_PSS:
        if params is None:
            raise MalformedInput("RSASSA-PSS AlgorithmIdentifier needs parameters")
        return _parse_pss(params)
    known = _SIMPLE_OIDS.get(oid)
    if known is None:
        raise UnsupportedSignature(f"unsupported signature algorithm {oid}")
    key_type, hash_alg, form = known
    if params is not None and (form == "absent" or params.raw != b"\x05\x00"):
        raise MalformedInput(f"signature algorithm {oid}: unexpected parameters")
    return SignatureScheme(key_type, hash_alg)
