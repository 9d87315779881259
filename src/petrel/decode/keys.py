"""Key files in Wireshark's own UAT formats, so one file serves ``petrel decode`` and Wireshark.

``ikev2_decryption_table`` (Wireshark's ISAKMP "IKEv2 Decryption Table"), one SA a line::

    SPIi,SPIr,SK_ei,SK_er,"<encr name>",SK_ai,SK_ar,"<integ name>"

byte fields as bare hex (strongSwan's save-keys plugin writes them so); for AEAD the SK_e
values carry the salt (RFC 5282 §7.1) and SK_a are empty with integrity "NONE [RFC4306]".

``esp_sa`` (Wireshark's ESP "SA" table), one SA a line::

    "IPv4","src","dst","0xSPI","<encr name>","0xkey","<auth name>","0xkey"

UAT syntax: comma-separated fields, each a double-quoted string (``\\xNN``, ``\\\\`` and
``\\"`` escapes) or bare hex; lines starting with ``#`` are comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from petrel.wire.registry import EncrId, IntegId


class KeyFileError(ValueError):
    """A key file line that cannot be used; the message names the line."""


# Wireshark packet-isakmp.c vs_ikev2_encr_algs → (transform id, key bits).
IKEV2_ENCR_NAMES: dict[str, tuple[EncrId, int | None]] = {
    "3DES [RFC2451]": (EncrId.DES3, None),
    "NULL [RFC2410]": (EncrId.NULL, None),
}
for _bits in (128, 192, 256):
    IKEV2_ENCR_NAMES[f"AES-CBC-{_bits} [RFC3602]"] = (EncrId.AES_CBC, _bits)
    IKEV2_ENCR_NAMES[f"AES-CTR-{_bits} [RFC5930]"] = (EncrId.AES_CTR, _bits)
    for _icv, _gcm, _ccm in (
        (8, EncrId.AES_GCM_8, EncrId.AES_CCM_8),
        (12, EncrId.AES_GCM_12, EncrId.AES_CCM_12),
        (16, EncrId.AES_GCM_16, EncrId.AES_CCM_16),
    ):
        IKEV2_ENCR_NAMES[f"AES-GCM-{_bits} with {_icv} octet ICV [RFC5282]"] = (_gcm, _bits)
        IKEV2_ENCR_NAMES[f"AES-CCM-{_bits} with {_icv} octet ICV [RFC5282]"] = (_ccm, _bits)

# Wireshark packet-isakmp.c vs_ikev2_auth_algs → transform id.
IKEV2_INTEG_NAMES: dict[str, IntegId] = {
    "NONE [RFC4306]": IntegId.NONE,
    "HMAC_MD5_96 [RFC2403]": IntegId.HMAC_MD5_96,
    "HMAC_SHA1_96 [RFC2404]": IntegId.HMAC_SHA1_96,
    "HMAC_MD5_128 [RFC4595]": IntegId.HMAC_MD5_128,
    "HMAC_SHA1_160 [RFC4595]": IntegId.HMAC_SHA1_160,
    "HMAC_SHA2_256_128 [RFC4868]": IntegId.HMAC_SHA2_256_128,
    "HMAC_SHA2_384_192 [RFC4868]": IntegId.HMAC_SHA2_384_192,
    "HMAC_SHA2_512_256 [RFC4868]": IntegId.HMAC_SHA2_512_256,
}

# Wireshark packet-ipsec.c esp_encryption_type_vals → transform id (key bits from key length).
ESP_ENCR_NAMES: dict[str, EncrId] = {
    "NULL": EncrId.NULL,
    "TripleDES-CBC [RFC2451]": EncrId.DES3,
    "AES-CBC [RFC3602]": EncrId.AES_CBC,
    "AES-CTR [RFC3686]": EncrId.AES_CTR,
    "DES-CBC [RFC2405]": EncrId.DES,
    "AES-GCM with 8 octet ICV [RFC4106]": EncrId.AES_GCM_8,
    "AES-GCM with 12 octet ICV [RFC4106]": EncrId.AES_GCM_12,
    "AES-GCM with 16 octet ICV [RFC4106]": EncrId.AES_GCM_16,
    "ChaCha20 with Poly1305 [RFC7634]": EncrId.CHACHA20_POLY1305,
}

# Wireshark packet-ipsec.c esp_authentication_type_vals → transform id.
ESP_AUTH_NAMES: dict[str, IntegId] = {
    "NULL": IntegId.NONE,
    "HMAC-SHA-1-96 [RFC2404]": IntegId.HMAC_SHA1_96,
    "HMAC-SHA-256-128 [RFC4868]": IntegId.HMAC_SHA2_256_128,
    "HMAC-SHA-384-192 [RFC4868]": IntegId.HMAC_SHA2_384_192,
    "HMAC-SHA-512-256 [RFC4868]": IntegId.HMAC_SHA2_512_256,
    "HMAC-MD5-96 [RFC2403]": IntegId.HMAC_MD5_96,
}


_AEAD = frozenset(
    {
        EncrId.AES_GCM_8,
        EncrId.AES_GCM_12,
        EncrId.AES_GCM_16,
        EncrId.AES_CCM_8,
        EncrId.AES_CCM_12,
        EncrId.AES_CCM_16,
        EncrId.CHACHA20_POLY1305,
    }
)


def ikev2_encr_name(encr: int, key_bits: int | None) -> str | None:
    """Wireshark's table name for an IKE encryption transform, or None if it has none."""
    for name, value in IKEV2_ENCR_NAMES.items():
        if value == (encr, key_bits):
            return name
    return None


