"""strongSwan proposal strings ↔ IKEv2 SA proposals (RFC 7296 §3.3).

Syntax (swanctl.conf ``proposals`` / ``esp_proposals`` / ``ah_proposals``): algorithm keywords
joined by ``-`` make one proposal, proposals are separated by ``,``, and ``default`` stands for
the built-in safe set.  In IKE proposals without a PRF keyword the PRF follows the integrity
keywords; with only AEAD ciphers the integrity keywords are dropped.  ESP and AH proposals get
``noesn`` unless ``esn``/``noesn`` is given, and ``none`` among their key exchanges makes PFS
optional.  ``keN_<method>`` adds RFC 9370 additional key exchanges (transform type 5+N).
"""

from __future__ import annotations

import re

from petrel.crypto.errors import ProposalError
from petrel.wire.payloads import Proposal, Transform
from petrel.wire.registry import (
    EncrId,
    EsnId,
    IntegId,
    KeId,
    PrfId,
    ProtocolId,
    TransformType,
)

DEFAULT_IKE = (
    "aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512"
    "-x25519-ecp256-ecp384-modp3072-modp2048,"
    "aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-modp3072-modp2048"
)
DEFAULT_ESP = "aes256gcm16,aes128gcm16,chacha20poly1305,aes256-sha256,aes128-sha256"
DEFAULT_AH = "sha256-sha384-sha512"

_DEFAULTS = {ProtocolId.IKE: DEFAULT_IKE, ProtocolId.ESP: DEFAULT_ESP, ProtocolId.AH: DEFAULT_AH}

# Keywords with a fixed (id, key length) meaning.
_ENCR_FIXED: dict[str, tuple[int, int | None]] = {
    "des": (EncrId.DES, None),
    "3des": (EncrId.DES3, None),
    "cast128": (EncrId.CAST, 128),
    "blowfish": (EncrId.BLOWFISH, 128),
    "null": (EncrId.NULL, None),
    "chacha20poly1305": (EncrId.CHACHA20_POLY1305, None),
}
_ENCR_FAMILY = re.compile(r"(aes|camellia)(128|192|256)?(ctr|ccm\d*|gcm\d*|gmac)?")
_ICV_SUFFIX = {"8": 8, "64": 8, "12": 12, "96": 12, "16": 16, "128": 16, "": 16}
_MODE_IDS: dict[tuple[str, str, int], int] = {
    ("aes", "", 0): EncrId.AES_CBC,
    ("aes", "ctr", 0): EncrId.AES_CTR,
    ("aes", "ccm", 8): EncrId.AES_CCM_8,
    ("aes", "ccm", 12): EncrId.AES_CCM_12,
    ("aes", "ccm", 16): EncrId.AES_CCM_16,
    ("aes", "gcm", 8): EncrId.AES_GCM_8,
    ("aes", "gcm", 12): EncrId.AES_GCM_12,
    ("aes", "gcm", 16): EncrId.AES_GCM_16,
    ("aes", "gmac", 0): EncrId.NULL_AUTH_AES_GMAC,
    ("camellia", "", 0): EncrId.CAMELLIA_CBC,
    ("camellia", "ctr", 0): EncrId.CAMELLIA_CTR,
    ("camellia", "ccm", 8): EncrId.CAMELLIA_CCM_8,
    ("camellia", "ccm", 12): EncrId.CAMELLIA_CCM_12,
    ("camellia", "ccm", 16): EncrId.CAMELLIA_CCM_16,
}
_AEAD_IDS = frozenset(
    {
        EncrId.AES_CCM_8,
        EncrId.AES_CCM_12,
        EncrId.AES_CCM_16,
        EncrId.AES_GCM_8,
        EncrId.AES_GCM_12,
        EncrId.AES_GCM_16,
        EncrId.NULL_AUTH_AES_GMAC,
        EncrId.CAMELLIA_CCM_8,
        EncrId.CAMELLIA_CCM_12,
        EncrId.CAMELLIA_CCM_16,
        EncrId.CHACHA20_POLY1305,
    }
)

