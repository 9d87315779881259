"""Key exchange: known answers (RFC 5903 §8, RFC 7748 §5.2/§6), round trips, RFC 6989 checks."""

from __future__ import annotations

import pytest

from petrel.crypto import ke as ke_module
from petrel.crypto.errors import InvalidPublicValue, UnsupportedAlgorithm
from petrel.crypto.ke import (
    key_exchange_from_private,
    new_key_exchange,
    respond_key_exchange,
    supported_groups,
)
from petrel.wire.registry import KeId

h = bytes.fromhex

# RFC 5903 §8.1-8.3: i, g^i (x|y), r, g^r (x|y), g^ir x coordinate.
_RFC5903 = [
    (
        KeId.ECP_256,
        "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
        "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180"
        "5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
        "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
        "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63"
        "56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
        "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de",
    ),
    (
        KeId.ECP_384,
        "099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655"
        "e35b538041e649ee3faef896783ab194",
        "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6"
        "de3ac808acb4bdb4c88732aee95f41aa"
        "9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38e"
        "eb9fcff3c2c947dae69b4c634573a81c",
        "41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942"
        "e0308312916b8ed2960e4bd55a7448fc",
        "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d"
        "0d1ac43a0336def96fda41d0774a3571"
        "dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1ff"
        "f83fa40142209dff5eaad96db9e6386c",
        "11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4"
        "d603135569b9e9d09cf5d4a270f59746",
    ),
    (
        KeId.ECP_521,
        "0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a0"
        "95aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
        "0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbe"
        "e1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e"
        "017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10a"
        "d8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
        "0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e"
        "9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
        "00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a21"
        "9b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f"
        "015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87"
        "220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
        "01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04"
        "d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea",
    ),
]


@pytest.mark.parametrize(("group", "i", "gi", "r", "gr", "gir"), _RFC5903)
def test_rfc5903_ecp(group: KeId, i: str, gi: str, r: str, gr: str, gir: str) -> None:
    initiator = key_exchange_from_private(group, h(i))
    responder = key_exchange_from_private(group, h(r))
    assert initiator.public_value() == h(gi)
    assert responder.public_value() == h(gr)
    assert initiator.shared_secret(h(gr)) == h(gir)
    assert responder.shared_secret(h(gi)) == h(gir)


# RFC 7748 §6.1 (X25519) and §6.2 (X448): Alice's and Bob's private keys, public keys, K.
_RFC7748 = [
    (
        KeId.CURVE25519,
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    ),
    (
        KeId.CURVE448,
        "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf5"
        "74a9419744897391006382a6f127ab1d9ac2d8c0a598726b",
        "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bb"
        "c836647241d953d40c5b12da88120d53177f80e532c41fa0",
        "1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120"
        "bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d",
        "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972"
        "fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609",
        "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56"
        "fd2464c335543936521c24403085d59a449a5037514a879d",
    ),
]


@pytest.mark.parametrize(("group", "a", "ga", "b", "gb", "k"), _RFC7748)
def test_rfc7748_ecdh(group: KeId, a: str, ga: str, b: str, gb: str, k: str) -> None:
    alice = key_exchange_from_private(group, h(a))
    bob = key_exchange_from_private(group, h(b))
    assert alice.public_value() == h(ga)
    assert bob.public_value() == h(gb)
    assert alice.shared_secret(h(gb)) == h(k)
    assert bob.shared_secret(h(ga)) == h(k)


