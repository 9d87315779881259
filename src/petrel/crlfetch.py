"""Fetching CRLs from distribution points for the engine (the I/O half of
:mod:`petrel.ike.crl_wait`): ``http://`` and ``file://`` only, each fetch bounded in time
(charon's ``revocation.timeout``, 10 s) and size, at most a few at once, run in worker threads
so the event loop never blocks. No proxies, no redirects: a CRL comes from the address its
certificate names."""

from __future__ import annotations

import asyncio
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

FETCH_TIMEOUT = 10.0  # seconds, as charon's revocation plugin
MAX_CRL_SIZE = 4 << 20  # bytes; a larger answer is a failed fetch
MAX_PARALLEL = 4  # worker threads fetching at once


class FetchError(Exception):
    """A fetch failed; the message says why."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # a 3xx is then an HTTPError: the fetch fails


_OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _NoRedirect(), urllib.request.FileHandler()
)


def fetch_blocking(uri: str, timeout: float = FETCH_TIMEOUT, limit: int = MAX_CRL_SIZE) -> bytes:
    """The bytes at ``uri`` (``http://`` or ``file://``); :class:`FetchError` otherwise."""
    if not uri.lower().startswith(("http://", "file://")):
        raise FetchError("only http:// and file:// distribution points are fetched")
    if uri.lower().startswith("file://"):
        _regular_file(uri)
    try:
        with _OPENER.open(uri, timeout=timeout) as answer:
            data = answer.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(str(reason) or type(exc).__name__) from None
    if len(data) > limit:
        raise FetchError(f"larger than {limit} bytes")
    if not data:
        raise FetchError("empty answer")
    return data


def _regular_file(uri: str) -> None:
    """A ``file://`` CRL must be a regular file: a FIFO or device could block a worker
    thread for ever (no socket timeout applies to files)."""
    path = urllib.request.url2pathname(urllib.parse.urlsplit(uri).path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise FetchError(exc.strerror or str(exc)) from None
    if not stat.S_ISREG(mode):
        raise FetchError("not a regular file")


class CrlFetcher:
    """Runs the engine's :class:`~petrel.ike.events.FetchCrl` requests; ``done(uri, data,
    error)`` is called on the loop for every one, exactly once (data None on failure)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        done: Callable[[str, bytes | None, str], None],
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.loop = loop
        self.done = done
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix="crl-fetch")
        self._running: dict[str, asyncio.Task[None]] = {}

    def fetch(self, uri: str) -> None:
        if uri in self._running:
            return  # the engine asks once per URI in flight; stay idempotent anyway
        self._running[uri] = self.loop.create_task(self._fetch(uri))

    async def _fetch(self, uri: str) -> None:
        data: bytes | None = None
        error = ""
        try:
            # The socket timeout bounds each read; wait_for bounds the whole fetch.
            work = self.loop.run_in_executor(self._pool, fetch_blocking, uri, self.timeout)
            data = await asyncio.wait_for(work, self.timeout + 1)
        except FetchError as exc:
            error = str(exc)
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        finally:
            self._running.pop(uri, None)
        self.done(uri, data, error)

    def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
