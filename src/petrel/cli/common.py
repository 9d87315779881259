"""What every VICI verb shares: reaching the daemon, reading replies, printing JSON or tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..control.client import ViciClient
from .errors import EXIT_FAILED, EXIT_OK, DaemonUnreachable


def connect(args: argparse.Namespace, timeout: float | None = 60.0) -> ViciClient:
    """A client on ``--socket``; :class:`DaemonUnreachable` (exit 3) when nobody answers."""
    try:
        return ViciClient(args.socket, timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = "run as root" if isinstance(exc, PermissionError) else "is petrel daemon running?"
        raise DaemonUnreachable(
            f"cannot reach the daemon at {args.socket}: {reason} ({hint})"
        ) from None


def succeeded(reply: Mapping[str, Any]) -> bool:
    return str(reply.get("success", "")) == "yes"


def finish(verb: str, reply: Mapping[str, Any], done: str) -> int:
    """Print ``done`` or the daemon's errmsg; the exit status of a command reply."""
    if succeeded(reply):
        print(done)
        return EXIT_OK
    print(f"{verb} failed: {reply.get('errmsg', 'no reason given')}", file=sys.stderr)
    return EXIT_FAILED


def plain(value: Any) -> Any:
    """A VICI message as JSON-ready data (bytes as text when printable, else hex)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return bytes(value).hex()
        return text if text.isprintable() else bytes(value).hex()
    return value


def print_json_lines(items: Iterable[Any]) -> None:
    """One JSON document per line (``--json``)."""
    for item in items:
        print(json.dumps(plain(item), sort_keys=False))


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A readable table (rich), plain when stdout is not a terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
        count += 1
    # Piped: never fold a cell (grep and scripts see whole values; --json is for parsing).
    console = Console(width=None if sys.stdout.isatty() else 1000, highlight=False)
    if count:
        console.print(table)
    else:
        console.print(f"{title}: none")
