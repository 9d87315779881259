"""swanctl ``local.auth`` / ``remote.auth`` strings and their enforcement, as strongSwan's
auth_cfg (add_pubkey_constraints / complies) does it.

Syntax: ``psk``, ``null`` (RFC 7619; not in strongSwan) or a public-key constraint: tokens
joined by ``-``. Key tokens ``pubkey``, ``rsa``, ``rsa/pss``, ``ecdsa``, ``ed25519``,
``ed448`` (each optionally ``ike:``-prefixed); after ``rsa``, ``rsa/pss`` or ``ecdsa`` a
number is a minimum key size; hash tokens ``sha1 sha256 sha384 sha512 identity`` add
signature schemes for the key type before them (all types after ``pubkey``). Examples:
``rsa-2048``, ``ecdsa-256-sha256``, ``rsa-3072-sha384-ecdsa-256-sha384``,
``ike:rsa/pss-sha256``, ``pubkey-sha384-sha256``, ``ed25519-identity``. strongSwan knows no
``rsa/ecdsa`` token (it would ignore it and the hashes after it); Petrel refuses it, as any
unknown token, instead of ignoring it.

Enforcement after a successful signature check (strongSwan semantics):

- key sizes: if any size is given, every RSA/ECDSA key in the trust chain (end entity,
  intermediates, root) must meet a size given for its type (Ed25519/Ed448 keys are not sized);
- trust-chain schemes (tokens without ``ike:``): each signature in the chain must be one of
  them, if any are given;
- IKE schemes: the AUTH signature must be one of the ``ike:`` schemes, or when there are none
  (and ``signature_authentication_constraints`` is on, the default) one of the chain schemes.

As in strongSwan, a bare key type restricts nothing (``rsa`` alone = ``pubkey``); RSASSA-PSS
only satisfies ``rsa``/``pubkey`` hash tokens when ``rsa_pss`` is on (strongswan.conf
``charon.rsa_pss``); ``rsa/pss-…`` asks for PSS explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from petrel.crypto.keys import KeyType, PrivateKey, PublicKey
from petrel.crypto.signatures import default_schemes
from petrel.crypto.sigschemes import SignatureScheme
from petrel.wire.registry import HashAlgorithm

__all__ = ["AuthClass", "AuthConstraint", "ConstraintError", "SchemeRule", "select_schemes"]

_HASHES = {
    "sha1": HashAlgorithm.SHA1,
    "sha256": HashAlgorithm.SHA2_256,
    "sha384": HashAlgorithm.SHA2_384,
    "sha512": HashAlgorithm.SHA2_512,
    "identity": HashAlgorithm.IDENTITY,
}
_KEYS: dict[str, KeyType | None] = {
    "pubkey": None,
    "rsa": KeyType.RSA,
    "rsa/pss": KeyType.RSA,
    "ecdsa": KeyType.ECDSA,
    "ed25519": KeyType.ED25519,
    "ed448": KeyType.ED448,
}
_SIZED = frozenset({"rsa", "rsa/pss", "ecdsa"})
_HASH_KEYS = {
    HashAlgorithm.SHA1: (KeyType.RSA, KeyType.ECDSA),
    HashAlgorithm.SHA2_256: (KeyType.RSA, KeyType.ECDSA),
    HashAlgorithm.SHA2_384: (KeyType.RSA, KeyType.ECDSA),
    HashAlgorithm.SHA2_512: (KeyType.RSA, KeyType.ECDSA),
    HashAlgorithm.IDENTITY: (KeyType.ED25519, KeyType.ED448),
}


class ConstraintError(ValueError):
    """An ``auth`` string that cannot be used; names the offending token."""


class AuthClass(StrEnum):
    PUBKEY = "pubkey"
    PSK = "psk"
    NULL = "null"


@dataclass(frozen=True, slots=True)
class SchemeRule:
    """One acceptable signature scheme: key type, hash, and whether it is RSASSA-PSS."""

    key_type: KeyType
    hash: HashAlgorithm
    pss: bool = False

    def allows(self, scheme: SignatureScheme) -> bool:
        """strongSwan's signature_params_comply: same scheme; PSS with MGF1 = hash (any salt)."""
        if (scheme.key_type, scheme.hash, scheme.pss) != (self.key_type, self.hash, self.pss):
            return False
        return not scheme.pss or scheme.mgf1_hash == scheme.hash

    def scheme(self) -> SignatureScheme:
        if self.pss:
            return SignatureScheme.rsa_pss(self.hash)
        return SignatureScheme(self.key_type, self.hash)

    def __str__(self) -> str:
        return self.scheme().name


