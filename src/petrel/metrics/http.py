"""A minimal HTTP/1.0 endpoint for Prometheus scrapes, on the daemon's asyncio loop.

Serving on the loop (not in a thread) means a scrape reads the daemon's state between two
events, never while it changes.  Requests are bounded (8 KiB of headers, 5 s, 16 at a time);
anything but ``GET /metrics`` (or ``/``) is answered 404/405; a request that is too slow, too
large, truncated or one too many is closed, counted by reason
(``petrel_metrics_requests_rejected_total``) and logged at most once per reason per 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..ratelimit import DropLog

log = logging.getLogger("petrel.daemon")

MAX_REQUEST = 8192
REQUEST_TIMEOUT = 5.0
MAX_CLIENTS = 16


def parse_listen(spec: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[v6]:PORT`` or ``:PORT`` (all addresses) → (host, port)."""
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected ADDR:PORT, got {spec!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "0.0.0.0", int(port)


class MetricsServer:
    """Serves ``registry`` at ``http://host:port/metrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.server: asyncio.Server | None = None
        self._clients = 0
        self.rejected = DropLog(log)
        registry.register(_Rejected(self.rejected))

    def _reject(self, reason: str) -> None:
        self.rejected.drop(f"metrics request {reason}", asyncio.get_running_loop().time())

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, limit=MAX_REQUEST)
        log.info("metrics on http://%s:%d/metrics", host, port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients >= MAX_CLIENTS:
            self._reject("over the client limit")
            writer.close()
            return
        self._clients += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            writer.write(self._answer(head.split(b"\r\n", 1)[0]))
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except TimeoutError:
            self._reject("timed out")
        except asyncio.IncompleteReadError:
            self._reject("truncated")
        except asyncio.LimitOverrunError:
            self._reject("too large")
        except OSError:
            self._reject("connection error")
        finally:
            self._clients -= 1
            writer.close()

    def _answer(self, request_line: bytes) -> bytes:
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return _response(400, b"text/plain", b"bad request\n")
        method, path = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return _response(405, b"text/plain", b"method not allowed\n")
        if path not in (b"/metrics", b"/"):
            return _response(404, b"text/plain", b"not found\n")
        try:
            body = generate_latest(self.registry)
        except Exception as exc:  # a collector bug must not reach the event loop
            log.warning("metrics scrape failed: %s: %s", type(exc).__name__, exc)
            return _response(500, b"text/plain", b"scrape failed\n")
        return _response(200, CONTENT_TYPE_LATEST.encode(), b"" if method == b"HEAD" else body)


_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    500: b"Internal Server Error",
}


def _response(status: int, content_type: bytes, body: bytes) -> bytes:
    head = (
        b"HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (status, _REASONS[status], content_type, len(body))
    )
    return head + body


class _Rejected(Collector):
    """``petrel_metrics_requests_rejected_total{reason}``."""

    def __init__(self, drops: DropLog) -> None:
        self.drops = drops

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "petrel_metrics_requests_rejected",
            "Requests to this endpoint closed unanswered, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(self.drops.counts.items()):
            family.add_metric([reason.removeprefix("metrics request ")], count)
        yield family
