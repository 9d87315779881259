"""Counted, rate-limited reporting of dropped input (one log line per reason per interval)."""

from __future__ import annotations

import logging
from collections import Counter


class DropLog:
    """Counts drops by reason and logs each reason at most once per ``interval`` seconds.

    Time comes from the caller (sans-I/O): pass the ``now`` the engine was given.
    """

    def __init__(self, logger: logging.Logger, interval: float = 5.0) -> None:
        self.logger = logger
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def drop(self, reason: str, now: float, detail: str = "") -> None:
        """Count one drop; log it unless this reason was logged less than ``interval`` ago."""
        self.counts[reason] += 1
        last = self._last_logged.get(reason)
        if last is not None and now - last < self.interval:
            self._suppressed[reason] += 1
            return
        self._last_logged[reason] = now
        more = self._suppressed.pop(reason, 0)
        suffix = f" (+{more} more since last report)" if more else ""
        self.logger.warning("dropped: %s%s%s", reason, f": {detail}" if detail else "", suffix)
