"""charon's counters plugin over VICI (get-counters/reset-counters): every counter of
vici_counter_type_names, global and by connection name; a reset keeps a baseline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from ..ike.counters import MESSAGE_COUNTERS

__all__ = ["COUNTER_NAMES", "Counters"]

COUNTER_NAMES = (
    "ike-rekey-init",
    "ike-rekey-resp",
    "child-rekey",
    "invalid",
    "invalid-spi",
    *MESSAGE_COUNTERS,
)
"""charon's counters plugin (vici_counter_type_names), all of them: IKE SA rekeyings we
initiated and answered, completed Child SA rekeyings, IKE messages dropped as malformed or
invalid, IKE messages for an unknown SPI, and IKE messages by exchange, direction and kind
(``ike-init-in-req`` … ``info-out-resp``, counted by the engine once per message)."""

_INVALID_SPI = "message for an unknown IKE SA"
_INVALID_PREFIXES = ("malformed", "invalid", "IKE_SA_INIT request without", "request without")
_INVALID_ALSO = ("IKE_SA_INIT response without SA, KE or Nonce", "response without an SK payload")


def _is_invalid(reason: str) -> bool:
    return reason.startswith(_INVALID_PREFIXES) or reason in _INVALID_ALSO


class Counters:
    """charon's counters: global and per connection name; reset keeps a baseline."""

    def __init__(
        self,
        drops: Callable[[], Mapping[str, int]],
        messages: Callable[[], Mapping[str | None, Mapping[str, int]]],
    ) -> None:
        self._drops = drops  # the engine's dropped-input counts by reason
        self._messages = messages  # the engine's message counts: None = all, or by connection
        self._conn_baseline: dict[str, Counter[str]] = {}
        self._global: Counter[str] = Counter()
        self._by_conn: dict[str, Counter[str]] = {}
        self._baseline: Counter[str] = Counter()

    def count(self, name: str, conn: str | None) -> None:
        self._global[name] += 1
        if conn:
            self._by_conn.setdefault(conn, Counter())[name] += 1

    def _engine_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter(self._messages().get(None, {}))
        for reason, number in self._drops().items():
            if reason == _INVALID_SPI:
                counts["invalid-spi"] += number
            elif _is_invalid(reason):
                counts["invalid"] += number
        return counts

    def get(self, conn: str | None) -> dict[str, str] | None:
        if conn:
            messages = self._messages().get(conn)
            if conn not in self._by_conn and messages is None:
                return None
            counts = self._by_conn.get(conn, Counter()) + Counter(messages or {})
            counts.subtract(self._conn_baseline.get(conn, Counter()))
        else:
            counts = self._global + self._engine_counts()
            counts.subtract(self._baseline)
        return {name: str(max(counts[name], 0)) for name in COUNTER_NAMES}

    def names(self) -> list[str]:
        named = [name for name in self._messages() if name is not None]
        return list(dict.fromkeys([*self._by_conn, *named]))

    def reset(self, conn: str | None) -> None:
        if conn:
            self._by_conn.pop(conn, None)
            self._conn_baseline[conn] = Counter(self._messages().get(conn, {}))
        else:
            self._global.clear()
            self._baseline = self._engine_counts()

    def reset_all(self) -> None:
        for conn in self.names():
            self.reset(conn)
        self.reset(None)
