"""UDP GSO batching (UDP_SEGMENT): one system call, the receiver still gets each datagram."""

from __future__ import annotations

import socket
import time

import pytest

from petrel.dataplane.sockets import MAX_GSO_BYTES, open_udp


def receive_all(sock: socket.socket, count: int) -> list[bytes]:
    sock.settimeout(2)
    return [sock.recv(65535) for _ in range(count)]


@pytest.mark.parametrize("gso", [True, False])
def test_send_segments_delivers_each_datagram(gso: bool) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = open_udp("127.0.0.1", 0)
    sender.gso = gso
    segments = [bytes([i]) * 1400 for i in range(20)] + [b"\xee" * 300]
    try:
        sent = sender.send_segments(segments, receiver.getsockname(), "127.0.0.1")
        assert sent == len(segments)
        assert receive_all(receiver, len(segments)) == segments
    finally:
        sender.close()
        receiver.close()


def test_too_large_a_batch_is_counted_not_raised() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = open_udp("127.0.0.1", 0)
    segments = [b"x" * 1400] * (MAX_GSO_BYTES // 1400 + 5)
    try:
        sent = sender.send_segments(segments, receiver.getsockname())
        # Either the kernel took it (and split it) or refused it: never an exception.
        assert sent in (0, len(segments))
        if sent == 0:
            assert sum(sender.send_errors.values()) == 1
        time.sleep(0.05)
    finally:
        sender.close()
        receiver.close()
