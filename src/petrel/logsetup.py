"""strongSwan-style logging: per-subsystem levels (``ike=2,esp=1``), lines on stderr.

Levels follow charon's: -1 silent, 0 basic (warnings and errors), 1 audit (the default:
SA up/down and what failed), 2 control (every exchange), 3+ raw detail.
"""

from __future__ import annotations

import logging
import sys

SUBSYSTEMS = ("ike", "cfg", "net", "esp", "knl", "daemon", "control")
_LEVELS = {-1: logging.CRITICAL + 10, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        subsystem = record.name.rsplit(".", 1)[-1][:4].upper()
        stamp = self.formatTime(record, "%H:%M:%S")
        return f"{stamp}.{int(record.msecs):03d} [{subsystem}] {record.getMessage()}"


def parse_levels(spec: str) -> dict[str, int]:
    """``"ike=2,esp=1"`` or ``"2"`` (all subsystems) → {subsystem: charon level}."""
    levels: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" in part:
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in SUBSYSTEMS and name != "default":
                raise ValueError(f"unknown log subsystem {name!r} (known: {', '.join(SUBSYSTEMS)})")
            levels[name] = int(value)
        else:
            levels["default"] = int(part)
    return levels


def setup_logging(spec: str = "1") -> None:
    levels = parse_levels(spec)
    default = levels.get("default", 1)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    root = logging.getLogger("petrel")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(_LEVELS.get(min(default, 2), logging.INFO))
    for name in SUBSYSTEMS:
        level = levels.get(name, default)
        logging.getLogger(f"petrel.{name}").setLevel(_LEVELS.get(min(level, 2), logging.INFO))
