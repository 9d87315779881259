"""The daemon's settings in strongswan.conf: the IKE_SA_INIT admission knobs.

As charon does, Petrel reads the file that ``STRONGSWAN_CONF`` names (strongSwan settings
syntax, :mod:`petrel.config.settings`). Of the ``charon`` section it takes the keys below,
with charon's meaning; everything else there belongs to charon and is left alone. Petrel's
own knobs (cookie lifetimes, RFC 8019 puzzles, temporary blocks) sit in a ``petrel`` section.
The result maps :class:`petrel.ike.services.EngineSettings` field names to typed values.
"""

from __future__ import annotations

import math

from .errors import ConfigError
from .settings import Section, Setting, load_settings

# charon.<key> -> (EngineSettings field, type)
CHARON_KEYS: dict[str, tuple[str, type]] = {
    "cookie_threshold": ("cookie_threshold", int),
    "block_threshold": ("block_threshold", int),
    "init_limit_half_open": ("init_limit_half_open", int),
    "init_limit_job_load": ("init_limit_job_load", int),
    "half_open_timeout": ("half_open_timeout", float),
}
# petrel.<key> -> (EngineSettings field, type)
PETREL_KEYS: dict[str, tuple[str, type]] = {
    "block_time": ("block_time", float),
    "init_rate_per_host": ("init_rate_per_host", float),
    "ipv6_source_prefix": ("ipv6_source_prefix", int),
    "cookie_lifetime": ("cookie_lifetime", float),
    "cookie_secret_lifetime": ("cookie_secret_lifetime", float),
    "puzzle_difficulty": ("puzzle_difficulty", int),
    "puzzle_max_difficulty": ("puzzle_max_difficulty", int),
    "puzzle_max_solve": ("puzzle_max_solve", int),
}
_MAX_DIFFICULTY = 64


def read_daemon_settings(path: str) -> dict[str, int | float]:
    """EngineSettings overrides from the strongswan.conf at ``path``; ConfigError (with
    file:line) for a value that is not a non-negative number, or an unknown ``petrel`` key."""
    return settings_from(load_settings(path))


def settings_from(root: Section) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    charon = root.section("charon")
    if charon is not None:
        for key, (name, kind) in CHARON_KEYS.items():
            setting = charon.get(key)
            if setting is not None:
                out[name] = _number(setting, f"charon.{key}", kind)
    petrel = root.section("petrel")
    if petrel is not None:
        for key, setting in petrel.settings.items():
            if key not in PETREL_KEYS:
                raise ConfigError(f"unknown setting petrel.{key}", setting.file, setting.line, key)
            name, kind = PETREL_KEYS[key]
            out[name] = _number(setting, f"petrel.{key}", kind)
            if name == "ipv6_source_prefix" and not 1 <= out[name] <= 128:
                message = f"petrel.{key}: a prefix length of 1 to 128"
                raise ConfigError(message, setting.file, setting.line, key)
        for sub in petrel.sections.values():
            raise ConfigError(f"unknown section petrel.{sub.name}", sub.file, sub.line)
    for name in ("puzzle_difficulty", "puzzle_max_difficulty", "puzzle_max_solve"):
        if out.get(name, 0) > _MAX_DIFFICULTY:
            raise ConfigError(f"{name} above {_MAX_DIFFICULTY} bits", root.file, root.line, name)
    return out


def _number(setting: Setting, key: str, kind: type) -> int | float:
    text = setting.value.strip()
    try:
        value = int(text) if kind is int else float(text.removesuffix("s"))
    except ValueError:
        raise ConfigError(
            f"{key}: {text!r} is not a {'whole ' if kind is int else ''}number",
            setting.file,
            setting.line,
            key,
        ) from None
    if value < 0 or not math.isfinite(value):
        message = f"{key}: must be a finite, non-negative number"
        raise ConfigError(message, setting.file, setting.line, key)
    return value
