"""DatagramEndpoint on loopback (no root needed): batches, local address, chosen source."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from petrel.dataplane.sockets import open_ike_endpoints, open_udp


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_recv_batch_reports_local_address_and_stops_at_eagain(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with open_udp(host, 0) as ep, socket.socket(family, socket.SOCK_DGRAM) as peer:
        assert ep.recv_batch() == []  # non-blocking
        peer.bind((host, 0))
        for i in range(5):
            peer.sendto(b"d%d" % i, ep.local)
        first = ep.recv_batch(3)
        rest = ep.recv_batch(10)
        assert [d for d, _, _ in first + rest] == [b"d0", b"d1", b"d2", b"d3", b"d4"]
        src_port = peer.getsockname()[1]
        assert all(src == (host, src_port) and local == ep.local for _, src, local in first)
        assert ep.sendto(b"reply", (host, src_port), local_addr=ep.local)
        data, src = peer.recvfrom(100)
        assert data == b"reply" and src[:2] == ep.local


def test_sendto_from_chosen_source_address() -> None:
    # 127.0.0.2 is a loopback address too: the reply must leave from the one we pick.
    with open_udp("0.0.0.0", 0) as ep, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.sendto(b"hi", ("127.0.0.2", ep.local[1]))
        [(data, src, local)] = ep.recv_batch()
        assert data == b"hi" and local == ("127.0.0.2", ep.local[1])
        assert ep.sendto(b"back", src, local_addr=local)
        assert peer.recvfrom(100)[1] == ("127.0.0.2", ep.local[1])


def test_open_ike_endpoints_closes_what_it_opened_on_failure() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))  # no SO_REUSEADDR: binding its port again fails
        fds_before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(OSError):
            open_ike_endpoints(("127.0.0.1",), (0, held.getsockname()[1]))
        assert len(os.listdir("/proc/self/fd")) == fds_before


def test_a_second_endpoint_on_a_bound_port_is_refused() -> None:
    """Two daemons on one IKE port would each get part of the traffic: the second must fail."""
    first = open_udp("127.0.0.1", 0)
    try:
        with pytest.raises(OSError) as refused:
            open_udp("127.0.0.1", first.local[1])
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        first.close()
