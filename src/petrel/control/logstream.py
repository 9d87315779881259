"""Petrel's log records as VICI ``log`` and ``control-log`` events (charon's vici_logger.c and
vici_control.c): ``group`` (charon's three-letter subsystem), ``level`` (0 warnings and
failures, 1 SAs up/down, 2 every message), ``thread``, ``ikesa-name``/``ikesa-uniqueid`` when
the line concerns an IKE SA, and ``msg``.

The daemon attaches :class:`ViciLogHandler` to the ``petrel`` logger.  A record concerns an IKE
SA when its text names one the way the engine logs them (``IKE SA 3``, ``IKE SA c[3]``,
``CHILD_SA net{5}``).  While a command asks for a ``loglevel`` above the daemon's own
(``--log``), :class:`LevelBoost` lets those records exist — as charon's controller raises the
bus level for its listener — and filters them out of the daemon's other handlers, which print
exactly what they printed before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..logsetup import record_context

__all__ = [
    "LevelBoost",
    "LogLine",
    "RecordContext",
    "ViciLogHandler",
    "python_level",
]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line; ``ike_id`` is the IKE SA it concerns, if any."""

    group: str
    level: int
    thread: int
    ike_id: int | None
    msg: str


def python_level(level: int) -> int:
    """charon's level as Python's (the inverse of :func:`charon_level`)."""
    return logging.WARNING if level <= 0 else logging.INFO if level == 1 else logging.DEBUG


class _AsBefore(logging.Filter):
    """Passes a record only if its logger's level before the boost let it through."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        while name:
            if name in self.levels:
                return record.levelno >= self.levels[name]
            name = name.rpartition(".")[0]
        return True


class LevelBoost:
    """Lowers the ``petrel`` loggers' levels while some command wants more detail than the
    daemon logs; every other handler on ``petrel`` keeps its former output (a filter)."""

    def __init__(self, own: logging.Handler, root: str = "petrel") -> None:
        self._own = own
        self._root = root
        self._wanted: list[int] = []
        self._saved: dict[str, int] = {}  # logger name → its level before the boost
        self._filter = _AsBefore()
        self._filtered: list[logging.Handler] = []

    def _loggers(self) -> list[logging.Logger]:
        names = [self._root] + [
            n for n in logging.Logger.manager.loggerDict if n.startswith(self._root + ".")
        ]
        return [logging.getLogger(n) for n in names]

    def acquire(self, level: int) -> int:
        """Records up to charon ``level`` are wanted; returns a token for :meth:`release`."""
        self._wanted.append(python_level(level))
        self._apply()
        return self._wanted[-1]

    def release(self, token: int) -> None:
        if token in self._wanted:
            self._wanted.remove(token)
            self._apply()

    def _apply(self) -> None:
        self._restore()
        wanted = min(self._wanted, default=None)
        loggers = self._loggers()
        if wanted is None or all(lg.getEffectiveLevel() <= wanted for lg in loggers):
            return
        self._filter.levels = {lg.name: lg.getEffectiveLevel() for lg in loggers}
        for lg in loggers:
            if lg.getEffectiveLevel() > wanted:
                self._saved[lg.name] = lg.level
                lg.setLevel(wanted)
        for handler in logging.getLogger(self._root).handlers:
            if handler is not self._own:
                handler.addFilter(self._filter)
                self._filtered.append(handler)

    def _restore(self) -> None:
        for name, level in self._saved.items():
            logging.getLogger(name).setLevel(level)
        self._saved.clear()
        for handler in self._filtered:
            handler.removeFilter(self._filter)
        self._filtered.clear()


RecordContext = Callable[[logging.LogRecord], tuple[str, int, tuple[str | None, int] | None]]
"""(group, charon level, (connection, IKE SA id) or None) of a record: by default
:func:`petrel.logsetup.record_context`, the one reading the daemon's own log lines use."""


class ViciLogHandler(logging.Handler):
    """Hands every record to ``sink`` as a :class:`LogLine`, on the event loop's thread.

    ``wanted`` is asked first (cheap: is anyone listening?); ``context`` names a record's
    group, level and IKE SA (the log set-up's reading unless given).  Lines logged while a
    line is being delivered are dropped (sending an event may itself log), as charon's loggers
    do.
    """

    def __init__(
        self,
        sink: Callable[[LogLine], None],
        wanted: Callable[[], bool],
        call_soon_threadsafe: Callable[..., object],
        context: RecordContext | None = None,
    ) -> None:
        super().__init__(logging.DEBUG)
        self._context = context or record_context
        self._sink = sink
        self._wanted = wanted
        self._call_soon_threadsafe = call_soon_threadsafe
        self._loop_thread = threading.get_ident()
        self._threads: dict[int, int] = {self._loop_thread: 1}
        self._busy = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._busy or not self._wanted():
            return
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string is the caller's bug, never ours to raise
            return
        thread = self._threads.setdefault(record.thread or 0, len(self._threads) + 1)
        group, level, sa = self._context(record)
        line = LogLine(group.upper(), level, thread, sa[1] if sa is not None else None, msg)
        if threading.get_ident() != self._loop_thread:
            self._call_soon_threadsafe(self._deliver, line)
        else:
            self._deliver(line)

    def _deliver(self, line: LogLine) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self._sink(line)
        finally:
            self._busy = False
