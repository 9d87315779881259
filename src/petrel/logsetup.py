"""charon-style logging: per-subsystem levels (``ike=2,chd=1``), text or JSON lines on stderr.

Levels follow charon's: -1 silent, 0 basic (warnings and errors), 1 audit (the default:
SA up/down and what failed), 2 control (every exchange and datagram), 3 and 4 accepted as 2 —
Petrel has no raw-data or private level: no level ever logs key material.

Subsystems carry charon's names (``dmn mgr ike chd job cfg knl net asn enc tnc imc imv pts
tls esp lib``; ``daemon`` and ``control`` are kept as aliases of ``dmn`` and ``cfg``).  Each
line names the IKE SA it concerns as charon does, ``<conn|unique id>``, found from the ids the
message mentions (``IKE SA 3``, ``CHILD_SA net{7}``) through a resolver the daemon registers.
Levels change at run time with :func:`set_levels` (VICI ``reload-settings`` with a ``log``
key, see :func:`reload_log_levels`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TextIO

GROUPS = (
    "dmn",
    "mgr",
    "ike",
    "chd",
    "job",
    "cfg",
    "knl",
    "net",
    "asn",
    "enc",
    "tnc",
    "imc",
    "imv",
    "pts",
    "tls",
    "esp",
    "lib",
)
"""charon's log groups (debug_names in strongSwan's libstrongswan/utils/debug.c)."""
ALIASES = {"daemon": "dmn", "control": "cfg"}
SUBSYSTEMS = (*GROUPS, *ALIASES)
FORMATS = ("text", "json")
DEFAULT_LEVEL = 1

_LEVELS = {-1: logging.CRITICAL + 10, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}

# Logger name → the groups its records may belong to (the first is the default).
_LOGGER_GROUPS: dict[str, tuple[str, ...]] = {
    "petrel.ike": ("ike", "chd"),
    "petrel.chd": ("chd",),
    "petrel.esp": ("esp",),
    "petrel.net": ("net",),
    "petrel.knl": ("knl",),
    "petrel.daemon": ("dmn",),
    "petrel.cfg": ("cfg",),
    "petrel.control": ("cfg",),
    "petrel.enc": ("enc",),
    "petrel.mgr": ("mgr",),
}
_CHILD_MODULES = frozenset({"child_create", "child_rekey", "child_delete"})

_IKE_ID = re.compile(r"IKE[ _]SA (?:(?P<name>[^\s\[\]():]+)\[(?P<id1>\d+)\]|(?P<id2>\d+)\b)")
_CHILD_ID = re.compile(r"CHILD_SA [^\s{}]+\{(?P<cid>\d+)\}")


def charon_level(levelno: int) -> int:
    """The charon level a Python record level stands for (0 basic, 1 audit, 2 control)."""
    if levelno >= logging.WARNING:
        return 0
    return 1 if levelno >= logging.INFO else 2


def group_of(record: logging.LogRecord) -> str:
    """The charon group of a record: by logger, Child SA task modules as ``chd``."""
    name = record.name
    while name not in _LOGGER_GROUPS and "." in name:
        name = name.rsplit(".", 1)[0]
    groups = _LOGGER_GROUPS.get(name, ("dmn",))
    if "chd" in groups and record.module in _CHILD_MODULES:
        return "chd"
    return groups[0]


def parse_levels(spec: str) -> dict[str, int]:
    """``"ike=2,esp=1"`` or ``"2"`` (all subsystems) → {group or "default": charon level}."""
    levels: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.rpartition("=")
        name = name.strip() if sep else "default"
        name = ALIASES.get(name, name)
        if name not in GROUPS and name != "default":
            raise ValueError(f"unknown log subsystem {name!r} (known: {', '.join(SUBSYSTEMS)})")
        try:
            level = int(value.strip())
        except ValueError:
            raise ValueError(f"log level of {name} must be -1..4, not {value.strip()!r}") from None
        if not -1 <= level <= 4:
            raise ValueError(f"log level of {name} must be -1..4, not {level}")
        levels[name] = level
    return levels


# ------------------------------------------------------------------------------ SA naming

IkeNameResolver = Callable[[int], str | None]
ChildOwnerResolver = Callable[[int], tuple[str, int] | None]


class _SaNames:
    """Which IKE SA a line concerns: ids from the message, names from the daemon's resolver
    (bounded memory of ids seen, so a line about an SA already gone still gets its name)."""

    MAX_REMEMBERED = 1024

    def __init__(self) -> None:
        self.ike_name: IkeNameResolver | None = None
        self.child_owner: ChildOwnerResolver | None = None
        self._known: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, ike_id: int, name: str) -> None:
        with self._lock:
            self._known[ike_id] = name
            self._known.move_to_end(ike_id)
            while len(self._known) > self.MAX_REMEMBERED:
                self._known.popitem(last=False)

    def lookup(self, message: str) -> tuple[str | None, int] | None:
        match = _IKE_ID.search(message)
        if match is not None:
            ike_id = int(match.group("id1") or match.group("id2"))
            name = match.group("name")
            if name is None and self.ike_name is not None:
                try:
                    name = self.ike_name(ike_id)
                except Exception:  # a resolver must never break logging
                    name = None
            if name is None:
                name = self._known.get(ike_id)
            else:
                self._remember(ike_id, name)
            return name, ike_id
        match = _CHILD_ID.search(message)
        if match is not None and self.child_owner is not None:
            try:
                owner = self.child_owner(int(match.group("cid")))
            except Exception:
                owner = None
            if owner is not None:
                self._remember(owner[1], owner[0])
                return owner
        return None


_sa_names = _SaNames()


def set_sa_resolver(ike_name: IkeNameResolver, child_owner: ChildOwnerResolver) -> None:
    """Let log lines name their IKE SA: ``ike_name(ike_id)`` → connection name, and
    ``child_owner(child_id)`` → (connection name, IKE SA id); both None when unknown."""
    _sa_names.ike_name = ike_name
    _sa_names.child_owner = child_owner


def record_context(record: logging.LogRecord) -> tuple[str, int, tuple[str | None, int] | None]:
    """(charon group, charon level, (connection, IKE SA id) or None) of a record: what a VICI
    ``log`` event carries as ``group``, ``level``, ``ikesa-name`` and ``ikesa-uniqueid``."""
    sa = getattr(record, "petrel_sa", None)
    if sa is None:
        sa = _sa_names.lookup(record.getMessage())
    return group_of(record), charon_level(record.levelno), sa


# ------------------------------------------------------------------------------ formatting


class _Lines(logging.Filter):
    """Per-group levels, and the group and IKE SA of each record as attributes."""

    def __init__(self, levels: Mapping[str, int]) -> None:
        super().__init__()
        self.levels = dict(levels)

    def filter(self, record: logging.LogRecord) -> bool:
        group = group_of(record)
        level = self.levels.get(group, self.levels.get("default", DEFAULT_LEVEL))
        if level < 0 or charon_level(record.levelno) > level:
            return False
        record.petrel_group = group
        if getattr(record, "petrel_sa", None) is None:  # unless the caller named it (extra=)
            record.petrel_sa = _sa_names.lookup(record.getMessage())
        return True


def _stamp(record: logging.LogRecord) -> str:
    return time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"


class TextFormatter(logging.Formatter):
    """``12:00:01.123 [IKE] <c|1> message`` (charon's ``[IKE] <conn|id>``)."""

    def format(self, record: logging.LogRecord) -> str:
        group = getattr(record, "petrel_group", None) or group_of(record)
        sa = getattr(record, "petrel_sa", None)
        tag = f" <{sa[0] or '?'}|{sa[1]}>" if sa else ""
        text = f"{_stamp(record)} [{group.upper()}]{tag} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, group, level (charon's), conn, ike_sa, message."""

    def format(self, record: logging.LogRecord) -> str:
        group = getattr(record, "petrel_group", None) or group_of(record)
        sa = getattr(record, "petrel_sa", None)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "group": group,
            "level": charon_level(record.levelno),
            "message": record.getMessage(),
        }
        if sa:
            line["conn"], line["ike_sa"] = sa
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


