"""petrel.dataplane I/O in real namespaces: TUN device routing and PKTINFO datagram endpoints."""

from __future__ import annotations

import json

import pytest

from petrel.lab import PYTHON, Lab, run_in, wait_for

pytestmark = pytest.mark.e2e

_TUN_SCRIPT = r"""
import json, select, socket, struct, sys
from petrel.dataplane.tun import TunDevice

def udp4(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16); s = (s & 0xFFFF) + (s >> 16)
    return hdr[:10] + struct.pack("!H", ~s & 0xFFFF) + hdr[12:] + udp

out = {}
with TunDevice.open("pttun%d") as tun:
    out["name"] = tun.name
    tun.configure(1400, ["2001:db8:1::1/128"],
                  [("203.0.113.0/24", "198.51.100.1"), "2001:db8:2::/64"])
    tun.read_batch()  # non-blocking: drains whatever the stack sent at link up (MLD, RS)
    # 1. Locally originated traffic routed into the TUN comes out on read.
    for fam, dst in ((socket.AF_INET, "203.0.113.7"), (socket.AF_INET6, "2001:db8:2::7")):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.sendto(b"into-tun", (dst, 9))
        select.select([tun], [], [], 5)
        pkts = [p for p in tun.read_batch() if p.endswith(b"into-tun")]
        out.setdefault("read", []).append(pkts[0].hex() if pkts else None)
    # 2. A packet written to the TUN is routed: to a local socket, and on out of vL to R.
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("198.51.100.1", 7000)); rx.settimeout(5)
    out["write_local"] = tun.write(udp4("203.0.113.1", "198.51.100.1", 7001, 7000, b"from-tun"))
    data, src = rx.recvfrom(100)
    out["local_rx"] = [data.decode(), src[0], src[1]]
    out["write_fwd"] = tun.write(udp4("203.0.113.9", sys.argv[1], 7001, 7002, b"forwarded"))
    out["write_garbage"] = tun.write(b"\x00\x01")
print(json.dumps(out), flush=True)
"""


def test_tun_open_configure_read_write(lab: Lab) -> None:
    L, R = lab.left, lab.right
    lab.sysctl(L.ns, "net.ipv4.ip_forward", "1")
    rx_log = lab.workdir / "rx.log"
    receiver = lab.spawn_in(
        R.ns,
        [PYTHON, "-c", _UDP_ONESHOT, R.outer4, "7002"],
        rx_log,
    )
    assert wait_for(lambda: "ready" in rx_log.read_text(), 10)
    res = json.loads(run_in(L.ns, [PYTHON, "-c", _TUN_SCRIPT, R.outer4]).stdout)
    pkt4, pkt6 = (bytes.fromhex(p) for p in res["read"])
    assert pkt4[0] >> 4 == 4 and pkt4[9] == 17
    assert pkt4[12:16] == bytes([198, 51, 100, 1]) and pkt4[16:20] == bytes([203, 0, 113, 7])
    assert pkt6[0] >> 4 == 6 and pkt6[6] == 17
    assert pkt6[8:24] == bytes.fromhex("20010db8000100000000000000000001")
    assert res["write_local"] is True and res["local_rx"] == ["from-tun", "203.0.113.1", 7001]
    assert res["write_fwd"] is True and res["write_garbage"] is False
    assert receiver.wait(10) == 0
    assert "forwarded 203.0.113.9" in rx_log.read_text()
    # The device went away with its fd.
    links = run_in(L.ns, ["ip", "-o", "link"]).stdout
    assert res["name"] not in links


_UDP_ONESHOT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(20)
print("ready", flush=True)
data, src = s.recvfrom(100)
print(data.decode(), src[0], flush=True)
"""

_ENDPOINT_SERVER = r"""
import json, select, sys
from petrel.dataplane.sockets import open_esp_raw, open_ike_endpoints
eps = list(open_ike_endpoints(("0.0.0.0", "::"), (500, 4500)).values())
eps += [open_esp_raw("0.0.0.0"), open_esp_raw("::")]
print("ready", flush=True)
want, seen = int(sys.argv[1]), 0
while seen < want:
    ready, _, _ = select.select(eps, [], [], 20)
    if not ready:
        break
    for ep in ready:
        for data, src, local in ep.recv_batch(16):
            seen += 1
            print(json.dumps([ep.local[1], data.decode(), src, local]), flush=True)
            if ep.local[1]:  # UDP: answer from the address the datagram reached
                ep.sendto(b"re:" + data, src, local_addr=local)
"""

_CLIENT = r"""
import json, socket, sys
out = []
for host, port in json.loads(sys.argv[1]):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(5)
    s.sendto(f"to {host} {port}".encode(), (host, port))
    data, src = s.recvfrom(100)
    out.append([data.decode(), src[0], src[1]])
for host in json.loads(sys.argv[2]):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    r = socket.socket(fam, socket.SOCK_RAW, 50)
    r.sendto(b"\x00\x00\x10\x01esp " + host.encode(), (host, 0))
print(json.dumps(out))
"""


def test_udp_and_raw_esp_endpoints_report_local_address(lab: Lab) -> None:
    L, R = lab.left, lab.right
    lab.ip(R.ns, "addr", "add", "192.0.2.3/24", "dev", "vR")
    lab.ip(R.ns, "addr", "add", "2001:db8::3/64", "dev", "vR", "nodad")
    udp_targets = [
        [R.outer4, 500],
        ["192.0.2.3", 4500],
        [R.outer6, 4500],
        ["2001:db8::3", 500],
    ]
    raw_targets = ["192.0.2.3", "2001:db8::3"]
    log = lab.workdir / "endpoints.log"
    server = lab.spawn_in(
        R.ns, [PYTHON, "-c", _ENDPOINT_SERVER, str(len(udp_targets) + len(raw_targets))], log
    )
    assert wait_for(lambda: "ready" in log.read_text() or server.poll() is not None, 10)
    assert server.poll() is None, log.read_text()
    client = run_in(L.ns, [PYTHON, "-c", _CLIENT, json.dumps(udp_targets), json.dumps(raw_targets)])
    replies = json.loads(client.stdout)
    # Each reply came back from exactly the address and port the request was sent to.
    assert replies == [[f"re:to {h} {p}", h, p] for h, p in udp_targets]
    assert server.wait(10) == 0
    seen = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    by_payload = {s[1]: s for s in seen}
    for host, port in udp_targets:
        got_port, _, src, local = by_payload[f"to {host} {port}"]
        assert got_port == port and local == [host, port]
        assert src[0] in (L.outer4, L.outer6)
    for host in raw_targets:
        key = "\x00\x00\x10\x01esp " + host
        got_port, _, src, local = by_payload[key]  # IPv4 header stripped: data starts at SPI
        assert got_port == 0 and local == [host, 0]
        assert src == [L.outer6 if ":" in host else L.outer4, 0]