def ikev2_integ_name(integ: int) -> str | None:
    """Wireshark's table name for an IKE integrity transform, or None if it has none."""
    for name, value in IKEV2_INTEG_NAMES.items():
        if value == integ:
            return name
    return None


@dataclass(frozen=True, slots=True)
class IkeSaKeys:
    """One row of ``ikev2_decryption_table``."""

    spi_i: bytes
    spi_r: bytes
    sk_ei: bytes
    sk_er: bytes
    encr: EncrId
    key_bits: int | None
    sk_ai: bytes
    sk_ar: bytes
    integ: IntegId

    @property
    def aead(self) -> bool:
        """True for combined-mode encryption (no separate SK_a, RFC 5282)."""
        return self.encr in _AEAD

    def to_line(self) -> str:
        """The row in the format Wireshark (and strongSwan's save-keys) write."""
        encr = ikev2_encr_name(self.encr, self.key_bits)
        integ = ikev2_integ_name(self.integ)
        if encr is None or integ is None:
            raise KeyFileError("Wireshark has no name for these algorithms")
        return (
            f"{self.spi_i.hex()},{self.spi_r.hex()},{self.sk_ei.hex()},{self.sk_er.hex()},"
            f'"{encr}",{self.sk_ai.hex()},{self.sk_ar.hex()},"{integ}"'
        )

    def __repr__(self) -> str:  # never print key material by accident
        return f"IkeSaKeys(spi_i={self.spi_i.hex()}, spi_r={self.spi_r.hex()}, {self.encr.name})"


@dataclass(frozen=True, slots=True)
class EspSaKeys:
    """One row of ``esp_sa``; ``src``/``dst`` may be ``*`` wildcards as in Wireshark."""

    family: str
    src: str
    dst: str
    spi: int | None
    encr_name: str
    encr: EncrId | None
    encr_key: bytes
    auth_name: str
    integ: IntegId | None
    auth_key: bytes

    def __repr__(self) -> str:
        spi = "*" if self.spi is None else f"0x{self.spi:08x}"
        return f"EspSaKeys({self.src} -> {self.dst}, spi={spi}, {self.encr_name})"

    def to_line(self) -> str:
        """The row as Wireshark's ``esp_sa`` UAT file holds it."""
        spi = "*" if self.spi is None else f"0x{self.spi:08x}"
        auth_key = f"0x{self.auth_key.hex()}" if self.auth_key else ""
        return (
            f'"{self.family}","{self.src}","{self.dst}","{spi}","{self.encr_name}",'
            f'"0x{self.encr_key.hex()}","{self.auth_name}","{auth_key}"'
        )

    @classmethod
    def for_sa(
        cls,
        src: str,
        dst: str,
        spi: int,
        encr: int,
        encr_key: bytes,
        integ: int,
        auth_key: bytes,
    ) -> EspSaKeys:
        """A row for one ESP SA; raises KeyFileError when Wireshark has no name for it."""
        encr_name = next((n for n, v in ESP_ENCR_NAMES.items() if v == encr), None)
        auth_name = next((n for n, v in ESP_AUTH_NAMES.items() if v == integ), None)
        if encr_name is None or auth_name is None:
            raise KeyFileError("Wireshark has no name for these ESP algorithms")
        family = "IPv6" if ":" in src else "IPv4"
        return cls(
            family,
            src,
            dst,
            spi,
            encr_name,
            EncrId(encr),
            encr_key,
            auth_name,
            IntegId(integ),
            auth_key,
        )


def _unescape(text: str) -> str:
    return re.sub(
        r"\\(x[0-9A-Fa-f]{2}|.)",
        lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "x" else m.group(1),
        text,
    )


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def split_uat_line(line: str) -> list[tuple[str, bool]]:
    """Fields of one UAT line as (text, was_quoted); raises KeyFileError on bad syntax."""
    fields: list[tuple[str, bool]] = []
    pos, line = 0, line.strip()
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if line.startswith('"', pos):
            match = _QUOTED.match(line, pos)
            if match is None:
                raise KeyFileError(f"unterminated string at column {pos + 1}")
            fields.append((_unescape(match.group(1)), True))
            pos = match.end()
        else:
            comma = line.find(",", pos)
            end = len(line) if comma < 0 else comma
            fields.append((line[pos:end].strip().replace(":", ""), False))
            pos = end
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos >= len(line):
            return fields
        if line[pos] != ",":
            raise KeyFileError(f"expected ',' at column {pos + 1}")
        pos += 1