def test_rfc7748_section_5_2_x25519_vector() -> None:
    scalar = h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    out = h("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    assert key_exchange_from_private(KeId.CURVE25519, scalar).shared_secret(u) == out


@pytest.mark.parametrize("group", sorted(supported_groups()))
def test_round_trip_every_group(group: KeId) -> None:
    initiator = new_key_exchange(group)
    assert initiator.group == group
    responder_value, secret = respond_key_exchange(group, initiator.public_value())
    assert initiator.shared_secret(responder_value) == secret
    assert len(secret) > 0
    # Fresh private values every time.
    assert new_key_exchange(group).public_value() != initiator.public_value()


def test_supported_groups() -> None:
    groups = supported_groups()
    for g in (14, 15, 16, 17, 18, 19, 20, 21, 28, 29, 30, 31, 32, 36, 37):
        assert g in groups
    for g in (KeId.MODP_1024, KeId.ML_KEM_512, KeId.ECP_224_BP, 999):
        assert g not in groups
        with pytest.raises(UnsupportedAlgorithm):
            new_key_exchange(g)
        with pytest.raises(UnsupportedAlgorithm):
            respond_key_exchange(g, b"")
    with pytest.raises(UnsupportedAlgorithm, match="ML-KEM-768/1024"):
        new_key_exchange(KeId.ML_KEM_512)


@pytest.mark.parametrize("group", [14, 15, 16, 17, 18])
def test_modp_rejects_invalid_values(group: int) -> None:
    kex = new_key_exchange(group)
    size = len(kex.public_value())
    p = int(ke_module._MODP_PRIMES_HEX[group], 16)
    p_minus_1 = (p - 1).to_bytes(size, "big")
    for bad in (
        bytes(size),
        (1).to_bytes(size, "big"),
        p_minus_1,
        p.to_bytes(size, "big"),
        b"\xff" * size,
        b"\x02" * (size - 1),
        b"\x02" * (size + 1),
    ):
        with pytest.raises(InvalidPublicValue):
            kex.shared_secret(bad)
        with pytest.raises(InvalidPublicValue):
            respond_key_exchange(group, bad)


@pytest.mark.parametrize("group", [19, 20, 21, 28, 29, 30])
def test_ecp_rejects_invalid_points(group: int) -> None:
    kex = new_key_exchange(group)
    good = new_key_exchange(group).public_value()
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    for bad in (off_curve, bytes(len(good)), good[:-1], good + b"\x00", b"\x04" + good):
        with pytest.raises(InvalidPublicValue):
            kex.shared_secret(bad)
        with pytest.raises(InvalidPublicValue):
            respond_key_exchange(group, bad)


# Low-order points of Curve25519 (RFC 7748 §6.1 / RFC 8031 §2): 0, 1 and a point of order 8.
_X25519_LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
]


@pytest.mark.parametrize("bad", _X25519_LOW_ORDER)
def test_x25519_rejects_low_order_points(bad: bytes) -> None:
    with pytest.raises(InvalidPublicValue):
        new_key_exchange(KeId.CURVE25519).shared_secret(bad)
    with pytest.raises(InvalidPublicValue):
        respond_key_exchange(KeId.CURVE25519, bad)


def test_x448_rejects_zero_and_bad_length() -> None:
    for bad in (bytes(56), (1).to_bytes(56, "little"), bytes(32), bytes(57)):
        with pytest.raises(InvalidPublicValue):
            new_key_exchange(KeId.CURVE448).shared_secret(bad)
    with pytest.raises(InvalidPublicValue):
        new_key_exchange(KeId.CURVE25519).shared_secret(bytes(31))


@pytest.mark.parametrize(("group", "ek", "ct"), [(36, 1184, 1088), (37, 1568, 1568)])
def test_mlkem_lengths_and_validation(group: int, ek: int, ct: int) -> None:
    initiator = new_key_exchange(group)
    assert len(initiator.public_value()) == ek
    ciphertext, secret = respond_key_exchange(group, initiator.public_value())
    assert len(ciphertext) == ct and len(secret) == 32
    assert initiator.shared_secret(ciphertext) == secret
    for bad in (b"", bytes(ek - 1), b"\xff" * ek):
        with pytest.raises(InvalidPublicValue):
            respond_key_exchange(group, bad)
    for bad in (b"", bytes(ct - 1), bytes(ct + 1)):
        with pytest.raises(InvalidPublicValue):
            initiator.shared_secret(bad)
    # A tampered ciphertext decapsulates (implicit rejection) to a different secret.
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    assert initiator.shared_secret(tampered) != secret
