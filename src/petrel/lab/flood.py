"""An IKE_SA_INIT flooder for the DoS tests and benchmark (run inside a lab namespace).

``python -m petrel.lab.flood --target 192.0.2.2 --sources 192.0.2.64/26 --rate 1000
--seconds 20 --mode cookie`` sends IKE_SA_INIT requests (RFC 7296 §1.2) at ``rate`` per second,
round-robin from every address of ``sources`` (which must be configured on an interface of the
namespace), each with a fresh SPI. ``--mode never`` never answers; ``--mode cookie`` returns
every COOKIE (§2.6) it is sent — ignoring any PUZZLE (RFC 8019), as an initiator that knows
none would — and then never sends IKE_AUTH, which is what leaves half-open SAs behind.
On exit (SIGTERM or the time is up) it prints one JSON line of counters.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import time

from ..crypto.proposals import parse_proposals
from ..ike.protect import build_plain
from ..wire.payloads import FLAG_INITIATOR, KE, SA, IkeHeader, Nonce
from ..wire.registry import ExchangeType, NotifyType, PayloadType, ProtocolId

_NOTIFY_HEAD = struct.Struct(">BBHBBH")  # generic header, protocol, SPI size, notify type
_COOKIE = int(NotifyType.COOKIE)


def request_template(proposals: str = "aes256gcm16-prfsha256-x25519") -> bytes:
    """One IKE_SA_INIT request (SA, KE, Ni): only its SPI (octets 0-7) changes per copy."""
    offer = parse_proposals(proposals, ProtocolId.IKE)
    header = IkeHeader(bytes(8), bytes(8), 0, ExchangeType.IKE_SA_INIT, 0, FLAG_INITIATOR)
    group = next(t.id for t in offer[0].transforms if int(t.type) == 4)
    return build_plain(header, [SA(offer), KE(int(group), os.urandom(32)), Nonce(os.urandom(32))])


def with_cookie(request: bytes, cookie: bytes) -> bytes:
    """``request`` with N(COOKIE) inserted as its first payload (§2.6)."""
    first = request[16]
    notify = _NOTIFY_HEAD.pack(first, 0, 8 + len(cookie), 0, 0, _COOKIE) + cookie
    body = request[28:]
    length = 28 + len(notify) + len(body)
    header = request[:16] + bytes([int(PayloadType.NOTIFY)]) + request[17:24]
    return header + struct.pack(">I", length) + notify + body


def cookie_of(response: bytes) -> bytes | None:
    """The COOKIE of an IKE_SA_INIT response that demands one, else None."""
    if len(response) < 28 or response[18] != ExchangeType.IKE_SA_INIT or any(response[8:16]):
        return None
    next_type, offset = response[16], 28
    while next_type != 0 and offset + 4 <= len(response):
        length = struct.unpack_from(">H", response, offset + 2)[0]
        if length < 4 or offset + length > len(response):
            return None
        notify = next_type == PayloadType.NOTIFY and length >= 8
        if notify and struct.unpack_from(">H", response, offset + 6)[0] == _COOKIE:
            return response[offset + 8 : offset + length]
        next_type = response[offset]
        offset += length
    return None


def run(target: str, port: int, sources: list[str], rate: float, seconds: float, mode: str) -> dict:
    template = bytearray(request_template())
    socks = []
    for address in sources:
        sock = socket.socket(
            socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM
        )
        sock.bind((address, 0))
        sock.setblocking(False)
        socks.append(sock)
    poller = select.epoll()
    for sock in socks:
        poller.register(sock.fileno(), select.EPOLLIN)
    by_fd = {sock.fileno(): sock for sock in socks}
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    counts = {"sent": 0, "cookies": 0, "cookie_replies": 0, "responses": 0, "errors": 0}
    base = int.from_bytes(os.urandom(4), "big") << 32
    serial = 0
    start = time.monotonic()
    end = start + seconds
    dest = (target, port)
    while not stop:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * rate) - counts["sent"]
        for _ in range(min(max(due, 0), 2000)):
            serial += 1
            template[0:8] = (base | serial).to_bytes(8, "big")
            sock = socks[serial % len(socks)]
            try:
                sock.sendto(template, dest)
                counts["sent"] += 1
            except OSError:
                counts["errors"] += 1
                counts["sent"] += 1
        for fd, _event in poller.poll(0.001):
            sock = by_fd[fd]
            for _ in range(64):
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, OSError):
                    break
                cookie = cookie_of(data)
                if cookie is None:
                    counts["responses"] += 1
                    continue
                counts["cookies"] += 1
                if mode == "cookie":
                    request = bytearray(template)
                    request[0:8] = data[0:8]
                    try:
                        sock.sendto(with_cookie(bytes(request), cookie), dest)
                        counts["cookie_replies"] += 1
                    except OSError:
                        counts["errors"] += 1
    for sock in socks:
        sock.close()
    counts["seconds"] = round(time.monotonic() - start, 2)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, default=500)
    parser.add_argument("--sources", required=True, help="a prefix: every host address in it")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--mode", choices=("never", "cookie"), default="never")
    args = parser.parse_args()
    sources = [str(a) for a in ipaddress.ip_network(args.sources).hosts()]
    print(json.dumps(run(args.target, args.port, sources, args.rate, args.seconds, args.mode)))


if __name__ == "__main__":
    main()
