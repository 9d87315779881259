"""First tunnel, end to end: Petrel ↔ strongSwan (either side initiating) and Petrel ↔ Petrel.

Real processes in network namespaces, real ESP on the veth between them, traffic through the
TUN devices. Each scenario pings both ways, moves 10 MiB over TCP with a checksum at the far
end, and checks on a capture of the outer link that only IKE and ESP cross it and that the
payload's marker never appears in clear.
"""

from __future__ import annotations

import json
import re
import socket
import time

import dpkt
import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, strongswan_pair_confs, wait_for
from petrel.lab.pairs import PAIRS, Peer, petrel_sas, start_pair

MARKER = b"PETREL-CLEARTEXT-MARKER-51e9"
ND_MLD = {130, 131, 132, 133, 134, 135, 136, 143}
SUITES = {
    "gcm-x25519": ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
    "cbc-modp2048": ("aes128-sha256-modp2048", "aes128-sha256"),
    "chacha-ecp256": ("chacha20poly1305-prfsha256-ecp256", "chacha20poly1305"),
}


def reconfigure(peer: Peer, pattern: str, replacement: str) -> None:
    """Rewrite ``peer``'s swanctl.conf (a regex substitution) and make it take effect:
    strongSwan reloads it, Petrel restarts with it."""
    peer.conf.write_text(re.sub(pattern, replacement, peer.conf.read_text()))
    if isinstance(peer, PetrelPeer):
        peer.stop()
        peer.start()
    else:
        peer.load()


def petrel_of(left: object, right: object) -> PetrelPeer:
    return right if isinstance(right, PetrelPeer) else left  # type: ignore[return-value]


def outer_packets(frames: list[bytes]) -> list[dpkt.ip.IP | dpkt.ip6.IP6]:
    out = []
    for frame in frames:
        ip = dpkt.ethernet.Ethernet(frame).data
        icmp6 = isinstance(ip, dpkt.ip6.IP6) and isinstance(ip.data, dpkt.icmp6.ICMP6)
        if icmp6 and ip.data.type in ND_MLD:
            continue
        if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
            out.append(ip)
    return out


def stats(peer: PetrelPeer) -> dict:
    result = peer.cli("stats")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.parametrize("suite", list(SUITES))
@pytest.mark.parametrize("pair", PAIRS)
def test_tunnel_carries_traffic(lab: Lab, pair: str, suite: str) -> None:
    ike, esp = SUITES[suite]
    left, right = start_pair(lab, pair, proposals=ike, esp_proposals=esp)
    L, R = lab.left, lab.right
    cap = lab.capture(L.ns, L.ifname, "outer")
    assert left.initiate("net"), left.log_text()[-4000:] + right.log_text()[-4000:]  # type: ignore[attr-defined]
    assert lab.ping(L.ns, L.inner4, R.inner4, count=3, payload=MARKER) == 3
    assert lab.ping(R.ns, R.inner4, L.inner4, count=3, payload=MARKER) == 3
    assert lab.tcp_transfer(L.ns, R.ns, L.inner4, R.inner4, 10 * 1024 * 1024, marker=MARKER)
    cap.stop()

    packets = outer_packets(cap.frames())
    assert len(packets) > 1000
    encap = pair != "petrel->petrel"
    for ip in packets:
        assert {
            socket.inet_ntop(socket.AF_INET, ip.src),
            socket.inet_ntop(socket.AF_INET, ip.dst),
        } == {L.outer4, R.outer4}
        if isinstance(ip.data, dpkt.udp.UDP):
            assert ip.data.sport in (500, 4500) and ip.data.dport in (500, 4500)
        else:
            assert not encap and ip.p == 50, f"unexpected outer packet {ip!r}"
    assert MARKER not in cap.raw()

    petrel = petrel_of(left, right)
    (sa,) = petrel_sas(petrel)
    assert sa["state"] == "ESTABLISHED"
    (child,) = sa["child-sas"].values()
    assert child["state"] == "INSTALLED" and child["encap"] == ("yes" if encap else "no")
    # The 10 MiB go from L to R (inner IP octets are counted); the other way go the pings and
    # the transfer's ACKs, as many as the receiving stack chose to send (GRO makes them few).
    data, acks = ("out", "in") if petrel is left else ("in", "out")
    assert int(child[f"bytes-{data}"]) > 10 * 1024 * 1024, child
    assert int(child[f"packets-{data}"]) > 7000 and int(child[f"packets-{acks}"]) > 6, child
    text = petrel.list_sas()
    assert child["spi-in"] in text and child["spi-out"] in text and child["encr-alg"] in text