# ------------------------------------------------------------------------------ set-up


class _State:
    filter: _Lines | None = None


def _logger_level(level: int) -> int:
    return _LEVELS[max(-1, min(level, 2))]


def _apply(levels: Mapping[str, int]) -> None:
    default = levels.get("default", DEFAULT_LEVEL)

    def of(group: str) -> int:
        return levels.get(group, default)

    root = logging.getLogger("petrel")
    root.setLevel(_logger_level(max(of(g) for g in GROUPS)))
    for name, groups in _LOGGER_GROUPS.items():
        logging.getLogger(name).setLevel(_logger_level(max(of(g) for g in groups)))


def setup_logging(spec: str = "1", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Log Petrel's lines to ``stream`` (stderr) at the levels of ``spec``, as ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    levels = parse_levels(spec)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _State.filter = _Lines(levels)
    handler.addFilter(_State.filter)
    root = logging.getLogger("petrel")
    root.handlers[:] = [handler]
    root.propagate = False
    _apply(levels)


def current_levels() -> dict[str, int]:
    """Every group's level now (what ``set_levels`` last applied)."""
    levels = _State.filter.levels if _State.filter is not None else {}
    default = levels.get("default", DEFAULT_LEVEL)
    return {g: levels.get(g, default) for g in GROUPS}


def set_levels(spec: str) -> dict[str, int]:
    """Change levels at run time: ``"ike=2"`` changes one group, ``"1"`` resets every group.
    Raises ValueError for a bad spec (nothing changes then); returns the levels now."""
    changes = parse_levels(spec)
    if _State.filter is None:
        setup_logging("1")
    assert _State.filter is not None
    levels = dict(_State.filter.levels) if "default" not in changes else {}
    levels.update(changes)
    _State.filter.levels = levels
    _apply(levels)
    logging.getLogger("petrel.daemon").info("log levels now %s", spec)
    return current_levels()


def reload_log_levels(message: Mapping[str, Any]) -> str | None:
    """The hook of VICI ``reload-settings``: its Petrel extension key ``log`` (a level spec,
    ``ike=2,net=1``) is applied at once.  None, or the errmsg for the reply."""
    spec = message.get("log")
    if spec is None:
        return None
    if isinstance(spec, bytes):
        spec = spec.decode("utf-8", "replace")
    try:
        set_levels(str(spec))
    except ValueError as exc:
        return f"log: {exc}"
    return None
