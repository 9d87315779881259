"""What the metrics count from IKE datagrams and engine events (no I/O)."""

from __future__ import annotations

import asyncio

from petrel.ike import events as ev
from petrel.metrics.counting import MAX_REASONS, IkeCounts
from petrel.metrics.http import MetricsServer, parse_listen
from petrel.wire.registry import NotifyType


def header(exchange: int, flags: int, message_id: int = 0, tail: bytes = b"") -> bytes:
    return (
        bytes(range(1, 9))
        + bytes(8)
        + bytes([33, 0x20, exchange, flags])
        + message_id.to_bytes(4, "big")
        + (28 + len(tail)).to_bytes(4, "big")
        + tail
    )


def test_messages_by_exchange_direction_and_kind() -> None:
    counts = IkeCounts()
    counts.datagram(header(34, 0x08), outgoing=True)
    counts.datagram(b"\0\0\0\0" + header(35, 0x08, 1, b"x"), outgoing=True)  # non-ESP marker
    counts.datagram(header(34, 0x20), outgoing=False)
    counts.datagram(header(99, 0x20), outgoing=False)  # unknown exchange type
    counts.datagram(b"short", outgoing=False)  # not an IKE header: the engine counts it
    assert counts.messages == {
        ("IKE_SA_INIT", "out", "request"): 1,
        ("IKE_AUTH", "out", "request"): 1,
        ("IKE_SA_INIT", "in", "response"): 1,
        ("other", "in", "response"): 1,
    }


def test_the_same_datagram_sent_again_is_a_retransmission() -> None:
    counts = IkeCounts()
    request = header(37, 0x08, 5, b"sealed")
    for _ in range(3):
        counts.datagram(request, outgoing=True)
    counts.datagram(header(37, 0x08, 5, b"other"), outgoing=True)  # new bytes: a new message
    assert counts.retransmits == {("INFORMATIONAL", "request"): 2}
    assert counts.messages[("INFORMATIONAL", "out", "request")] == 2


def test_events_failures_rekeys_and_bounded_reasons() -> None:
    counts = IkeCounts()
    counts.event(ev.NegotiationFailed(1, "c", NotifyType.NO_PROPOSAL_CHOSEN, "x", True))
    counts.event(ev.IkeSaRekeyed(1, 2, "c"))
    for n in range(MAX_REASONS + 5):
        counts.event(ev.IkeSaDown(n, "c", f"reason {n}"))
    assert counts.failures == {("NO_PROPOSAL_CHOSEN", "received"): 1}
    assert counts.events["ike_rekeyed"] == 1
    assert len(counts.ike_down) == MAX_REASONS + 1 and counts.ike_down["other"] == 5


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9273") == ("127.0.0.1", 9273)
    assert parse_listen("[::1]:9273") == ("::1", 9273)
    assert parse_listen(":9273") == ("0.0.0.0", 9273)
    for bad in ("9273", "host:", "h:0", "h:70000"):
        try:
            parse_listen(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_http_endpoint_answers_and_bounds_requests() -> None:
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    Counter("petrel_test", "a test counter", registry=registry).inc(3)

    async def scenario() -> list[bytes]:
        server = MetricsServer(registry)
        await server.start("127.0.0.1", 0)
        assert server.server is not None
        port = server.server.sockets[0].getsockname()[1]
        answers = []
        for request in (
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /nothing HTTP/1.0\r\n\r\n",
            b"POST /metrics HTTP/1.0\r\n\r\n",
            b"garbage\r\n\r\n",
            b"GET /metrics HTTP/1.0\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            answers.append(await reader.read())
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        answers.append(await reader.read())
        await server.close()
        return answers

    ok, missing, post, garbage, huge, after = asyncio.run(scenario())
    assert ok.startswith(b"HTTP/1.0 200 OK") and b"petrel_test_total 3.0" in ok
    assert missing.startswith(b"HTTP/1.0 404") and post.startswith(b"HTTP/1.0 405")
    assert garbage.startswith(b"HTTP/1.0 400") and huge == b""
    assert b'petrel_metrics_requests_rejected_total{reason="too large"} 1.0' in after


def test_a_failing_collector_is_a_500_not_a_crash() -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

    class Broken(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Broken())
    answer = MetricsServer(registry)._answer(b"GET /metrics HTTP/1.0")
    assert answer.startswith(b"HTTP/1.0 500 Internal Server Error")
