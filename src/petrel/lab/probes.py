"""Traffic probes run inside a lab namespace: ICMP echo and a checked TCP transfer."""

from __future__ import annotations

import subprocess

from .process import PYTHON, run_in, stop_process

_PING = r"""
import os, socket, struct, sys, time
src, dst, count, wait, pad = sys.argv[1:6]
count, wait, pad = int(count), float(wait), bytes.fromhex(pad)
v6 = ":" in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
s.bind((src, 0))
ident = os.getpid() & 0xFFFF
def csum(b):
    b += b"\0" * (len(b) & 1)
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF
got = 0
for seq in range(count):
    body = struct.pack("!HH", ident, seq) + pad
    msg = struct.pack("!BBH", 128 if v6 else 8, 0, 0) + body
    if not v6:
        msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
    try:
        s.sendto(msg, (dst, 0))
    except OSError:  # no route (yet): counts as unanswered
        time.sleep(wait)
        continue
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            break
        if not v6:
            data = data[(data[0] & 15) * 4:]
        if addr[0] == dst and data[:1] == bytes([129 if v6 else 0]) and data[4:8] == body[:4]:
            got += 1
            break
print(got)
"""


def ping(
    ns: str, src: str, dst: str, count: int = 3, wait: float = 1.0, payload: bytes = b"petrel-ping"
) -> int:
    """Send ``count`` ICMP/ICMPv6 echo requests from ``src`` to ``dst`` in ``ns``; return how
    many were answered (each waits up to ``wait`` seconds)."""
    argv = [PYTHON, "-c", _PING, src, dst, str(count), str(wait), payload.hex()]
    out = run_in(ns, argv, timeout=count * wait + 30)
    return int(out.stdout.strip() or 0)


_TCP_SERVER = r"""
import hashlib, socket, sys
host, timeout = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((host, 0)); s.listen(1); s.settimeout(timeout)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.settimeout(timeout)
h, n = hashlib.sha256(), 0
while b := c.recv(1 << 20):
    h.update(b); n += len(b)
c.close()
print(n, h.hexdigest(), flush=True)
"""

_TCP_CLIENT = r"""
import hashlib, os, socket, sys
src, dst, port, size, timeout, marker = sys.argv[1:7]
port, size, timeout, marker = int(port), int(size), float(timeout), bytes.fromhex(marker)
if marker:
    step = 1024
    data = b"".join(marker + os.urandom(step - len(marker)) for _ in range(0, size, step))[:size]
else:
    data = os.urandom(size)
c = socket.create_connection((dst, port), timeout, source_address=(src, 0))
c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
print(len(data), hashlib.sha256(data).hexdigest())
"""


def tcp_transfer(
    ns_a: str,
    ns_b: str,
    src: str,
    dst: str,
    size: int,
    *,
    marker: bytes = b"",
    timeout: float = 60,
) -> bool:
    """Send ``size`` random bytes over TCP from ``src`` (in ``ns_a``) to ``dst`` (in ``ns_b``);
    True when the far end received exactly that many bytes with the same SHA-256.

    With ``marker`` (< 1024 bytes), each 1 KiB block starts with it, so a capture can be
    searched for plaintext leaks.
    """
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns_b, PYTHON, "-c", _TCP_SERVER, dst, str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        if not port:
            return False
        client = run_in(
            ns_a,
            [PYTHON, "-c", _TCP_CLIENT, src, dst, port, str(size), str(timeout), marker.hex()],
            check=False,
            timeout=timeout + 10,
        )
        received, _ = server.communicate(timeout=timeout)
        return (
            client.returncode == 0
            and server.returncode == 0
            and received.split() == client.stdout.split()
            and client.stdout.split()[:1] == [str(size)]
        )
    except subprocess.TimeoutExpired:
        return False
    finally:
        stop_process(server)
