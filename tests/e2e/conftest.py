"""e2e fixtures and the root/CI policy.

Tests marked ``e2e`` or ``interop`` need root (network namespaces); without it they skip with
the reason. Under CI (``CI`` set to anything but empty, ``0``, ``false`` or ``no``) a skipped
network test is reported as a failure instead, so a CI machine that silently lacks root,
TUN or strongSwan cannot turn end-to-end coverage green.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from petrel.lab import Lab, strongswan_available


def _missing_root() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN, raw sockets)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("e2e") or item.get_closest_marker("interop"):
        reason = _missing_root()
        if reason:
            pytest.skip(reason)
    if item.get_closest_marker("interop"):
        reason = strongswan_available()
        if reason:
            pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and (item.get_closest_marker("interop") or item.get_closest_marker("e2e"))
        and under_ci()
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"network test may not skip under CI: {reason}"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(workdir=tmp_path) as the_lab:
        yield the_lab


@pytest.fixture
def nat_lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(nat=True, workdir=tmp_path) as the_lab:
        yield the_lab
