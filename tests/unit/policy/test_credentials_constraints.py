"""swanctl ``auth`` constraints: parsing as strongSwan's add_pubkey_constraints, checking as
its auth_cfg complies (key sizes over the whole chain, chain schemes, IKE schemes), and the
choice of our own signature scheme."""

from __future__ import annotations

import pytest

from petrel.credentials.constraints import (
    AuthClass,
    AuthConstraint,
    ConstraintError,
    SchemeRule,
    select_schemes,
)
from petrel.crypto import sigschemes as S
from petrel.crypto.keys import KeyType, generate_private_key
from petrel.wire.registry import HashAlgorithm as H

RSA, ECDSA, ED25519 = KeyType.RSA, KeyType.ECDSA, KeyType.ED25519
ALL_HASHES = (H.SHA1, H.SHA2_256, H.SHA2_384, H.SHA2_512, H.IDENTITY)


def _names(rules: tuple[SchemeRule, ...]) -> list[str]:
    return [str(r) for r in rules]


@pytest.mark.parametrize(
    ("text", "strengths", "schemes", "ike"),
    [
        ("pubkey", (), [], []),
        ("rsa", (), [], []),  # a bare key type restricts nothing, as in strongSwan
        ("rsa/pss", (), [], []),
        ("rsa-2048", ((RSA, 2048),), [], []),
        ("ecdsa-384", ((ECDSA, 384),), [], []),
        ("rsa-2048-sha256", ((RSA, 2048),), ["rsa-sha256"], ["rsa-sha256"]),
        ("ecdsa-256-sha256-sha384", ((ECDSA, 256),), ["ecdsa-sha256", "ecdsa-sha384"], None),
        ("pubkey-sha384", (), ["rsa-sha384", "ecdsa-sha384"], None),
        ("pubkey-identity", (), ["ed25519", "ed448"], None),
        ("ed25519-identity", (), ["ed25519"], None),
        ("rsa/pss-sha256", (), ["rsa/pss-sha256"], None),
        ("ike:rsa/pss-sha256", (), [], ["rsa/pss-sha256"]),
        (
            "ike:pubkey-sha384-sha256",
            (),
            [],
            ["rsa-sha384", "ecdsa-sha384", "rsa-sha256", "ecdsa-sha256"],
        ),
        (
            "rsa-3072-sha256-ecdsa-256-sha384",
            ((RSA, 3072), (ECDSA, 256)),
            ["rsa-sha256", "ecdsa-sha384"],
            None,
        ),
        ("rsa-2048-ike:ecdsa-sha256", ((RSA, 2048),), [], ["ecdsa-sha256"]),
    ],
)
def test_parse(
    text: str,
    strengths: tuple[tuple[KeyType, int], ...],
    schemes: list[str],
    ike: list[str] | None,
) -> None:
    constraint = AuthConstraint.parse(text)
    assert constraint.auth_class is AuthClass.PUBKEY
    assert constraint.strengths == strengths
    assert _names(constraint.schemes) == schemes
    assert _names(constraint.ike_schemes) == (schemes if ike is None else ike)


def test_psk_null_and_settings() -> None:
    assert AuthConstraint.parse("psk").auth_class is AuthClass.PSK
    assert AuthConstraint.parse("NULL").auth_class is AuthClass.NULL
    pss_on = AuthConstraint.parse("rsa-sha256", rsa_pss=True)
    assert _names(pss_on.schemes) == ["rsa/pss-sha256", "rsa-sha256"]
    no_copy = AuthConstraint.parse("pubkey-sha256", signature_authentication_constraints=False)
    assert no_copy.ike_schemes == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rsa/ecdsa-sha384", "unknown key type 'rsa/ecdsa'"),
        ("eap-tls", "not supported"),
        ("xauth", "not supported"),
        ("foo", "unknown key type"),
        ("rsa-sha999", "invalid token 'sha999'"),
        ("pubkey-2048", "invalid token '2048'"),
        ("rsa-0", "invalid token '0'"),
        ("ed25519-sha256", "does not apply"),
        ("rsa/pss-identity", "does not apply"),
        ("rsa-md5", "invalid token 'md5'"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ConstraintError, match=message):
        AuthConstraint.parse(text)


def _check(text: str, **result: object) -> str | None:
    kwargs = {"key_strengths": (), "chain_schemes": (), "ike_scheme": None}
    kwargs.update(result)
    return AuthConstraint.parse(text).check(**kwargs)  # type: ignore[arg-type]