_INTEG: dict[str, int] = {
    "md5": IntegId.HMAC_MD5_96,
    "sha1": IntegId.HMAC_SHA1_96,
    "sha": IntegId.HMAC_SHA1_96,
    "aesxcbc": IntegId.AES_XCBC_96,
    "md5_128": IntegId.HMAC_MD5_128,
    "sha1_160": IntegId.HMAC_SHA1_160,
    "aescmac": IntegId.AES_CMAC_96,
    "sha256": IntegId.HMAC_SHA2_256_128,
    "sha2_256": IntegId.HMAC_SHA2_256_128,
    "sha384": IntegId.HMAC_SHA2_384_192,
    "sha2_384": IntegId.HMAC_SHA2_384_192,
    "sha512": IntegId.HMAC_SHA2_512_256,
    "sha2_512": IntegId.HMAC_SHA2_512_256,
}
_PRF: dict[str, int] = {
    "prfmd5": PrfId.HMAC_MD5,
    "prfsha1": PrfId.HMAC_SHA1,
    "prfaesxcbc": PrfId.AES128_XCBC,
    "prfsha256": PrfId.HMAC_SHA2_256,
    "prfsha384": PrfId.HMAC_SHA2_384,
    "prfsha512": PrfId.HMAC_SHA2_512,
    "prfaescmac": PrfId.AES128_CMAC,
}
# The PRF an integrity algorithm implies when no PRF keyword is given.
_PRF_OF_INTEG: dict[int, int] = {
    IntegId.HMAC_MD5_96: PrfId.HMAC_MD5,
    IntegId.HMAC_MD5_128: PrfId.HMAC_MD5,
    IntegId.HMAC_SHA1_96: PrfId.HMAC_SHA1,
    IntegId.HMAC_SHA1_160: PrfId.HMAC_SHA1,
    IntegId.AES_XCBC_96: PrfId.AES128_XCBC,
    IntegId.AES_CMAC_96: PrfId.AES128_CMAC,
    IntegId.HMAC_SHA2_256_128: PrfId.HMAC_SHA2_256,
    IntegId.HMAC_SHA2_384_192: PrfId.HMAC_SHA2_384,
    IntegId.HMAC_SHA2_512_256: PrfId.HMAC_SHA2_512,
}
_KE: dict[str, int] = {
    "modp768": KeId.MODP_768,
    "modp1024": KeId.MODP_1024,
    "modp1536": KeId.MODP_1536,
    "modp2048": KeId.MODP_2048,
    "modp3072": KeId.MODP_3072,
    "modp4096": KeId.MODP_4096,
    "modp6144": KeId.MODP_6144,
    "modp8192": KeId.MODP_8192,
    "ecp256": KeId.ECP_256,
    "ecp384": KeId.ECP_384,
    "ecp521": KeId.ECP_521,
    "modp1024s160": KeId.MODP_1024_160,
    "modp2048s224": KeId.MODP_2048_224,
    "modp2048s256": KeId.MODP_2048_256,
    "ecp192": KeId.ECP_192,
    "ecp224": KeId.ECP_224,
    "ecp224bp": KeId.ECP_224_BP,
    "ecp256bp": KeId.ECP_256_BP,
    "ecp384bp": KeId.ECP_384_BP,
    "ecp512bp": KeId.ECP_512_BP,
    "curve25519": KeId.CURVE25519,
    "x25519": KeId.CURVE25519,
    "curve448": KeId.CURVE448,
    "x448": KeId.CURVE448,
    "mlkem512": KeId.ML_KEM_512,
    "mlkem768": KeId.ML_KEM_768,
    "mlkem1024": KeId.ML_KEM_1024,
}
_ADDKE = re.compile(r"ke([1-7])_(\w+)")

# Canonical keyword for each id when formatting (first alias wins).
_INTEG_NAMES = {v: k for k, v in reversed(_INTEG.items())}
_PRF_NAMES = {v: k for k, v in _PRF.items()}
_KE_NAMES = {v: k for k, v in reversed(_KE.items())}
_KE_NAMES[KeId.CURVE25519] = "x25519"
_KE_NAMES[KeId.CURVE448] = "x448"


def _encr_keyword(word: str) -> Transform | None:
    fixed = _ENCR_FIXED.get(word)
    if fixed is not None:
        return Transform(TransformType.ENCR, fixed[0], fixed[1])
    match = _ENCR_FAMILY.fullmatch(word)
    if match is None:
        return None
    family, bits, mode = match.group(1), match.group(2), match.group(3) or ""
    base = mode.rstrip("0123456789")
    icv = 0
    if base in ("ccm", "gcm"):
        suffix = _ICV_SUFFIX.get(mode[len(base) :])
        if suffix is None:
            return None
        icv = suffix
    elif base != mode:
        return None
    encr_id = _MODE_IDS.get((family, base, icv))
    if encr_id is None:
        return None
    return Transform(TransformType.ENCR, encr_id, int(bits or 128))


