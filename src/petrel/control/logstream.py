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
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "LevelBoost",
    "LogLine",
    "RecordContext",
    "ViciLogHandler",
    "charon_group",
    "charon_level",
    "python_level",
]

_GROUPS = {"daemon": "DMN", "control": "CFG", "server": "CFG", "commands": "CFG"}
_IKE_SA = re.compile(r"\bIKE SA (?:[^\s\[\]]+\[(\d+)\]|(\d+)\b)")
_CHILD_SA = re.compile(r"\bCHILD_SA [^\s{}]+\{(\d+)\}")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line; ``ike_id`` is the IKE SA it concerns, if any."""

    group: str
    level: int
    thread: int
    ike_id: int | None
    msg: str


def charon_group(logger: str) -> str:
    """``petrel.ike`` → ``IKE``, ``petrel.daemon`` → ``DMN``, ``petrel.control…`` → ``CFG``."""
    parts = logger.split(".")
    if len(parts) > 2 and parts[1] == "control":
        return "CFG"
    last = parts[-1]
    return _GROUPS.get(last, last[:3].upper())


def charon_level(levelno: int) -> int:
    """Python's level as charon's: warnings and worse 0, info 1, debug 2."""
    if levelno >= logging.WARNING:
        return 0
    return 1 if levelno >= logging.INFO else 2


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
"""(group, charon level, (connection, IKE SA id) or None) of a record, when the daemon's log
set-up already works them out; otherwise :class:`ViciLogHandler` does."""


class ViciLogHandler(logging.Handler):
    """Hands every record to ``sink`` as a :class:`LogLine`, on the event loop's thread.

    ``wanted`` is asked first (cheap: is anyone listening?); ``child_owner`` maps a Child SA
    id to its IKE SA; ``context``, if given, names a record's group, level and IKE SA instead
    of this module's own reading.  Lines logged while a line is being delivered are dropped
    (sending an event may itself log), as charon's loggers do.
    """

    def __init__(
        self,
        sink: Callable[[LogLine], None],
        wanted: Callable[[], bool],
        child_owner: Callable[[int], int | None],
        call_soon_threadsafe: Callable[..., object],
        context: RecordContext | None = None,
    ) -> None:
        super().__init__(logging.DEBUG)
        self._context = context
        self._sink = sink
        self._wanted = wanted
        self._child_owner = child_owner
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
        if self._context is not None:
            group, level, sa = self._context(record)
            ike_id = sa[1] if sa is not None else None
            line = LogLine(group.upper(), level, thread, ike_id, msg)
        else:
            line = LogLine(
                charon_group(record.name), charon_level(record.levelno), thread, None, msg
            )
        if threading.get_ident() != self._loop_thread:
            self._call_soon_threadsafe(self._deliver, line)
        else:
            self._deliver(line)

    def _deliver(self, line: LogLine) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self._sink(_attributed(line, self._child_owner))
        finally:
            self._busy = False


def _attributed(line: LogLine, child_owner: Callable[[int], int | None]) -> LogLine:
    if line.ike_id is not None:
        return line
    match = _IKE_SA.search(line.msg)
    if match is not None:
        ike_id: int | None = int(match.group(1) or match.group(2))
    else:
        child = _CHILD_SA.search(line.msg)
        ike_id = child_owner(int(child.group(1))) if child is not None else None
    if ike_id is None:
        return line
    return LogLine(line.group, line.level, line.thread, ike_id, line.msg)