@dataclass(frozen=True, slots=True)
class AuthConstraint:
    """A parsed ``auth`` value."""

    auth_class: AuthClass
    text: str = ""
    strengths: tuple[tuple[KeyType, int], ...] = ()
    schemes: tuple[SchemeRule, ...] = ()
    ike_schemes: tuple[SchemeRule, ...] = field(default=())

    @classmethod
    def parse(
        cls, text: str, *, rsa_pss: bool = False, signature_authentication_constraints: bool = True
    ) -> AuthConstraint:
        """Read an ``auth`` string; :class:`ConstraintError` for anything unusable."""
        value = text.strip()
        lowered = value.lower()
        if lowered in ("psk", "null"):
            return cls(AuthClass(lowered), value)
        if lowered.startswith(("eap", "xauth")):
            raise ConstraintError(f"auth = {value}: EAP and XAuth are not supported yet")
        first = lowered.split("-", 1)[0]
        if first.removeprefix("ike:") not in _KEYS:
            raise ConstraintError(
                f"auth = {value}: unknown key type {first!r} (pubkey, rsa, rsa/pss, ecdsa,"
                " ed25519, ed448 - e.g. rsa-sha384-ecdsa-sha384 - or psk, null)"
            )
        return _parse_pubkey(value, rsa_pss, signature_authentication_constraints)

    def check(
        self,
        *,
        key_strengths: Sequence[tuple[KeyType, int]],
        chain_schemes: Sequence[SignatureScheme] = (),
        ike_scheme: SignatureScheme | None = None,
    ) -> str | None:
        """Why a finished public-key authentication does not comply, or None if it does.

        ``key_strengths``: every key of the trust chain, end entity first (one entry for a
        raw public key); ``chain_schemes``: the signatures inside the chain; ``ike_scheme``:
        the AUTH payload's signature.
        """
        if self.auth_class is not AuthClass.PUBKEY:
            return f"auth = {self.text or self.auth_class.value}, but a signature was used"
        if self.strengths:
            for key_type, bits in key_strengths:
                if key_type not in (KeyType.RSA, KeyType.ECDSA):
                    continue
                if not any(t is key_type and bits >= m for t, m in self.strengths):
                    return f"{key_type.value.upper()}-{bits} keys are not acceptable"
        if self.schemes:
            for scheme in chain_schemes:
                if not any(rule.allows(scheme) for rule in self.schemes):
                    return f"X.509 signature scheme {scheme.name} is not acceptable"
        ike_rules = self.ike_schemes
        if ike_rules and ike_scheme and not any(r.allows(ike_scheme) for r in ike_rules):
            return f"IKE signature scheme {ike_scheme.name} is not acceptable"
        return None


def _parse_pubkey(value: str, rsa_pss: bool, copy_to_ike: bool) -> AuthConstraint:
    strengths: list[tuple[KeyType, int]] = []
    schemes: list[SchemeRule] = []
    ike: list[SchemeRule] = []
    key_token: str | None = None
    sized: KeyType | None = None
    for raw in value.split("-"):
        token = raw.lower()
        if sized is not None and token.isdigit() and int(token) > 0:
            strengths.append((sized, int(token)))
            sized = None
            continue
        sized = None
        bare = token.removeprefix("ike:")
        if bare in _KEYS:
            key_token = token
            sized = _KEYS[bare] if bare in _SIZED else None
            continue
        hash_alg = _HASHES.get(token)
        if hash_alg is None or key_token is None:
            raise ConstraintError(f"auth = {value}: invalid token {raw!r}")
        rules = _rules(key_token, hash_alg, rsa_pss)
        if not rules:
            raise ConstraintError(f"auth = {value}: {raw} does not apply to {key_token} keys")
        (ike if key_token.startswith("ike:") else schemes).extend(rules)
    if copy_to_ike and not ike:
        ike = list(schemes)
    return AuthConstraint(AuthClass.PUBKEY, value, tuple(strengths), tuple(schemes), tuple(ike))


def _rules(key_token: str, hash_alg: HashAlgorithm, rsa_pss: bool) -> list[SchemeRule]:
    bare = key_token.removeprefix("ike:")
    if bare == "rsa/pss":
        if hash_alg is HashAlgorithm.IDENTITY:
            return []
        return [SchemeRule(KeyType.RSA, hash_alg, pss=True)]
    wanted = _KEYS[bare]
    rules: list[SchemeRule] = []
    if rsa_pss and wanted in (None, KeyType.RSA) and hash_alg is not HashAlgorithm.IDENTITY:
        rules.append(SchemeRule(KeyType.RSA, hash_alg, pss=True))
    rules += [
        SchemeRule(key_type, hash_alg)
        for key_type in _HASH_KEYS[hash_alg]
        if wanted is None or wanted is key_type
    ]
    return rules


def select_schemes(
    constraint: AuthConstraint | None,
    key: PrivateKey | PublicKey,
    peer_hashes: Sequence[int],
    *,
    rsa_pss: bool = False,
) -> list[SignatureScheme]:
    """RFC 7427 schemes to sign our AUTH with, best first (strongSwan's choice).

    With IKE scheme rules in ``constraint``, those for our key type whose hash the peer
    announced (SIGNATURE_HASH_ALGORITHMS, RFC 7427 §4), SHA-1 left out (we only verify it);
    an empty list then means no common scheme. Without rules, :func:`default_schemes` for
    the key filtered by the peer's hashes.
    """
    hashes = set(peer_hashes)
    rules = constraint.ike_schemes if constraint is not None else ()
    if rules:
        chosen: list[SignatureScheme] = []
        for rule in rules:
            usable = rule.hash in hashes and rule.hash != HashAlgorithm.SHA1  # verify-only
            if rule.key_type is key.key_type and usable:
                scheme = rule.scheme()
                if scheme not in chosen:
                    chosen.append(scheme)
        return chosen
    return [s for s in default_schemes(key, rsa_pss=rsa_pss) if s.hash in hashes]
