"""IKEv2 KDF vectors (../shared/vectors/ikev2-kdf.json from the repository root), AUTH octets
and NAT hashes."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from petrel.crypto.auth import psk_auth, signed_octets
from petrel.crypto.errors import CryptoError
from petrel.crypto.kdf import (
    child_keymat,
    derive_ike_keys,
    rekey_skeyseed,
    skeyseed,
    split_child_keymat,
)
from petrel.crypto.nat import nat_detection_hash
from petrel.crypto.prf import PrfSpec, prf_plus, prf_spec
from petrel.wire.registry import PrfId

h = bytes.fromhex

_REPO = Path(__file__).resolve().parents[3]
_VECTORS = _REPO.parent / "shared" / "vectors" / "ikev2-kdf.json"
if not _VECTORS.is_file():
    pytest.fail(f"KDF vectors missing: {_VECTORS} (the project's shared folder)", pytrace=False)
_DATA = json.loads(_VECTORS.read_text())

# SHA-224 has no IKEv2 transform ID; the CAVP vectors still exercise prf+ with it.
_PRFS = {
    "SHA-1": prf_spec(PrfId.HMAC_SHA1),
    "SHA-224": PrfSpec(0, 28, 28, "hmac-sha224"),
    "SHA-256": prf_spec(PrfId.HMAC_SHA2_256),
    "SHA-384": prf_spec(PrfId.HMAC_SHA2_384),
    "SHA-512": prf_spec(PrfId.HMAC_SHA2_512),
}


def _id(v: dict[str, object]) -> str:
    return f"{v['hash']}-{v.get('source_ref', '')}-{str(v.get('Ni', ''))[:8]}"


@pytest.mark.parametrize("v", _DATA["vectors"], ids=_id)
def test_cavp_ikev2_kdf(v: dict[str, str | int]) -> None:
    prf = _PRFS[str(v["hash"])]
    ni, nr, spi_i, spi_r = (h(str(v[k])) for k in ("Ni", "Nr", "SPIi", "SPIr"))
    seed = skeyseed(prf, ni, nr, h(str(v["g_ir"])))
    assert seed == h(str(v["SKEYSEED"]))
    dkm_len = int(v["dkm_len_bits"]) // 8
    dkm = prf_plus(prf, seed, ni + nr + spi_i + spi_r, dkm_len)
    assert dkm == h(str(v["DKM"]))
    # derive_ike_keys slices one prf+ stream (whose prefix is the DKM):
    # SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr.
    keys = derive_ike_keys(prf, seed, ni, nr, spi_i, spi_r, 16, 20)
    d = prf.key_size
    stream = prf_plus(prf, seed, ni + nr + spi_i + spi_r, 3 * d + 72)
    assert stream[: min(dkm_len, len(stream))] == dkm[: len(stream)]
    assert keys.sk_d == stream[:d] == dkm[:d]
    assert keys.sk_ai == stream[d : d + 20] and keys.sk_ar == stream[d + 20 : d + 40]
    assert keys.sk_ei == stream[d + 40 : d + 56] and keys.sk_er == stream[d + 56 : d + 72]
    assert keys.sk_pi == stream[d + 72 : 2 * d + 72]
    assert keys.sk_pr == stream[2 * d + 72 :]
    assert "sk_d" not in repr(keys) and keys.sk_d.hex() not in repr(keys)
    sk_d = dkm[:d]
    child_len = int(v["child_dkm_len_bits"]) // 8
    assert child_keymat(prf, sk_d, ni, nr, child_len) == h(str(v["DKM_Child"]))
    g_new = h(str(v["g_ir_new"]))
    assert child_keymat(prf, sk_d, ni, nr, child_len, g_new) == h(str(v["DKM_Child_DH"]))
    assert rekey_skeyseed(prf, sk_d, g_new, ni, nr) == h(str(v["SKEYSEED_rekey"]))


@pytest.mark.parametrize("v", _DATA["partial"], ids=_id)
def test_partial_kdf_vectors(v: dict[str, str | int]) -> None:
    prf = _PRFS[str(v["hash"])]
    if v["kind"] == "SKEYSEED":
        assert prf.compute(h(str(v["Ni_Nr"])), h(str(v["g_ir"]))) == h(str(v["SKEYSEED"]))
    else:
        length = int(v["dkm_len_bits"]) // 8
        out = prf_plus(prf, h(str(v["SKEYSEED"])), h(str(v["Ni_Nr_SPIi_SPIr"])), length)
        assert out == h(str(v["DKM"]))


def test_all_vectors_ran() -> None:
    assert len(_DATA["vectors"]) == 25 and len(_DATA["partial"]) == 12


def test_aes_prf_skeyseed_uses_eight_octets_of_each_nonce() -> None:
    """§2.14: for AES128-XCBC/CMAC the key is the first 64 bits of Ni and of Nr."""
    ni, nr, shared = bytes(range(32)), bytes(range(100, 132)), b"g^ir"
    for prf_id in (PrfId.AES128_XCBC, PrfId.AES128_CMAC):
        prf = prf_spec(prf_id)
        assert skeyseed(prf, ni, nr, shared) == prf.compute(ni[:8] + nr[:8], shared)
        with pytest.raises(CryptoError):
            skeyseed(prf, ni[:7], nr, shared)
    prf = prf_spec(PrfId.HMAC_SHA2_256)
    expected = hmac.new(ni + nr, shared, hashlib.sha256).digest()
    assert skeyseed(prf, ni, nr, shared) == expected


def test_prf_plus_limits() -> None:
    prf = prf_spec(PrfId.HMAC_SHA1)
    assert len(prf_plus(prf, b"k", b"s", 255 * 20)) == 255 * 20
    with pytest.raises(CryptoError):
        prf_plus(prf, b"k", b"s", 255 * 20 + 1)
    assert prf_plus(prf, b"k", b"s", 0) == b""


def test_split_child_keymat() -> None:
    keymat = bytes(range(2 * (36 + 0)))
    assert split_child_keymat(keymat, 36, 0) == (keymat[:36], b"", keymat[36:], b"")
    keymat = bytes(range(2 * (16 + 32)))
    ei, ai, er, ar = split_child_keymat(keymat, 16, 32)
    assert (ei, ai, er, ar) == (keymat[:16], keymat[16:48], keymat[48:64], keymat[64:])
    with pytest.raises(CryptoError):
        split_child_keymat(keymat[:-1], 16, 32)


def test_signed_octets_and_psk_auth() -> None:
    """§2.15, checked against an independent composition with the standard library."""
    prf = prf_spec(PrfId.HMAC_SHA2_256)
    message, nonce, sk_p = b"IKE_SA_INIT bytes", b"N" * 32, b"P" * 32
    id_body = bytes([2, 0, 0, 0]) + b"moon.example"
    octets = signed_octets(message, nonce, prf, sk_p, id_body)
    maced_id = hmac.new(sk_p, id_body, hashlib.sha256).digest()
    assert octets == message + nonce + maced_id
    secret = b"correct horse battery staple"
    pad_key = hmac.new(secret, b"Key Pad for IKEv2", hashlib.sha256).digest()
    assert psk_auth(prf, secret, octets) == hmac.new(pad_key, octets, hashlib.sha256).digest()


def test_nat_detection_hash() -> None:
    spi_i, spi_r = h("0102030405060708"), bytes(8)
    addr4, addr6 = bytes([192, 0, 2, 1]), bytes(15) + b"\x01"
    expected = hashlib.sha1(spi_i + spi_r + addr4 + (4500).to_bytes(2, "big")).digest()
    assert nat_detection_hash(spi_i, spi_r, addr4, 4500) == expected
    assert len(nat_detection_hash(spi_i, spi_r, addr6, 500)) == 20
    assert nat_detection_hash(spi_i, spi_r, addr4, 500) != nat_detection_hash(
        spi_i, spi_r, addr4, 4500
    )
    for args in (
        (spi_i[:7], spi_r, addr4, 500),
        (spi_i, spi_r, addr4[:3], 500),
        (spi_i, spi_r, addr4, 70000),
        (spi_i, spi_r, addr4, -1),
    ):
        with pytest.raises(CryptoError):
            nat_detection_hash(*args)
