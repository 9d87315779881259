"""The seam between the VICI handlers and the rest (DESIGN.md): ``petrel.control`` imports
neither the daemon, nor the engine's state and services, nor the data plane — only the
snapshots and commands of :mod:`petrel.control.api` — and the daemon side never goes through
``petrel.control`` internals other than the command set, the API and the log handler."""

from __future__ import annotations

import ast
from pathlib import Path

import petrel

SRC = Path(petrel.__file__).resolve().parent
CONTROL = SRC / "control"

# Anything under these is out of bounds for petrel.control, lazily or under TYPE_CHECKING too.
FORBIDDEN = (
    "petrel.daemon",
    "petrel.cli",
    "petrel.dataplane",
    "petrel.snapshots",
    "petrel.ike.engine",
    "petrel.ike.sa",
    "petrel.ike.services",
    "petrel.ike.task",
)


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    if package is None:
        package = "petrel." + ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
        package = package.rstrip(".")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_control_never_imports_daemon_engine_or_dataplane() -> None:
    offenders = {}
    for path in sorted(CONTROL.glob("*.py")):
        bad = {
            name
            for name in imports_of(path)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
        }
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_daemon_uses_control_only_through_its_api() -> None:
    allowed = {"petrel.control.api", "petrel.control.commands"}
    used = {
        name
        for path in (SRC / "daemon.py", SRC / "snapshots.py")
        for name in imports_of(path)
        if name.startswith("petrel.control.")
    }
    assert {name.rsplit(".", 1)[0] if name not in allowed else name for name in used} <= allowed


def test_the_import_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..daemon import Daemon\n"
        "def f():\n    from ..dataplane import userspace\n"
    )
    names = imports_of(probe, "petrel.control")
    assert "petrel.daemon.Daemon" in names and "petrel.dataplane.userspace" in names
