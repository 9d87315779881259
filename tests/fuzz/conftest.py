"""The ``fuzz`` marker (until pyproject.toml registers it)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not any(line.startswith("fuzz:") for line in config.getini("markers")):
        config.addinivalue_line(
            "markers", "fuzz: runs an atheris fuzz target (>= 100000 executions each)"
        )
