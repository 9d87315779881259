"""The responder's half-open IKE SAs (RFC 7296 §2.6), counted globally and per source.

An IKE SA is half-open from our IKE_SA_INIT response until its IKE_AUTH request arrives (or
the half-open timeout ends it). Insertion order is creation order, so the oldest comes first.
A source is what :class:`~petrel.ike.sources.SourceKey` makes of the peer's address.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from .sa import IkeSa

HalfOpenKey = tuple[bytes, str, int]  # (SPIi, peer host, peer port)


class HalfOpenTable:
    """A mapping (SPIi, host, port) → IKE SA that also counts entries per source."""

    def __init__(self, source: Callable[[str], str] = str) -> None:
        self._sas: dict[HalfOpenKey, IkeSa] = {}
        self._source = source
        self._per_source: Counter[str] = Counter()
        self.ids: set[int] = set()  # their ike_ids: the engine's timers skip them in bulk

    def __len__(self) -> int:
        return len(self._sas)

    def __contains__(self, key: object) -> bool:
        return key in self._sas

    def __iter__(self) -> Iterator[HalfOpenKey]:
        return iter(self._sas)

    def get(self, key: HalfOpenKey) -> IkeSa | None:
        return self._sas.get(key)

    def __setitem__(self, key: HalfOpenKey, sa: IkeSa) -> None:
        old = self._sas.get(key)
        if old is None:
            self._per_source[self._source(key[1])] += 1
        else:
            self.ids.discard(old.ike_id)
        self._sas[key] = sa
        self.ids.add(sa.ike_id)

    def pop(self, key: HalfOpenKey, default: IkeSa | None = None) -> IkeSa | None:
        sa = self._sas.pop(key, None)
        if sa is None:
            return default
        self._forget(key[1])
        self.ids.discard(sa.ike_id)
        return sa

    def __delitem__(self, key: HalfOpenKey) -> None:
        self.ids.discard(self._sas.pop(key).ike_id)
        self._forget(key[1])

    def items(self) -> list[tuple[HalfOpenKey, IkeSa]]:
        return list(self._sas.items())

    def values(self) -> list[IkeSa]:
        return list(self._sas.values())

    def count(self, source: str) -> int:
        """Half-open SAs from ``source`` (what the source function makes of an address: any
        address in it, any port)."""
        return self._per_source.get(source, 0)

    def oldest(self) -> IkeSa | None:
        """The first inserted, i.e. the first to time out (time only moves forward)."""
        return next(iter(self._sas.values()), None)

    def _forget(self, host: str) -> None:
        source = self._source(host)
        left = self._per_source[source] - 1
        if left > 0:
            self._per_source[source] = left
        else:
            del self._per_source[source]