def _content_lines(text: str) -> list[tuple[int, str]]:
    return [
        (no, line)
        for no, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _hex(value: str, what: str) -> bytes:
    text = value.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{what} is not hex") from None


def parse_ikev2_table(text: str) -> dict[tuple[bytes, bytes], IkeSaKeys]:
    """Rows of an ``ikev2_decryption_table`` keyed by (SPIi, SPIr)."""
    table: dict[tuple[bytes, bytes], IkeSaKeys] = {}
    for no, line in _content_lines(text):
        try:
            fields = [value for value, _ in split_uat_line(line)]
            if len(fields) < 8:
                raise KeyFileError(f"expected 8 fields, found {len(fields)}")
            spi_i, spi_r = _hex(fields[0], "SPIi"), _hex(fields[1], "SPIr")
            if len(spi_i) != 8 or len(spi_r) != 8:
                raise KeyFileError("SPIs must be 8 octets")
            if fields[4] not in IKEV2_ENCR_NAMES:
                raise KeyFileError(f"unknown encryption algorithm {fields[4]!r}")
            if fields[7] not in IKEV2_INTEG_NAMES:
                raise KeyFileError(f"unknown integrity algorithm {fields[7]!r}")
            encr, bits = IKEV2_ENCR_NAMES[fields[4]]
            table[(spi_i, spi_r)] = IkeSaKeys(
                spi_i=spi_i,
                spi_r=spi_r,
                sk_ei=_hex(fields[2], "SK_ei"),
                sk_er=_hex(fields[3], "SK_er"),
                encr=encr,
                key_bits=bits,
                sk_ai=_hex(fields[5], "SK_ai"),
                sk_ar=_hex(fields[6], "SK_ar"),
                integ=IKEV2_INTEG_NAMES[fields[7]],
            )
        except KeyFileError as exc:
            raise KeyFileError(f"line {no}: {exc}") from None
    return table


def parse_esp_sa(text: str) -> list[EspSaKeys]:
    """Rows of an ``esp_sa`` file, in file order (Wireshark uses the first match)."""
    rows: list[EspSaKeys] = []
    for no, line in _content_lines(text):
        try:
            fields = [value for value, _ in split_uat_line(line)]
            if len(fields) < 8:
                raise KeyFileError(f"expected 8 fields, found {len(fields)}")
            family, src, dst, spi_text, encr_name, encr_key, auth_name, auth_key = fields[:8]
            if family not in ("IPv4", "IPv6", "Any"):
                raise KeyFileError(f"unknown protocol {family!r}")
            spi_text = spi_text.strip()
            if spi_text in ("*", ""):
                spi = None
            else:
                try:
                    spi = int(spi_text, 0)
                except ValueError:
                    raise KeyFileError(f"SPI {spi_text!r} is not a number") from None
            rows.append(
                EspSaKeys(
                    family=family,
                    src=src.strip() or "*",
                    dst=dst.strip() or "*",
                    spi=spi,
                    encr_name=encr_name,
                    encr=ESP_ENCR_NAMES.get(encr_name),
                    encr_key=_key(encr_key, "encryption key"),
                    auth_name=auth_name,
                    integ=ESP_AUTH_NAMES.get(auth_name),
                    auth_key=_key(auth_key, "authentication key"),
                )
            )
        except KeyFileError as exc:
            raise KeyFileError(f"line {no}: {exc}") from None
    return rows


def _key(value: str, what: str) -> bytes:
    """A Wireshark ESP key: ``0x``-prefixed hex, or the literal ASCII string otherwise."""
    text = value.strip()
    if text[:2] in ("0x", "0X"):
        digits = text[2:]
        if len(digits) % 2:
            digits = "0" + digits
        return _hex(digits, what)
    return value.encode("latin-1", "replace")


def _addr_matches(pattern: str, address: str | None) -> bool:
    if pattern in ("*", "") or address is None:
        return True
    if pattern.endswith("*"):
        return address.startswith(pattern.rstrip("*"))
    return pattern == address


def find_esp_sa(
    rows: list[EspSaKeys], src: str | None, dst: str | None, spi: int
) -> EspSaKeys | None:
    """The first ``esp_sa`` row matching the packet (Wireshark's lookup order)."""
    for row in rows:
        if row.spi is not None and row.spi != spi:
            continue
        if _addr_matches(row.src, src) and _addr_matches(row.dst, dst):
            return row
    return None