@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
def test_ipv6_tunnel(lab: Lab, pair: str) -> None:
    left, right = start_pair(lab, pair, v6=True)
    L, R = lab.left, lab.right
    assert left.initiate("net"), left.log_text()[-3000:] + right.log_text()[-3000:]  # type: ignore[attr-defined]
    assert lab.ping(L.ns, L.inner6, R.inner6, count=3) == 3
    assert lab.ping(R.ns, R.inner6, L.inner6, count=3) == 3
    assert lab.tcp_transfer(L.ns, R.ns, L.inner6, R.inner6, 1024 * 1024)


# The clear warning, not just the notify's name in a level-2 message trace.
AUTH_FAILED = re.compile(
    r"\[IKE\] (<c\|\d+> )?IKE SA \d+ \(c\): (received|sending) AUTHENTICATION_FAILED"
)


@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.parametrize("pair", PAIRS)
def test_wrong_psk_is_authentication_failed(lab: Lab, pair: str) -> None:
    left, right = start_pair(lab, pair)
    reconfigure(right, r"secret = \S+", "secret = a-different-secret")  # R's PSK only
    assert not left.initiate("net", timeout=10)  # type: ignore[attr-defined]
    for peer in (left, right):
        if isinstance(peer, PetrelPeer):
            assert wait_for(lambda p=peer: AUTH_FAILED.search(p.log_text()) is not None, 5), (
                peer.log_text()
            )
            assert peer.running
            assert all(not sa["child-sas"] for sa in petrel_sas(peer))
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=1, wait=0.5) == 0


@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
def test_no_common_proposal(lab: Lab, pair: str) -> None:
    left, right = start_pair(lab, pair)
    for peer, proposal in (
        (left, "aes128-sha256-modp2048"),
        (right, "aes256gcm16-prfsha384-ecp384"),
    ):
        reconfigure(peer, "aes256gcm16-prfsha256-x25519", proposal)
    assert not left.initiate("net", timeout=10)  # type: ignore[attr-defined]
    logs = left.log_text() + right.log_text()  # type: ignore[attr-defined]
    assert "NO_PROPOSAL_CHOSEN" in logs, logs[-3000:]
    petrel = petrel_of(left, right)
    assert petrel.running


@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
def test_invalid_ke_payload_then_retry_succeeds(lab: Lab, pair: str) -> None:
    # The initiator guesses x25519 first; the responder only takes ecp256.
    left, right = start_pair(lab, pair)
    for peer, proposal in (
        (left, "aes256gcm16-prfsha256-x25519-ecp256"),
        (right, "aes256gcm16-prfsha256-ecp256"),
    ):
        reconfigure(peer, "aes256gcm16-prfsha256-x25519", proposal)
    assert left.initiate("net"), left.log_text()[-3000:]  # type: ignore[attr-defined]
    logs = left.log_text() + right.log_text()  # type: ignore[attr-defined]
    assert "INVALID_KE_PAYLOAD" in logs or "KE group" in logs, logs[-3000:]
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2


_INJECT = r"""
import socket, sys
dst, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for hexdata in sys.argv[3:]:
    s.sendto(bytes.fromhex(hexdata), (dst, port))
"""


def inject_udp(ns: str, dst: str, port: int, datagrams: list[bytes]) -> None:
    import sys

    run_in(ns, [sys.executable, "-c", _INJECT, dst, str(port), *(d.hex() for d in datagrams)])


def _increase(before: dict[str, str], after: dict[str, str]) -> dict[str, int]:
    """Counters that grew, by how much."""
    grown = {k: int(v) - int(before.get(k, 0)) for k, v in after.items()}
    return {k: n for k, n in grown.items() if n}


