"""Unit-test fixtures shared by every folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from petrel import logsetup


@pytest.fixture(autouse=True)
def _petrel_loggers_restored() -> Iterator[None]:
    """Put Petrel's loggers back as they were after each test (levels, handlers, propagation):
    a test that calls ``setup_logging`` must not hide later tests' lines from ``caplog``."""
    names = ["petrel", *logsetup._LOGGER_GROUPS]
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    root = logging.getLogger("petrel")
    handlers, propagate = root.handlers[:], root.propagate
    yield
    for logger, level in saved:
        logger.setLevel(level)
    root.handlers[:] = handlers
    root.propagate = propagate