def _parse_one(text: str, protocol: ProtocolId) -> tuple[Transform, ...]:
    encr: list[Transform] = []
    integ: list[Transform] = []
    prf: list[Transform] = []
    ke: list[Transform] = []
    esn: list[Transform] = []
    addke: list[Transform] = []
    for raw in text.split("-"):
        word = raw.strip().lower()
        if not word:
            raise ProposalError(text, "empty algorithm keyword in proposal")
        transform = _encr_keyword(word)
        if transform is not None:
            encr.append(transform)
        elif word in _INTEG:
            integ.append(Transform(TransformType.INTEG, _INTEG[word]))
        elif word in _PRF:
            prf.append(Transform(TransformType.PRF, _PRF[word]))
        elif word in _KE:
            ke.append(Transform(TransformType.KE, _KE[word]))
        elif word == "none" and protocol != ProtocolId.IKE:
            ke.append(Transform(TransformType.KE, KeId.NONE))
        elif word in ("esn", "noesn") and protocol != ProtocolId.IKE:
            esn.append(Transform(TransformType.ESN, EsnId.ESN if word == "esn" else EsnId.NO_ESN))
        elif (m := _ADDKE.fullmatch(word)) and (m.group(2) in _KE or m.group(2) == "none"):
            method = KeId.NONE if m.group(2) == "none" else _KE[m.group(2)]
            addke.append(Transform(TransformType.ADDKE1 + int(m.group(1)) - 1, method))
        else:
            raise ProposalError(raw.strip(), f"unknown algorithm keyword in {text!r}")

    aead = [t for t in encr if t.id in _AEAD_IDS]
    if aead and len(aead) != len(encr):
        raise ProposalError(text, "AEAD and non-AEAD ciphers cannot share a proposal")
    if protocol == ProtocolId.IKE:
        if not prf:
            prf = [Transform(TransformType.PRF, _PRF_OF_INTEG[t.id]) for t in integ]
        if aead:
            integ = []
        _require(encr, text, "no encryption algorithm")
        _require(prf, text, "no PRF (give a prf* or integrity keyword)")
        _require(integ or aead, text, "no integrity algorithm for a non-AEAD cipher")
        _require(ke, text, "no key exchange method")
    else:
        if prf:
            raise ProposalError(text, f"PRF keywords are not allowed in {protocol.name} proposals")
        if protocol == ProtocolId.AH:
            if encr:
                raise ProposalError(text, "encryption keywords are not allowed in AH proposals")
            _require(integ, text, "no integrity algorithm")
        else:
            if aead:
                integ = []
            _require(encr, text, "no encryption algorithm")
            _require(integ or aead, text, "no integrity algorithm for a non-AEAD cipher")
        if not esn:
            esn = [Transform(TransformType.ESN, EsnId.NO_ESN)]
    ordered = [*encr, *prf, *integ, *ke, *esn, *sorted(addke, key=lambda t: t.type)]
    return tuple(dict.fromkeys(ordered))


def _require(items: object, text: str, detail: str) -> None:
    if not items:
        raise ProposalError(text, detail)


def parse_proposals(text: str, protocol: ProtocolId) -> tuple[Proposal, ...]:
    """Parse a comma-separated proposal list into wire proposals numbered from 1, empty SPI."""
    protocol = ProtocolId(protocol)
    if protocol not in _DEFAULTS:
        raise ProposalError(protocol.name, "proposals are for IKE, ESP or AH")
    pieces: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if item.lower() == "default":
            pieces.extend(_DEFAULTS[protocol].split(","))
        elif not item:
            raise ProposalError(text, "empty proposal")
        else:
            pieces.append(item)
    return tuple(
        Proposal(number, protocol, b"", _parse_one(piece, protocol))
        for number, piece in enumerate(pieces, start=1)
    )


def _format_encr(t: Transform) -> str:
    for keyword, (encr_id, bits) in _ENCR_FIXED.items():
        if t.id == encr_id and t.key_length in (bits, None):
            return keyword
    for (family, mode, icv), encr_id in _MODE_IDS.items():
        if t.id == encr_id:
            bits = "" if t.key_length is None else str(t.key_length)
            return f"{family}{bits}{mode}{icv or ''}"
    return f"encr{t.id}"


def _format_transform(t: Transform) -> str:
    kind = int(t.type)
    if kind == TransformType.ENCR:
        return _format_encr(t)
    if kind == TransformType.INTEG:
        return _INTEG_NAMES.get(t.id, f"integ{t.id}")
    if kind == TransformType.PRF:
        return _PRF_NAMES.get(t.id, f"prf{t.id}")
    if kind == TransformType.ESN:
        return "esn" if t.id == EsnId.ESN else "noesn"
    name = "none" if t.id == KeId.NONE else _KE_NAMES.get(t.id, f"ke{t.id}")
    if kind == TransformType.KE:
        return name
    if TransformType.ADDKE1 <= kind <= TransformType.ADDKE7:
        return f"ke{kind - TransformType.ADDKE1 + 1}_{name}"
    return f"type{kind}_{t.id}"


def format_proposal(proposal: Proposal) -> str:
    """strongSwan keyword form of one proposal (``parse_proposals`` reads it back)."""
    return "-".join(_format_transform(t) for t in proposal.transforms)