@pytest.mark.e2e
@pytest.mark.interop
def test_hostile_datagrams_are_dropped_and_counted(lab: Lab) -> None:
    left, right = start_pair(lab, "strongswan->petrel")
    assert isinstance(right, PetrelPeer)
    L, R = lab.left, lab.right
    cap = lab.capture(L.ns, L.ifname, "esp", "udp port 4500")
    assert left.initiate("net")  # type: ignore[attr-defined]
    assert lab.ping(L.ns, L.inner4, R.inner4, count=3) == 3
    time.sleep(0.3)
    cap.stop()
    # An ESP packet L really sent to R, to replay.
    esp_sent = [
        bytes(ip.data.data)
        for ip in outer_packets(cap.frames())
        if isinstance(ip.data, dpkt.udp.UDP)
        and ip.dst == socket.inet_aton(R.outer4)
        and len(ip.data.data) > 8
        and ip.data.data[:4] != b"\0\0\0\0"
    ]
    assert esp_sent, [bytes(f).hex()[:120] for f in cap.frames()]
    (sa,) = petrel_sas(right)
    (child,) = sa["child-sas"].values()
    spi_in = bytes.fromhex(child["spi-in"])
    before = stats(right)["drops"]

    garbage_ike = bytes(range(256)) * 2
    truncated_ike = bytes.fromhex(sa["initiator-spi"]) + bytes(10)
    inject_udp(L.ns, R.outer4, 500, [garbage_ike, truncated_ike, b"\x01"])
    inject_udp(
        L.ns,
        R.outer4,
        4500,
        [
            b"\0\0\0\0" + garbage_ike,  # IKE after the non-ESP marker, garbage
            b"\0\0\0\0" + truncated_ike,  # truncated IKE header
            spi_in + bytes(4) + bytes(60),  # ESP, sequence 0, garbage body
            spi_in + b"\0\0\1\0" + bytes(range(64)),  # ESP, forged body: integrity
            b"\xde\xad\xbe\xef" + bytes(40),  # ESP for an unknown SPI
            spi_in[:3],  # truncated
            esp_sent[0],
            esp_sent[0],  # replayed packets
        ],
    )
    assert wait_for(lambda: stats(right)["drops"] != before, 5)
    time.sleep(0.5)
    after = stats(right)["drops"]
    ike, esp = (_increase(before[k], after[k]) for k in ("ike", "esp"))
    # Exactly one count per hostile datagram, by reason (RFC 7296 §2.21; RFC 4303 §3.4).
    assert ike == {
        "malformed-IKE-message-(INVALID_MAJOR_VERSION)": 2,  # the garbage, on 500 and 4500
        "malformed-IKE-message-(INVALID_SYNTAX)": 3,  # two truncated headers, one octet
    }, ike
    assert esp == {
        "ESP-for-an-unknown-SPI": 1,
        "UDP-4500-datagram-too-short-for-IKE-or-ESP": 1,
        "replay": 3,  # sequence number 0 and the two replays
        "integrity": 1,  # the forged body
        "inbound_esp_dropped": 4,  # every ESP packet of the SA that was refused
    }, esp
    (sa_after,) = petrel_sas(right)
    assert (sa_after["initiator-spi"], sa_after["responder-spi"]) == (
        sa["initiator-spi"],
        sa["responder-spi"],
    )
    (child_after,) = sa_after["child-sas"].values()
    assert (child_after["spi-in"], child_after["spi-out"]) == (child["spi-in"], child["spi-out"])
    # Nothing else disturbed: the tunnel still carries traffic, the daemon still runs.
    assert right.running
    assert lab.ping(L.ns, L.inner4, R.inner4, count=3) == 3
    assert "dropped:" in right.log_text()


@pytest.mark.e2e
@pytest.mark.interop
def test_sigterm_deletes_sas_with_the_peer(lab: Lab) -> None:
    left, right = start_pair(lab, "strongswan->petrel")
    assert left.initiate("net")  # type: ignore[attr-defined]
    assert "ESTABLISHED" in left.list_sas()  # type: ignore[attr-defined]
    assert right.stop() == 0  # type: ignore[attr-defined]
    assert wait_for(lambda: "ESTABLISHED" not in left.list_sas(), 5)  # type: ignore[attr-defined]


@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.parametrize("v6", [False, True])
def test_responder_on_any_address(lab: Lab, v6: bool) -> None:
    """A road-warrior style responder (local_addrs and remote_addrs %any) answers on both
    address families."""
    l_conf, r_conf = strongswan_pair_confs(lab, v6=v6)
    r_conf = re.sub(r"local_addrs = \S+", "local_addrs = %any", r_conf)
    r_conf = re.sub(r"remote_addrs = \S+", "remote_addrs = %any", r_conf)
    right = PetrelPeer(lab, lab.right.ns, "right", r_conf).start()
    left = StrongSwan(lab, lab.left.ns, "left", l_conf).start()
    left.load()
    assert left.initiate("net"), right.log_text()[-3000:]
    L, R = lab.left, lab.right
    src, dst = (L.inner6, R.inner6) if v6 else (L.inner4, R.inner4)
    assert lab.ping(L.ns, src, dst, count=2) == 2
