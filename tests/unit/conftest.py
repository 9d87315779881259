"""Unit-test fixtures shared by every folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from petrel import logsetup


@pytest.fixture(autouse=True)
def _petrel_loggers_restored() -> Iterator[None]:
    """Put Petrel's loggers back as they were after each test (levels, handlers, propagation,
    the IKE SA resolver): a test that calls ``setup_logging`` or ``set_sa_resolver`` must not
    hide later tests' lines from ``caplog`` or name SAs that do not exist."""
    names = ["petrel", *logsetup._LOGGER_GROUPS]
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    root = logging.getLogger("petrel")
    handlers, propagate = root.handlers[:], root.propagate
    resolvers = logsetup._sa_names.ike_name, logsetup._sa_names.child_owner
    yield
    for logger, level in saved:
        logger.setLevel(level)
    root.handlers[:] = handlers
    root.propagate = propagate
    logsetup._sa_names.ike_name, logsetup._sa_names.child_owner = resolvers
