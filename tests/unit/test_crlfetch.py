"""The daemon's CRL fetcher (petrel.crlfetch) on file:// URIs: bounded size, failures as
values, one answer per request (HTTP is exercised end to end in tests/e2e)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from petrel.crlfetch import CrlFetcher, FetchError, fetch_blocking


def test_file_uri(tmp_path: Path) -> None:
    (tmp_path / "ca.crl").write_bytes(b"crl bytes")
    assert fetch_blocking((tmp_path / "ca.crl").as_uri()) == b"crl bytes"


def test_size_bound_and_failures(tmp_path: Path) -> None:
    (tmp_path / "big.crl").write_bytes(b"x" * 101)
    with pytest.raises(FetchError, match="larger than 100 bytes"):
        fetch_blocking((tmp_path / "big.crl").as_uri(), limit=100)
    with pytest.raises(FetchError):
        fetch_blocking((tmp_path / "missing.crl").as_uri())
    with pytest.raises(FetchError, match="only http:// and file://"):
        fetch_blocking("ldap://192.0.2.80/cn=crl")
    os.mkfifo(tmp_path / "fifo.crl")  # would block a worker thread for ever
    with pytest.raises(FetchError, match="not a regular file"):
        fetch_blocking((tmp_path / "fifo.crl").as_uri())
    (tmp_path / "empty.crl").write_bytes(b"")
    with pytest.raises(FetchError, match="empty"):
        fetch_blocking((tmp_path / "empty.crl").as_uri())


def test_fetcher_answers_each_request_once(tmp_path: Path) -> None:
    (tmp_path / "ca.crl").write_bytes(b"crl bytes")
    good, bad = (tmp_path / "ca.crl").as_uri(), (tmp_path / "none.crl").as_uri()
    answers: list[tuple[str, bytes | None, str]] = []

    async def run() -> None:
        fetcher = CrlFetcher(asyncio.get_running_loop(), lambda *a: answers.append(a), 2.0)
        fetcher.fetch(good)
        fetcher.fetch(good)  # already running: not started twice
        fetcher.fetch(bad)
        for _ in range(100):
            if len(answers) >= 2:
                break
            await asyncio.sleep(0.02)
        fetcher.close()

    asyncio.run(run())
    assert sorted(a[0] for a in answers) == sorted([good, bad])
    by_uri = {a[0]: a for a in answers}
    assert by_uri[good][1] == b"crl bytes" and by_uri[bad][1] is None and by_uri[bad][2]
