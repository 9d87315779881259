"""Stateless COOKIEs (RFC 7296 §2.6) with a rotating, versioned secret.

A cookie is ``version (1) | time (4) | difficulty (1) | tag (16)`` where the tag is
HMAC-SHA-256-128 under the secret of that version over the other fields, the initiator's nonce,
its address and its SPI (§2.6's ``<VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)``,
with the time and the puzzle difficulty asked (RFC 8019 §7.1.1) covered as well). The secret
is replaced every ``rotate`` seconds; a cookie made with the previous secret is still accepted
until it is ``lifetime`` seconds old, never later. Tags are compared in constant time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..crypto.integ import Integrity, integ_spec
from ..wire.registry import IntegId

COOKIE_SIZE = 22
_FIELDS = struct.Struct(">BIB")  # version, time (s), puzzle difficulty
_MAC = integ_spec(IntegId.HMAC_SHA2_256_128)  # 32-octet key, 16-octet tag


class CookieJar:
    """Makes and checks cookies; time comes from the caller (sans-I/O)."""

    def __init__(
        self, random: Callable[[int], bytes], lifetime: float = 20.0, rotate: float = 60.0
    ) -> None:
        self._random = random
        self.lifetime = lifetime
        self.rotate = max(rotate, lifetime)  # the previous secret covers a whole lifetime
        self._version = 0
        self._keys = {0: random(32)}  # version -> key, for the current and previous secret
        self._secret = _MAC.keyed(self._keys[0])
        self._previous: tuple[int, Integrity] | None = None
        self._since: float | None = None

    def _roll(self, now: float) -> None:
        if self._since is None:
            self._since = now
        elif now - self._since >= self.rotate:
            self._previous = (self._version, self._secret)
            self._version = (self._version + 1) & 0xFF
            key = self._random(32)
            self._keys = {self._previous[0]: self._keys[self._previous[0]], self._version: key}
            self._secret = _MAC.keyed(key)
            self._since = now

    def make(self, now: float, nonce: bytes, host: bytes, spi: bytes, difficulty: int = 0) -> bytes:
        """A cookie for an initiator (``host``: its packed address)."""
        self._roll(now)
        fields = _FIELDS.pack(self._version, int(now) & 0xFFFFFFFF, difficulty)
        return fields + self._secret.compute(_signed(fields, nonce, host, spi))

    def check(self, cookie: bytes, now: float, nonce: bytes, host: bytes, spi: bytes) -> int | None:
        """The puzzle difficulty a valid cookie was issued with; None if it is forged, of an
        unknown or retired secret, or older than ``lifetime``."""
        self._roll(now)
        if len(cookie) != COOKIE_SIZE:
            return None
        fields, tag = cookie[: _FIELDS.size], cookie[_FIELDS.size :]
        version, issued, difficulty = _FIELDS.unpack(fields)
        age = (int(now) - issued) & 0xFFFFFFFF
        if age > self.lifetime:
            return None
        if version == self._version:
            secret = self._secret
        elif self._previous is not None and version == self._previous[0]:
            secret = self._previous[1]
        else:
            return None
        if not secret.verify(_signed(fields, nonce, host, spi), tag):  # constant time
            return None
        return int(difficulty)

    @property
    def version(self) -> int:
        return self._version

    def __getstate__(self) -> dict[str, object]:
        """Picklable (engine snapshots): the keyed MAC contexts are rebuilt from the keys."""
        state = dict(self.__dict__)
        state["_secret"] = self._keys[self._version]
        if self._previous is not None:
            state["_previous"] = (self._previous[0], self._keys[self._previous[0]])
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        keys: dict[int, bytes] = dict(self._keys)
        self._secret = _MAC.keyed(keys[self._version])
        if self._previous is not None:
            self._previous = (self._previous[0], _MAC.keyed(keys[self._previous[0]]))


def _signed(fields: bytes, nonce: bytes, host: bytes, spi: bytes) -> bytes:
    return fields + len(nonce).to_bytes(2, "big") + nonce + host + spi
