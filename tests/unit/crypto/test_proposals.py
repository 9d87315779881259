"""strongSwan proposal strings → wire proposals and back."""

from __future__ import annotations

import pytest

from petrel.crypto.errors import ProposalError
from petrel.crypto.proposals import (
    DEFAULT_ESP,
    DEFAULT_IKE,
    format_proposal,
    parse_proposals,
)
from petrel.wire.payloads import Transform
from petrel.wire.registry import (
    EncrId,
    IntegId,
    KeId,
    PrfId,
    ProtocolId,
    TransformType,
)

T = TransformType
IKE, ESP, AH = ProtocolId.IKE, ProtocolId.ESP, ProtocolId.AH


def _ids(text: str, protocol: ProtocolId) -> list[list[tuple[int, int, int | None]]]:
    return [
        [(int(t.type), int(t.id), t.key_length) for t in p.transforms]
        for p in parse_proposals(text, protocol)
    ]


def test_aead_drops_integrity_and_prf_follows_it() -> None:
    (p,) = parse_proposals("aes256gcm16-sha256-x25519", IKE)
    assert p.number == 1 and p.protocol == IKE and p.spi == b""
    assert p.transforms == (
        Transform(T.ENCR, EncrId.AES_GCM_16, 256),
        Transform(T.PRF, PrfId.HMAC_SHA2_256),
        Transform(T.KE, KeId.CURVE25519),
    )


def test_classic_ike_proposal() -> None:
    assert _ids("aes128-aes256-sha256-sha1-modp2048-ecp256", IKE) == [
        [
            (1, 12, 128),
            (1, 12, 256),
            (2, 5, None),
            (2, 2, None),
            (3, 12, None),
            (3, 2, None),
            (4, 14, None),
            (4, 19, None),
        ]
    ]
    assert _ids("aes128-sha256-prfsha512-ecp384", IKE)[0][1:3] == [(2, 7, None), (3, 12, None)]


@pytest.mark.parametrize(
    ("keyword", "encr_id", "bits"),
    [
        ("aes", EncrId.AES_CBC, 128),
        ("aes192", EncrId.AES_CBC, 192),
        ("aes256ctr", EncrId.AES_CTR, 256),
        ("aes128ccm8", EncrId.AES_CCM_8, 128),
        ("aes192ccm96", EncrId.AES_CCM_12, 192),
        ("aes256ccm16", EncrId.AES_CCM_16, 256),
        ("aes128gcm64", EncrId.AES_GCM_8, 128),
        ("aes256gcm12", EncrId.AES_GCM_12, 256),
        ("aes128gcm128", EncrId.AES_GCM_16, 128),
        ("aes256gcm", EncrId.AES_GCM_16, 256),
        ("aes128gmac", EncrId.NULL_AUTH_AES_GMAC, 128),
        ("camellia256", EncrId.CAMELLIA_CBC, 256),
        ("camellia128ctr", EncrId.CAMELLIA_CTR, 128),
        ("camellia128ccm12", EncrId.CAMELLIA_CCM_12, 128),
        ("chacha20poly1305", EncrId.CHACHA20_POLY1305, None),
        ("null", EncrId.NULL, None),
        ("3des", EncrId.DES3, None),
    ],
)
def test_encryption_keywords(keyword: str, encr_id: int, bits: int | None) -> None:
    aead = encr_id in (EncrId.CHACHA20_POLY1305, EncrId.NULL_AUTH_AES_GMAC) or "cm" in keyword
    text = f"{keyword}-esn" if aead else f"{keyword}-sha256"
    (p,) = parse_proposals(text, ESP)
    assert p.transforms[0] == Transform(T.ENCR, encr_id, bits)
    assert parse_proposals(format_proposal(p), ESP) == (p,)


