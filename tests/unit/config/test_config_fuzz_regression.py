"""Crashes fuzz/fuzz_swanctl.py found, each as a small reproducer.

``parse_swanctl`` takes any text and must return a configuration or raise ``ConfigError``.
A new case is marked ``xfail(strict=True)`` while its bug is open (with a matching
``KNOWN_BUGS`` entry in fuzz/fuzz_swanctl.py); both go when the fix lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from petrel.config.errors import ConfigError
from petrel.config.swanctl import load_swanctl, parse_swanctl


def test_secret_with_a_lone_surrogate() -> None:
    text = "secrets {\n  ike-1 {\n    id = moon\n    secret = s3cr\udcff\n  }\n}\n"
    try:
        config = parse_swanctl(text)
    except ConfigError as exc:
        assert exc.line == 4
    else:
        assert config.secrets[0].secret == b"s3cr\xff"


def test_include_pattern_with_nul(tmp_path: Path) -> None:
    """A swanctl.conf (a file: NUL is valid UTF-8) with ``include sub<NUL>/*.conf``."""
    (tmp_path / "sub").mkdir()
    conf = tmp_path / "swanctl.conf"
    conf.write_text("connections {\n  include sub\0/*.conf\n}\n")
    with pytest.raises(ConfigError) as info:
        load_swanctl(str(conf))
    assert info.value.line == 2


def test_credential_file_name_with_nul(tmp_path: Path) -> None:
    """A swanctl.conf whose ``certs`` names a file with a NUL character in it."""
    conf = tmp_path / "swanctl.conf"
    conf.write_text(
        "connections {\n  c {\n    local {\n      auth = psk\n      certs = a\0b.pem\n    }\n"
        "    remote {\n      auth = psk\n    }\n  }\n}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_swanctl(str(conf))
    assert info.value.line == 5
