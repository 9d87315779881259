"""Known-answer tests for the integrity transforms and PRFs."""

from __future__ import annotations

import pytest

from petrel.crypto.integ import integ_spec
from petrel.crypto.prf import PrfSpec, prf_spec
from petrel.wire.registry import IntegId, PrfId

h = bytes.fromhex

# RFC 4231 §4 (HMAC-SHA-256/384/512 test cases 1-4, 6, 7).
_RFC4231_INPUTS = {
    1: (b"\x0b" * 20, b"Hi There"),
    2: (b"Jefe", b"what do ya want for nothing?"),
    3: (b"\xaa" * 20, b"\xdd" * 50),
    4: (h("0102030405060708090a0b0c0d0e0f10111213141516171819"), b"\xcd" * 50),
    6: (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First"),
    7: (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
    ),
}
_RFC4231_OUTPUTS = {
    PrfId.HMAC_SHA2_256: {
        1: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        2: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        3: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        4: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        6: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        7: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    },
    PrfId.HMAC_SHA2_384: {
        1: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        "faea9ea9076ede7f4af152e8b2fa9cb6",
        2: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        "8e2240ca5e69e2c78b3239ecfab21649",
        3: "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
        "2a5ab39dc13814b94e3ab6e101a34f27",
        4: "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
        "6801dd23c4a7d679ccf8a386c674cffb",
        6: "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
        "0c2ef6ab4030fe8296248df163f44952",
        7: "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
        "a678cc31e799176d3860e6110c46523e",
    },
    PrfId.HMAC_SHA2_512: {
        1: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        2: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        3: "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
        "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
        4: "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
        "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
        6: "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
        "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        7: "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
        "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
    },
}


@pytest.mark.parametrize("prf_id", list(_RFC4231_OUTPUTS))
@pytest.mark.parametrize("case", sorted(_RFC4231_INPUTS))
def test_rfc4231_hmac_sha2_prf(prf_id: PrfId, case: int) -> None:
    key, data = _RFC4231_INPUTS[case]
    assert prf_spec(prf_id).compute(key, data) == h(_RFC4231_OUTPUTS[prf_id][case])


# RFC 4868 §2.7.2.1-3: authenticator test vectors (key length = hash output size).
_RFC4868_AUTH = [
    (IntegId.HMAC_SHA2_256_128, b"\x0b" * 32, b"Hi There", "198a607eb44bfbc69903a0f1cf2bbdc5"),
    (
        IntegId.HMAC_SHA2_256_128,
        b"Jefe" * 8,
        b"what do ya want for nothing?",
        "167f928588c5cc2eef8e3093caa0e87c",
    ),
    (IntegId.HMAC_SHA2_256_128, b"\xaa" * 32, b"\xdd" * 50, "cdcb1220d1ecccea91e53aba3092f962"),
    (
        IntegId.HMAC_SHA2_384_192,
        b"\x0b" * 48,
        b"Hi There",
        "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973",
    ),
    (
        IntegId.HMAC_SHA2_384_192,
        b"Jefe" * 12,
        b"what do ya want for nothing?",
        "2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d",
    ),
    (
        IntegId.HMAC_SHA2_384_192,
        b"\xaa" * 48,
        b"\xdd" * 50,
        "809f439be00274321d4a538652164b53554a508184a0c316",
    ),
    (
        IntegId.HMAC_SHA2_512_256,
        b"\x0b" * 64,
        b"Hi There",
        "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8",
    ),
    (
        IntegId.HMAC_SHA2_512_256,
        b"Jefe" * 16,
        b"what do ya want for nothing?",
        "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454",
    ),
    (
        IntegId.HMAC_SHA2_512_256,
        b"\xaa" * 64,
        b"\xdd" * 50,
        "2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8",
    ),
]


@pytest.mark.parametrize(("integ_id", "key", "data", "icv"), _RFC4868_AUTH)
def test_rfc4868_truncated_icv(integ_id: IntegId, key: bytes, data: bytes, icv: str) -> None:
    mac = integ_spec(integ_id).keyed(key)
    assert mac.compute(data) == h(icv)
    assert mac.verify(data, h(icv))
    assert not mac.verify(data + b"x", h(icv))
    assert not mac.verify(data, h(icv)[:-1])


# RFC 2202 §3 (HMAC-SHA-1), full output checked through the PRF, truncated through integrity.
_RFC2202 = [
    (b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (b"Jefe", b"what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    (b"\xaa" * 20, b"\xdd" * 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
    (
        h("0102030405060708090a0b0c0d0e0f10111213141516171819"),
        b"\xcd" * 50,
        "4c9007f4026250c6bc8414f9bf50c86c2d7235da",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
    (
        b"\xaa" * 80,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "aa4ae5e15272d00e95705637ce8a3b55ed402112",
    ),
    (
        b"\xaa" * 80,
        b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
        "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
    ),
]


@pytest.mark.parametrize(("key", "data", "digest"), _RFC2202)
def test_rfc2202_hmac_sha1(key: bytes, data: bytes, digest: str) -> None:
    assert prf_spec(PrfId.HMAC_SHA1).compute(key, data) == h(digest)
    if len(key) == 20:
        assert integ_spec(IntegId.HMAC_SHA1_96).keyed(key).compute(data) == h(digest)[:12]


_K16 = h("000102030405060708090a0b0c0d0e0f")
_M = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")

# RFC 3566 §4.6 test cases 1-5 (the PRF output is the untruncated MAC, RFC 4434 §2).
_RFC3566 = [
    (0, "75f0251d528ac01c4573dfd584d79f29"),
    (3, "5b376580ae2f19afe7219ceef172756f"),
    (16, "d2a246fa349b68a79998a4394ff7a263"),
    (20, "47f51b4564966215b8985c63055ed308"),
    (32, "f54f0ec8d2b9f3d36807734bd5283fd4"),
]


@pytest.mark.parametrize(("length", "mac"), _RFC3566)
def test_rfc3566_aes_xcbc_mac_96(length: int, mac: str) -> None:
    keyed = integ_spec(IntegId.AES_XCBC_96).keyed(_K16)
    assert keyed.compute(_M[:length]) == h(mac)[:12]
    assert prf_spec(PrfId.AES128_XCBC).compute(_K16, _M[:length]) == h(mac)


# RFC 4434 §6: AES-XCBC-PRF-128 with 16-, 10- and 18-octet keys over a 20-octet message.
@pytest.mark.parametrize(
    ("key", "out"),
    [
        (_K16, "47f51b4564966215b8985c63055ed308"),
        (h("00010203040506070809"), "0fa087af7d866e7653434e602fdde835"),
        (h("000102030405060708090a0b0c0d0e0fedcb"), "8cd3c93ae598a9803006ffb67c40e9e4"),
    ],
)
def test_rfc4434_aes_xcbc_prf(key: bytes, out: str) -> None:
    assert prf_spec(PrfId.AES128_XCBC).compute(key, _M[:20]) == h(out)


# RFC 4493 §4 examples 1-4 (AES-CMAC); RFC 4494 §4 takes the first 96 bits.
_CMAC_KEY = h("2b7e151628aed2a6abf7158809cf4f3c")
_CMAC_MSG = h(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
_RFC4493 = [
    (0, "bb1d6929e95937287fa37d129b756746"),
    (16, "070a16b46b4d4144f79bdd9dd04a287c"),
    (40, "dfa66747de9ae63030ca32611497c827"),
    (64, "51f0bebf7e3b9d92fc49741779363cfe"),
]


@pytest.mark.parametrize(("length", "mac"), _RFC4493)
def test_rfc4493_aes_cmac(length: int, mac: str) -> None:
    assert prf_spec(PrfId.AES128_CMAC).compute(_CMAC_KEY, _CMAC_MSG[:length]) == h(mac)
    keyed = integ_spec(IntegId.AES_CMAC_96).keyed(_CMAC_KEY)
    assert keyed.compute(_CMAC_MSG[:length]) == h(mac)[:12]


# RFC 4615 §4: AES-CMAC-PRF-128 with 18-, 16- and 10-octet keys.
@pytest.mark.parametrize(
    ("key", "out"),
    [
        (h("000102030405060708090a0b0c0d0e0fedcb"), "84a348a4a45d235babfffc0d2b4da09a"),
        (_K16, "980ae87b5f4c9c5214f5b6a8455e4c2d"),
        (h("00010203040506070809"), "290d9e112edb09ee141fcf64c0b72f3d"),
    ],
)
def test_rfc4615_aes_cmac_prf(key: bytes, out: str) -> None:
    assert prf_spec(PrfId.AES128_CMAC).compute(key, _M[:20]) == h(out)


def test_integ_key_length_enforced() -> None:
    from petrel.crypto.errors import CryptoError, UnsupportedAlgorithm

    with pytest.raises(CryptoError):
        integ_spec(IntegId.HMAC_SHA2_256_128).keyed(b"short")
    with pytest.raises(UnsupportedAlgorithm):
        integ_spec(IntegId.HMAC_MD5_96)
    with pytest.raises(UnsupportedAlgorithm):
        prf_spec(PrfId.HMAC_MD5)
    with pytest.raises(UnsupportedAlgorithm):
        PrfSpec(0, 16, 16, "nope").compute(b"k", b"d")
