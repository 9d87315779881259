"""Wireshark key-file formats: ikev2_decryption_table and esp_sa."""

from __future__ import annotations

import pytest
from decode_helpers import SAMPLE_ESP_KEYS, SAMPLE_IKE_KEYS

from petrel.decode.keys import (
    IkeSaKeys,
    KeyFileError,
    find_esp_sa,
    parse_esp_sa,
    parse_ikev2_table,
    split_uat_line,
)
from petrel.wire.registry import EncrId, IntegId

SPI_I = "0011223344556677"
SPI_R = "8899aabbccddeeff"


def test_uat_field_syntax() -> None:
    assert split_uat_line('ab:cd, "x\\"y\\x41" ,,"z"') == [
        ("abcd", False),
        ('x"yA', True),
        ("", False),
        ("z", True),
    ]
    with pytest.raises(KeyFileError):
        split_uat_line('"unterminated')
    with pytest.raises(KeyFileError):
        split_uat_line('"a" "b"')


def test_cbc_row_as_strongswan_writes_it() -> None:
    line = (
        f'{SPI_I},{SPI_R},{"01" * 16},{"02" * 16},"AES-CBC-128 [RFC3602]",'
        f'{"03" * 32},{"04" * 32},"HMAC_SHA2_256_128 [RFC4868]"'
    )
    table = parse_ikev2_table("# header\n\n" + line + "\n")
    keys = table[(bytes.fromhex(SPI_I), bytes.fromhex(SPI_R))]
    assert (keys.encr, keys.key_bits, keys.integ) == (
        EncrId.AES_CBC,
        128,
        IntegId.HMAC_SHA2_256_128,
    )
    assert keys.sk_ai == b"\x03" * 32 and keys.sk_er == b"\x02" * 16
    assert not keys.aead
    assert keys.to_line() == line
    assert "0101" not in repr(keys)  # no key material in reprs


def test_quoted_hex_fields_are_accepted() -> None:
    line = (
        f'"{SPI_I}","{SPI_R}","{"01" * 20}","{"02" * 20}",'
        '"AES-GCM-128 with 16 octet ICV [RFC5282]","","","NONE [RFC4306]"'
    )
    keys = next(iter(parse_ikev2_table(line).values()))
    assert keys.encr == EncrId.AES_GCM_16 and keys.key_bits == 128 and keys.aead


def test_sample_table_round_trips() -> None:
    text = SAMPLE_IKE_KEYS.read_text()
    (keys,) = parse_ikev2_table(text).values()
    assert isinstance(keys, IkeSaKeys) and keys.encr == EncrId.AES_GCM_16
    assert len(keys.sk_ei) == 36  # AES-256 key + 4-octet salt (RFC 5282 §7.1)
    assert keys.to_line() in text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("aa,bb", "expected 8 fields"),
        (f'{SPI_I},{SPI_R},00,00,"AES-XYZ",,,"NONE [RFC4306]"', "unknown encryption"),
        (f'{SPI_I},{SPI_R},00,00,"NULL [RFC2410]",,,"MD4"', "unknown integrity"),
        (f'0011,{SPI_R},00,00,"NULL [RFC2410]",,,"NONE [RFC4306]"', "8 octets"),
        (f'{SPI_I},{SPI_R},0g,00,"NULL [RFC2410]",,,"NONE [RFC4306]"', "SK_ei is not hex"),
    ],
)
def test_bad_rows_name_their_line(line: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=f"line 2: .*{message}"):
        parse_ikev2_table("# c\n" + line)


def test_esp_sa_rows_and_lookup() -> None:
    rows = parse_esp_sa(SAMPLE_ESP_KEYS.read_text())
    assert [(r.src, r.dst, r.spi, r.encr) for r in rows] == [
        ("192.0.2.1", "192.0.2.2", 0xC0FFEE02, EncrId.AES_GCM_16),
        ("192.0.2.2", "192.0.2.1", 0xC0FFEE01, EncrId.AES_GCM_16),
    ]
    assert len(rows[0].encr_key) == 36 and rows[0].integ == IntegId.NONE
    assert find_esp_sa(rows, "192.0.2.2", "192.0.2.1", 0xC0FFEE01) is rows[1]
    assert find_esp_sa(rows, "192.0.2.9", "192.0.2.1", 0xC0FFEE01) is None
    wildcard = parse_esp_sa('"IPv4","*","*","*","AES-CBC [RFC3602]","0x00","NULL",""')
    assert find_esp_sa(wildcard, "10.0.0.1", None, 1) is wildcard[0]


def test_esp_sa_errors() -> None:
    with pytest.raises(KeyFileError, match="line 1: unknown protocol"):
        parse_esp_sa('"IPX","a","b","0x1","NULL","","NULL",""')
    with pytest.raises(KeyFileError, match="not a number"):
        parse_esp_sa('"IPv4","a","b","spi","NULL","","NULL",""')