def test_key_sizes_cover_the_whole_chain() -> None:
    rsa_chain = ((RSA, 3072), (RSA, 4096), (RSA, 4096))
    assert _check("rsa-2048", key_strengths=rsa_chain) is None
    assert _check("rsa-4096", key_strengths=rsa_chain) == "RSA-3072 keys are not acceptable"
    mixed = ((ED25519, 256), (RSA, 3072), (ECDSA, 384))  # Ed25519 EE, RSA sub, ECDSA root
    assert _check("rsa-2048", key_strengths=mixed) == "ECDSA-384 keys are not acceptable"
    assert _check("rsa-2048-ecdsa-256", key_strengths=mixed) is None
    assert _check("ecdsa-256", key_strengths=((ECDSA, 256), (RSA, 2048))) == (
        "RSA-2048 keys are not acceptable"
    )
    assert _check("pubkey", key_strengths=mixed) is None


def test_chain_and_ike_schemes() -> None:
    assert _check("rsa-sha256", chain_schemes=(S.RSA_PKCS1_SHA256,)) is None
    assert _check("rsa-sha256", chain_schemes=(S.RSA_PSS_SHA256,)) == (
        "X.509 signature scheme rsa/pss-sha256 is not acceptable"
    )
    assert _check("rsa/pss-sha256", chain_schemes=(S.RSA_PSS_SHA256,)) is None
    # Without ike: rules the chain rules apply to the AUTH signature too.
    assert _check("ecdsa-sha256", ike_scheme=S.RSA_PKCS1_SHA256) == (
        "IKE signature scheme rsa-sha256 is not acceptable"
    )
    assert _check("ecdsa-sha256", ike_scheme=S.ECDSA_SHA256) is None
    # ike: rules leave the chain free and constrain only AUTH.
    assert (
        _check("ike:rsa/pss-sha384", chain_schemes=(S.ECDSA_SHA256,), ike_scheme=S.RSA_PSS_SHA384)
        is None
    )
    assert _check("ike:rsa/pss-sha384", ike_scheme=S.RSA_PKCS1_SHA384) is not None
    odd_pss = S.SignatureScheme(RSA, H.SHA2_256, True, H.SHA1, 32)  # MGF1 with another hash
    assert _check("rsa/pss-sha256", ike_scheme=odd_pss) is not None
    salty = S.SignatureScheme(RSA, H.SHA2_256, True, H.SHA2_256, 0)  # salt may differ
    assert _check("rsa/pss-sha256", ike_scheme=salty) is None
    assert _check("ed25519-identity", ike_scheme=S.ED25519) is None
    assert _check("ed25519-identity", ike_scheme=S.ED448) is not None


def test_class_mismatch() -> None:
    assert "auth = psk" in (AuthConstraint.parse("psk").check(key_strengths=()) or "")


def test_select_schemes_like_strongswan() -> None:
    rsa = generate_private_key("rsa", 3072)
    p256 = generate_private_key("ecdsa", 256)
    ed = generate_private_key("ed25519")
    names = [s.name for s in select_schemes(None, rsa, ALL_HASHES)]
    assert names == ["rsa-sha256", "rsa-sha384", "rsa-sha512"]
    assert select_schemes(None, rsa, (H.SHA2_512,))[0].name == "rsa-sha512"
    assert select_schemes(None, rsa, ALL_HASHES, rsa_pss=True)[0] == S.RSA_PSS_SHA256
    assert select_schemes(None, ed, (H.SHA2_256,)) == []  # the peer lacks "identity"
    assert select_schemes(None, ed, ALL_HASHES) == [S.ED25519]
    ike = AuthConstraint.parse("ike:rsa/pss-sha384-ike:ecdsa-sha512")
    assert select_schemes(ike, rsa, ALL_HASHES) == [S.RSA_PSS_SHA384]
    assert select_schemes(ike, p256, ALL_HASHES) == [S.ECDSA_SHA512]
    assert select_schemes(ike, ed, ALL_HASHES) == []  # rules exist, none for this key
    assert select_schemes(ike, rsa, (H.SHA2_256,)) == []
    assert select_schemes(AuthConstraint.parse("rsa-2048"), rsa, ALL_HASHES)[0].name == (
        "rsa-sha256"
    )


def test_sha1_rules_are_never_chosen_for_signing() -> None:
    rsa = generate_private_key("rsa", 2048)
    sha1_only = AuthConstraint.parse("rsa-sha1")
    assert select_schemes(sha1_only, rsa, ALL_HASHES) == []
    assert _check("rsa-sha1", ike_scheme=S.RSA_PKCS1_SHA1) is None  # still accepted from peers
