"""Known-answer and property tests for the encryption transforms and the SK payload."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.crypto.encr import encr_spec
from petrel.crypto.errors import CryptoError, IntegrityError, UnsupportedAlgorithm
from petrel.crypto.integ import integ_spec
from petrel.crypto.sk import SkCipher
from petrel.wire.registry import EncrId, IntegId

h = bytes.fromhex


# RFC 3602 §4 cases 1-3 (AES-128-CBC).
@pytest.mark.parametrize(
    ("key", "iv", "plain", "cipher"),
    [
        (
            "06a9214036b8a15b512e03d534120006",
            "3dafba429d9eb430b422da802c9fac41",
            b"Single block msg".hex(),
            "e353779c1079aeb82708942dbe77181a",
        ),
        (
            "c286696d887c9aa0611bbb3e2025a45a",
            "562e17996d093d28ddb3ba695a2e6f58",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
        ),
        (
            "56e47a38c5598974bc46903dba290349",
            "8ce82eefbea0da3c44699ed7db51b7d9",
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
            "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
            "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e"
            "35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55",
        ),
    ],
)
def test_rfc3602_aes_cbc(key: str, iv: str, plain: str, cipher: str) -> None:
    c = encr_spec(EncrId.AES_CBC, 128).keyed(h(key))
    assert c.encrypt(h(iv), h(plain)) == h(cipher)
    assert c.decrypt(h(iv), h(cipher)) == h(plain)


_P32 = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
_P36 = _P32 + h("20212223")


# RFC 3686 §6 test vectors 1-9 (key material = AES key | 4-octet nonce; 8-octet IV).
@pytest.mark.parametrize(
    ("key", "iv", "plain", "cipher"),
    [
        (
            "ae6852f8121067cc4bf7a5765577f39e00000030",
            "0000000000000000",
            b"Single block msg",
            "e4095d4fb7a7b3792d6175a3261311b8",
        ),
        (
            "7e24067817fae0d743d6ce1f32539163006cb6db",
            "c0543b59da48d90b",
            _P32,
            "5104a106168a72d9790d41ee8edad388eb2e1efc46da57c8fce630df9141be28",
        ),
        (
            "7691be035e5020a8ac6e618529f9a0dc00e0017b",
            "27777f3f4a1786f0",
            _P36,
            "c1cf48a89f2ffdd9cf4652e9efdb72d74540a42bde6d7836d59a5ceaaef3105325b2072f",
        ),
        (
            "16af5b145fc9f579c175f93e3bfb0eed863d06ccfdb7851500000048",
            "36733c147d6d93cb",
            b"Single block msg",
            "4b55384fe259c9c84e7935a003cbe928",
        ),
        (
            "7c5cb2401b3dc33c19e7340819e0f69c678c3db8e6f6a91a0096b03b",
            "020c6eadc2cb500d",
            _P32,
            "453243fc609b23327edfaafa7131cd9f8490701c5ad4a79cfc1fe0ff42f4fb00",
        ),
        (
            "02bf391ee8ecb159b959617b0965279bf59b60a786d3e0fe0007bdfd",
            "5cbd60278dcc0912",
            _P36,
            "96893fc55e5c722f540b7dd1ddf7e758d288bc95c69165884536c811662f2188abee0935",
        ),
        (
            "776beff2851db06f4c8a0542c8696f6c6a81af1eec96b4d37fc1d689e6c1c10400000060",
            "db5672c97aa8f0b2",
            b"Single block msg",
            "145ad01dbf824ec7560863dc71e3e0c0",
        ),
        (
            "f6d66d6bd52d59bb0796365879eff886c66dd51a5b6a99744b50590c87a2388400faac24",
            "c1585ef15a43d875",
            _P32,
            "f05e231b3894612c49ee000b804eb2a9b8306b508f839d6a5530831d9344af1c",
        ),
        (
            "ff7a617ce69148e4f1726e2f43581de2aa62d9f805532edff1eed687fb54153d001cc5b7",
            "51a51d70a1c11148",
            _P36,
            "eb6c52821d0bbbf7ce7594462aca4faab407df866569fd07f48cc0b583d6071f1ec0e6b8",
        ),
    ],
)
def test_rfc3686_aes_ctr(key: str, iv: str, plain: bytes, cipher: str) -> None:
    spec = encr_spec(EncrId.AES_CTR, (len(h(key)) - 4) * 8)
    c = spec.keyed(h(key))
    assert c.encrypt(h(iv), plain) == h(cipher)
    assert c.decrypt(h(iv), h(cipher)) == plain


# McGrew & Viega GCM test cases 3/4 (128), 9 (192), 15/16 (256), laid out as for ESP
# (RFC 4106 §3/§8.1): key material = key | 4-octet salt "cafebabe", IV = "facedbaddecaf888".
_GCM_KEY128 = "feffe9928665731c6d6a8f9467308308"
_GCM_KEY192 = "feffe9928665731c6d6a8f9467308308feffe9928665731c"
_GCM_KEY256 = _GCM_KEY128 * 2
_GCM_PLAIN = h(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
_GCM_AAD = h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
_GCM_CT128 = (
    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985"
)
_GCM_CT256 = (
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
)
_GCM_CASES = [
    (EncrId.AES_GCM_8, _GCM_KEY128, 64, b"", _GCM_CT128 + "4d5c2af327cd64a6"),
    (EncrId.AES_GCM_12, _GCM_KEY128, 64, b"", _GCM_CT128 + "4d5c2af327cd64a62cf35abd"),
    (EncrId.AES_GCM_16, _GCM_KEY128, 64, b"", _GCM_CT128 + "4d5c2af327cd64a62cf35abd2ba6fab4"),
    (
        EncrId.AES_GCM_16,
        _GCM_KEY128,
        60,
        _GCM_AAD,
        _GCM_CT128[:120] + "5bc94fbc3221a5db94fae95ae7121a47",
    ),
    (
        EncrId.AES_GCM_16,
        _GCM_KEY192,
        64,
        b"",
        "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c"
        "7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710acade256"
        "9924a7c8587336bfb118024db8674a14",
    ),
    (EncrId.AES_GCM_16, _GCM_KEY256, 64, b"", _GCM_CT256 + "b094dac5d93471bdec1a502270e3cc6c"),
    (
        EncrId.AES_GCM_16,
        _GCM_KEY256,
        60,
        _GCM_AAD,
        _GCM_CT256[:120] + "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
]


@pytest.mark.parametrize(("encr_id", "key", "length", "aad", "out"), _GCM_CASES)
def test_gcm_esp_layout(encr_id: EncrId, key: str, length: int, aad: bytes, out: str) -> None:
    spec = encr_spec(encr_id, len(h(key)) * 8)
    aead = spec.keyed(h(key) + h("cafebabe"))
    iv = h("facedbaddecaf888")
    assert aead.seal(iv, _GCM_PLAIN[:length], aad) == h(out)
    assert aead.open(iv, h(out), aad) == _GCM_PLAIN[:length]
    tampered = bytearray(h(out))
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError):
        aead.open(iv, bytes(tampered), aad)


# AES-CCM with the 11-octet ESP nonce (RFC 4309 §4: 3-octet salt | 8-octet IV).  RFC 4309 has
# no vectors; these are NIST CAVS CCM vectors with an 11-octet nonce, as used for the
# "rfc4309(ccm(aes))" cases of the Linux kernel crypto test manager.
_CCM_CASES = [
    (
        EncrId.AES_CCM_16,
        "83ac5466c2ebe5052e01d1fc5d82662e96ac59",
        "3007a1e2a2c75524",
        "",
        "19c881f6e986ff930b7867e5bbb7fc6e8377b3a60c8c9f9c352eade062f991a1",
        "ab6fe1691d1999a892a0c46f7ee28bb170bb8ca64c6e978a572bbe5d98a6b132"
        "da24ead9a13998fda4bed9f21a6d22a8",
    ),
    (
        EncrId.AES_CCM_16,
        "1e2c7e01419aefc00d58966e5ca24bd34fa319",
        "d3015ad830601556",
        "dae6289c452dfd635eda4cb6e6fcf9b70c56cbe4e0057ae10a630978bc2c55de",
        "87a336fd96b39378a92863ba12a31485571e06c97b21ef767f387e8e29a43e7e",
        "8a1e11f0026be219fc70c46d8eb799abc54ba2acd3f348ff3bb5ce53efdebb02"
        "a986156c13feda0a22b8293dd8399a23",
    ),
    (
        EncrId.AES_CCM_8,
        "e08d997160d7971abd0199d58adf713ad3df244b5e3d4b4e307ab9d8530a5e2b1e2991",
        "ad8ec1530acf2dbe",
        "19b61f57c4f3f08b782b9402290f42276b75cb9834087e79e43e490d848b2287",
        "e1d9d813eb3a753f9dbd5f66bedcbb66bf1799624a39271f1ddc24ae192f984c",
        "19b86133452b43966f51d020307d9bc6263df8c96516a89ff0621734f21e8d754e13ccc0c32a542d",
    ),
    (
        EncrId.AES_CCM_12,
        "7cc8183b8d99e07c4541b8bd5ca7c2328ab80259a4fea92c09759a9b3c9b2739f9d94e",
        "63b53d9d43f61e50",
        "57f56b8b575c3d3b1302010c834c96358ed639cf7d149b94b03936e68f57e013",
        "3b6c2936b6ef07a68372074fcffa66895fcab1bad58f2c2730db750993d465e4",
        "b0885a33aae5c71d8523c7c62ff41e3dcc63442507784f9e96b888ebbc481f0639af39acd84a80397b728af7",
    ),
]


@pytest.mark.parametrize(("encr_id", "key", "iv", "aad", "plain", "out"), _CCM_CASES)
def test_ccm_esp_layout(encr_id: EncrId, key: str, iv: str, aad: str, plain: str, out: str) -> None:
    spec = encr_spec(encr_id, (len(h(key)) - 3) * 8)
    aead = spec.keyed(h(key))
    assert aead.seal(h(iv), h(plain), h(aad)) == h(out)
    assert aead.open(h(iv), h(out), h(aad)) == h(plain)
    with pytest.raises(IntegrityError):
        aead.open(h(iv), h(out), h(aad) + b"\x00")


def test_rfc7634_appendix_b_ikev2_message() -> None:
    """RFC 7634 Appendix B: the ChaCha20-Poly1305 protected INFORMATIONAL message."""
    key = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f") + h("a0a1a2a3")
    aad = h("c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e202500000000090000004529000029")
    body = (
        h("1011121314151617")
        + h("610394701f8d017f7c12924889")
        + h("6b71bfe25236efd7cdc67066906315b2")
    )
    sk = SkCipher(encr_spec(EncrId.CHACHA20_POLY1305), key)
    assert sk.open(aad, body) == h("0000000c000040010000000a")
    with pytest.raises(IntegrityError):
        sk.open(aad[:-1] + b"\x2a", body)


def test_gmac_authenticates_without_encrypting() -> None:
    spec = encr_spec(EncrId.NULL_AUTH_AES_GMAC, 128)
    assert (spec.key_size, spec.iv_size, spec.icv_size, spec.aead) == (20, 8, 16, True)
    gmac = spec.keyed(bytes(range(20)))
    iv, aad, plain = b"\x01" * 8, b"spi+seq!", b"inner packet"
    out = gmac.seal(iv, plain, aad)
    assert out[: len(plain)] == plain and len(out) == len(plain) + 16
    assert gmac.open(iv, out, aad) == plain
    # The IV is authenticated as part of the data (RFC 4543 §3.2).
    with pytest.raises(IntegrityError):
        gmac.open(b"\x02" * 8, out, aad)
    with pytest.raises(IntegrityError):
        gmac.open(iv, b"X" + out[1:], aad)


def test_spec_sizes() -> None:
    assert encr_spec(EncrId.AES_GCM_16, 256).key_size == 36
    assert encr_spec(EncrId.AES_CTR, 128).key_size == 20
    assert encr_spec(EncrId.CHACHA20_POLY1305).key_size == 36
    assert encr_spec(EncrId.AES_CBC, 128).key_size == 16
    assert encr_spec(EncrId.AES_CCM_8, 192).key_size == 27
    assert encr_spec(EncrId.AES_CBC, 256).block_size == 16
    assert encr_spec(EncrId.AES_CBC, 256).iv_size == 16
    assert encr_spec(EncrId.NULL).iv_size == 0
    for bad in [(EncrId.AES_CBC, None), (EncrId.AES_GCM_16, 64), (EncrId.DES3, None), (99, None)]:
        with pytest.raises(UnsupportedAlgorithm):
            encr_spec(*bad)
    with pytest.raises(CryptoError):
        encr_spec(EncrId.AES_CBC, 128).keyed(bytes(15))


# Every SK algorithm combination: AEADs alone, ciphers with every integrity transform.
_AEADS = [
    (EncrId.AES_GCM_8, 128),
    (EncrId.AES_GCM_12, 192),
    (EncrId.AES_GCM_16, 256),
    (EncrId.AES_CCM_8, 128),
    (EncrId.AES_CCM_12, 192),
    (EncrId.AES_CCM_16, 256),
    (EncrId.CHACHA20_POLY1305, None),
    (EncrId.NULL_AUTH_AES_GMAC, 128),
]
_CIPHERS = [
    (EncrId.AES_CBC, 128),
    (EncrId.AES_CBC, 256),
    (EncrId.AES_CTR, 192),
    (EncrId.NULL, None),
]
_INTEGS = [
    IntegId.HMAC_SHA1_96,
    IntegId.AES_XCBC_96,
    IntegId.AES_CMAC_96,
    IntegId.HMAC_SHA2_256_128,
    IntegId.HMAC_SHA2_384_192,
    IntegId.HMAC_SHA2_512_256,
]
_COMBOS = [(e, b, None) for e, b in _AEADS] + [(e, b, i) for e, b in _CIPHERS for i in _INTEGS]


def _sk(encr_id: int, bits: int | None, integ_id: int | None) -> SkCipher:
    spec = encr_spec(encr_id, bits)
    key = bytes((7 * n + 1) % 256 for n in range(spec.key_size))
    if integ_id is None:
        return SkCipher(spec, key)
    ispec = integ_spec(integ_id)
    return SkCipher(spec, key, ispec, bytes((3 * n + 5) % 256 for n in range(ispec.key_size)))


@pytest.mark.parametrize(("encr_id", "bits", "integ_id"), _COMBOS)
@settings(max_examples=15, deadline=None)
@given(plaintext=st.binary(max_size=200), aad=st.binary(min_size=32, max_size=36), data=st.data())
def test_sk_roundtrip_and_tamper(
    encr_id: int,
    bits: int | None,
    integ_id: int | None,
    plaintext: bytes,
    aad: bytes,
    data: st.DataObject,
) -> None:
    sk = _sk(encr_id, bits, integ_id)
    body = sk.seal(aad, plaintext)
    assert len(body) == sk.body_length(len(plaintext))
    assert sk.open(aad, body) == plaintext
    bit = data.draw(st.integers(0, 8 * (len(aad) + len(body)) - 1))
    blob = bytearray(aad + body)
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(IntegrityError):
        sk.open(bytes(blob[: len(aad)]), bytes(blob[len(aad) :]))


def test_sk_padding_minimal_and_any_padding_accepted() -> None:
    sk = _sk(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128)
    iv = bytes(16)
    assert sk.body_length(15) == 16 + 16 + 16  # 15 + pad length octet fills one block
    assert sk.body_length(16) == 16 + 32 + 16
    # A peer may pad with more (and non-zero) octets: seal a hand-padded block and open it.
    spec = encr_spec(EncrId.AES_CBC, 128)
    key = bytes((7 * n + 1) % 256 for n in range(16))
    ikey = bytes((3 * n + 5) % 256 for n in range(32))
    padded = b"payload" + b"\xff" * 24 + bytes([24])
    ct = spec.keyed(key).encrypt(iv, padded)
    aad = b"A" * 32
    icv = integ_spec(IntegId.HMAC_SHA2_256_128).keyed(ikey).compute(aad + iv + ct)
    assert sk.open(aad, iv + ct + icv) == b"payload"


def test_sk_rejects_bad_lengths_and_padding() -> None:
    sk = _sk(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128)
    aad = b"A" * 32
    with pytest.raises(CryptoError):
        sk.open(aad, b"")
    with pytest.raises(CryptoError):
        sk.open(aad, bytes(20))
    # Valid ICV over a ciphertext that is not a whole number of blocks.
    ikey = bytes((3 * n + 5) % 256 for n in range(32))
    mac = integ_spec(IntegId.HMAC_SHA2_256_128).keyed(ikey)
    body = bytes(16) + bytes(17)
    with pytest.raises(CryptoError):
        sk.open(aad, body + mac.compute(aad + body))
    # Pad length pointing outside the plaintext.
    key = bytes((7 * n + 1) % 256 for n in range(16))
    ct = encr_spec(EncrId.AES_CBC, 128).keyed(key).encrypt(bytes(16), bytes(15) + b"\x40")
    body = bytes(16) + ct
    with pytest.raises(CryptoError):
        sk.open(aad, body + mac.compute(aad + body))
    with pytest.raises(CryptoError):
        SkCipher(encr_spec(EncrId.AES_CBC, 128), key)
    with pytest.raises(CryptoError):
        SkCipher(
            encr_spec(EncrId.AES_GCM_16, 128),
            bytes(20),
            integ_spec(IntegId.HMAC_SHA1_96),
            bytes(20),
        )