def test_esp_defaults_and_pfs() -> None:
    assert _ids("aes128gcm16", ESP) == [[(1, 20, 128), (5, 0, None)]]
    assert _ids("aes128-sha256-esn-noesn", ESP) == [
        [(1, 12, 128), (3, 12, None), (5, 1, None), (5, 0, None)]
    ]
    # A KE keyword means PFS; 'none' makes it optional.
    assert _ids("aes256-sha512-modp3072-none", ESP)[0][2:4] == [(4, 15, None), (4, 0, None)]
    assert _ids("sha384", AH) == [[(3, 13, None), (5, 0, None)]]


def test_additional_key_exchanges() -> None:
    (p,) = parse_proposals("aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_none-ke2_mlkem1024", IKE)
    tail = p.transforms[3:]
    assert tail == (
        Transform(T.ADDKE1, KeId.ML_KEM_768),
        Transform(T.ADDKE2, KeId.NONE),
        Transform(T.ADDKE2, KeId.ML_KEM_1024),
    )
    assert format_proposal(p) == (
        "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_none-ke2_mlkem1024"
    )


def test_default_sets() -> None:
    ike = parse_proposals("default", IKE)
    assert ike == parse_proposals(DEFAULT_IKE, IKE)
    esp = parse_proposals("default", ESP)
    assert esp == parse_proposals(DEFAULT_ESP, ESP)
    assert [p.number for p in esp] == [1, 2, 3, 4, 5]
    weak = {
        (T.ENCR, EncrId.DES),
        (T.ENCR, EncrId.DES3),
        (T.ENCR, EncrId.NULL),
        (T.INTEG, IntegId.HMAC_MD5_96),
        (T.PRF, PrfId.HMAC_MD5),
        (T.KE, KeId.MODP_768),
        (T.KE, KeId.MODP_1024),
    }
    used = {(t.type, t.id) for p in ike + esp for t in p.transforms}
    assert not used & weak
    assert (T.KE, KeId.CURVE25519) in used and (T.ENCR, EncrId.AES_GCM_16) in used
    # Defaults compose with explicit proposals and numbering continues.
    mixed = parse_proposals("aes128-sha256-x25519, default", IKE)
    assert [p.number for p in mixed] == [1, 2, 3]


@pytest.mark.parametrize(
    ("text", "protocol", "keyword"),
    [
        ("aes128-sha256-foo-x25519", IKE, "foo"),
        ("aes129-sha256-x25519", IKE, "aes129"),
        ("aes128gcm20", ESP, "aes128gcm20"),
        ("aes128-esn-sha256-x25519", IKE, "esn"),
        ("aes128-sha256-none-x25519", IKE, "none"),
        ("ke8_mlkem768-aes128-sha256-x25519", IKE, "ke8_mlkem768"),
    ],
)
def test_unknown_keyword_is_named(text: str, protocol: ProtocolId, keyword: str) -> None:
    with pytest.raises(ProposalError) as info:
        parse_proposals(text, protocol)
    assert info.value.keyword == keyword
    assert keyword in str(info.value)


@pytest.mark.parametrize(
    ("text", "protocol"),
    [
        ("aes128-aes128gcm16-sha256-x25519", IKE),  # AEAD mixed with non-AEAD
        ("aes128gcm16-aes256-sha256", ESP),
        ("aes128-sha256", IKE),  # no key exchange
        ("aes128gcm16-x25519", IKE),  # no PRF
        ("aes128-x25519", IKE),  # no integrity for a non-AEAD cipher
        ("sha256-x25519", IKE),  # no encryption
        ("aes128", ESP),
        ("aes128-sha256-prfsha256", ESP),
        ("aes128-sha256", AH),
        ("", ESP),
        ("aes128--sha256", ESP),
    ],
)
def test_invalid_proposals(text: str, protocol: ProtocolId) -> None:
    with pytest.raises(ProposalError):
        parse_proposals(text, protocol)


@pytest.mark.parametrize("protocol", [IKE, ESP])
def test_format_round_trips_defaults(protocol: ProtocolId) -> None:
    for p in parse_proposals("default", protocol):
        again = parse_proposals(format_proposal(p), protocol)
        assert again[0].transforms == p.transforms
    assert format_proposal(parse_proposals("aes128-sha256-noesn", ESP)[0]) == "aes128-sha256-noesn"
