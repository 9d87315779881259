"""SA lifecycle against a real strongSwan: rekeying under traffic, collisions, dead peers,
trap policies and IKE fragmentation (RFC 7296 §1.3, §2.4, §2.8; RFC 7383)."""

from __future__ import annotations

import re
import subprocess
import time

import dpkt
import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, strongswan_pair_confs, wait_for
from petrel.lab.pairs import FAST_RETRANSMIT, child_spis, logs, start_pair, swan_child_count
from petrel.lab.pairs import petrel_sas as ike_sas
from petrel.lab.traffic import Traffic, loss_report

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


def petrel_to_strongswan(lab: Lab, child_extra=(), **kw) -> tuple[PetrelPeer, StrongSwan]:
    """Petrel initiates to strongSwan; ``child_extra`` (lifetimes etc.) on Petrel's side only."""
    petrel, swan = start_pair(lab, "petrel->strongswan", l_child_extra=child_extra, **kw)
    assert isinstance(petrel, PetrelPeer) and isinstance(swan, StrongSwan)
    return petrel, swan


def test_rekeys_under_traffic_lose_nothing(lab: Lab) -> None:
    """Child SA rekeys by both sides (Petrel on its timers, strongSwan on command), two IKE SA
    rekeys (one each side) while a 100/s ping and a TCP stream run: zero lost pings."""
    petrel, swan = petrel_to_strongswan(
        lab,
        l_extra=["rekey_time = 14s"],
        child_extra=["rekey_time = 6s", "rand_time = 1s", "life_time = 60s"],
    )
    assert petrel.initiate("net")
    first = child_spis(petrel)
    seconds = 26
    with Traffic(lab, seconds) as traffic:
        for at, args in (
            (3.0, ["--rekey", "--child", "net"]),
            (9.5, ["--rekey", "--ike", "c"]),
            (16.0, ["--rekey", "--child", "net"]),
            (21.0, ["--rekey", "--child", "net"]),
        ):
            time.sleep(max(0.0, at - (time.monotonic() - traffic.started)))
            swan.swanctl(*args, check=False)
    sent, received, missing = traffic.ping_result  # type: ignore[misc]
    log = petrel.log_text()
    child_rekeys = log.count("established with SPIs") - 1
    ike_rekeys = log.count("rekeyed as")
    assert sent == seconds * 100 and received == sent, loss_report(lab, petrel, swan, missing)
    assert min(traffic.intervals()) > 0, traffic.intervals()  # the stream never stalled
    assert child_rekeys >= 5, log[-4000:]
    assert ike_rekeys >= 2, log[-4000:]
    assert "rekeying net" in log and "peer rekeys net" in log  # both sides initiated
    now = child_spis(petrel)
    assert len(now) == 1 and now != first
    assert swan_child_count(swan) == 1
    (sa,) = ike_sas(petrel)
    assert sa["state"] == "ESTABLISHED"


@pytest.mark.parametrize("attempt", range(3))
def test_simultaneous_child_rekey_with_strongswan_converges(lab: Lab, attempt: int) -> None:
    petrel, swan = petrel_to_strongswan(lab)
    assert petrel.initiate("net")
    for _ in range(4):
        a = subprocess.Popen(
            ["ip", "netns", "exec", lab.left.ns, *petrel_cli(petrel), "rekey", "--child", "net"],
            stdout=subprocess.DEVNULL,
        )
        swan.swanctl("--rekey", "--child", "net", check=False)
        a.wait(timeout=30)
        assert wait_for(lambda: len(child_spis(petrel)) == 1 and swan_child_count(swan) == 1, 15)
        assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    spis = child_spis(petrel)
    assert len(spis) == 1
    spi_in, spi_out = spis[0]
    assert spi_in in swan.list_sas() and spi_out in swan.list_sas()


def petrel_cli(peer: PetrelPeer) -> list[str]:
    from petrel.lab.petrel_peer import PETREL

    return [*PETREL, "--socket", str(peer.vici)]


def test_petrel_pair_identical_lifetimes_converge(lab: Lab) -> None:
    """Identical lifetimes and no jitter: both sides rekey at the same moment, repeatedly."""
    child = ["rekey_time = 3s", "rand_time = 0s", "life_time = 60s"]
    l_conf, r_conf = strongswan_pair_confs(lab, child_extra=child)
    right = PetrelPeer(lab, lab.right.ns, "right", r_conf).start()
    left = PetrelPeer(lab, lab.left.ns, "left", l_conf).start()
    assert left.initiate("net")
    deadline = time.monotonic() + 16
    while time.monotonic() < deadline:
        time.sleep(0.5)
        assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=1) == 1

    def paired() -> bool:
        """One Child SA each side, the mirror of the other's.  The two listings are read one
        after the other while rekeys go on every 3 s, so a pair read across a rekey is read
        again rather than taken for a divergence."""
        mine, theirs = child_spis(left), child_spis(right)
        return len(mine) == 1 and len(theirs) == 1 and mine[0] == (theirs[0][1], theirs[0][0])

    assert wait_for(paired, 10), (child_spis(left), child_spis(right))
    assert left.log_text().count("established with SPIs") >= 5


@pytest.mark.parametrize("action", ["clear", "restart", "trap"])
def test_dead_peer_detection(lab: Lab, action: str) -> None:
    petrel, swan = petrel_to_strongswan(
        lab,
        l_extra=["dpd_delay = 2s", "dpd_timeout = 5s"],
        child_extra=[f"dpd_action = {action}"],
        daemon_args=["--retransmit-timeout", "1", "--retransmit-tries", "5"],
    )
    assert petrel.initiate("net")
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=1) == 1
    assert swan.proc is not None
    killed = time.monotonic()
    lab.stop(swan.proc, 9)
    swan.proc = None
    assert wait_for(lambda: "peer not responding" in petrel.log_text(), 2 + 5 + 3)
    detected = time.monotonic() - killed
    assert detected <= 2 + 5 + 2, detected
    if action == "clear":
        time.sleep(1)
        assert ike_sas(petrel) == []
        return
    swan.start()
    swan.load()
    if action == "trap":
        assert "trap policy installed" in petrel.log_text()
        assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=3, wait=3) >= 1
    else:  # restart: Petrel keeps trying until the peer is back
        assert wait_for(lambda: any(s["state"] == "ESTABLISHED" for s in ike_sas(petrel)), 40)
    assert wait_for(lambda: len(child_spis(petrel)) == 1, 10)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2


def test_trap_policy_first_packet_arrives(lab: Lab) -> None:
    petrel, _swan = petrel_to_strongswan(lab, child_extra=["start_action = trap"])
    assert wait_for(lambda: "trap policy installed" in petrel.log_text(), 5)
    assert ike_sas(petrel) == []
    # One single echo request: it triggers the negotiation, waits, and is answered.
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=1, wait=5) == 1
    assert len(child_spis(petrel)) == 1


MANY_TS = ",".join(f"198.51.100.{i}/32" for i in range(1, 80))


def many_selectors_pair(lab: Lab, direction: str) -> tuple[PetrelPeer, StrongSwan]:
    """Petrel and strongSwan, both with a 576-octet fragment size, left's side of the tunnel
    79 /32 selectors (as for many subnets): IKE_AUTH and CREATE_CHILD_SA need fragments."""
    extra = "fragment_size = 576"
    for i in range(2, 80):
        run_in(lab.left.ns, ["ip", "addr", "add", f"198.51.100.{i}/32", "dev", "lo"])
    encap = ["encap = yes"] if direction.startswith("petrel") else []
    l_conf, _ = strongswan_pair_confs(lab, conn_extra=encap)
    _, r_conf = strongswan_pair_confs(lab)
    l_conf = l_conf.replace("local_ts = 198.51.100.1/32", f"local_ts = {MANY_TS}")
    r_conf = r_conf.replace("remote_ts = 198.51.100.1/32", f"remote_ts = {MANY_TS}")
    if direction.startswith("petrel"):
        swan = StrongSwan(lab, lab.right.ns, "right", r_conf, f"  {extra}").start()
        swan.load()
        petrel = PetrelPeer(
            lab, lab.left.ns, "left", l_conf, daemon_args=["--fragment-size", "576"]
        ).start()
    else:
        petrel = PetrelPeer(
            lab, lab.right.ns, "right", r_conf, daemon_args=["--fragment-size", "576"]
        ).start()
        swan = StrongSwan(lab, lab.left.ns, "left", l_conf, f"  {extra}").start()
        swan.load()
    return petrel, swan


def fragments_seen(cap) -> dict[str, int]:
    """SKF messages (RFC 7383) in a capture of left's link, requests and responses; each
    datagram within the 576-octet fragment size."""
    skf = {"request": 0, "response": 0}
    for frame in cap.frames():
        udp = dpkt.ethernet.Ethernet(frame).data.data
        payload = bytes(udp.data)
        if udp.sport == 4500 or udp.dport == 4500:
            if payload[:4] != b"\0\0\0\0":
                continue
            payload = payload[4:]
        if len(payload) >= 28 and payload[16] == 53:  # Next Payload = SKF
            skf["response" if payload[19] & 0x20 else "request"] += 1
            assert len(udp.data) <= 576 - 28
    return skf


@pytest.mark.parametrize("direction", ["petrel->strongswan", "strongswan->petrel"])
def test_large_ike_auth_is_fragmented(lab: Lab, direction: str) -> None:
    """IKE_AUTH bigger than the fragment size, in both its request and its response."""
    cap = lab.capture(lab.left.ns, lab.left.ifname, "frag", "udp")
    petrel, swan = many_selectors_pair(lab, direction)
    initiator = petrel if direction.startswith("petrel") else swan
    assert initiator.initiate("net"), logs(petrel, swan)
    assert lab.ping(lab.left.ns, "198.51.100.7", "203.0.113.1", count=2) == 2
    cap.stop()
    skf = fragments_seen(cap)
    assert skf["request"] >= 2 and skf["response"] >= 2, skf


@pytest.mark.parametrize("rekeyed_by", ["strongswan", "petrel"])
def test_fragmentation_survives_an_ike_rekey(lab: Lab, rekeyed_by: str) -> None:
    """Fragmentation is agreed in IKE_SA_INIT, once per IKE SA lineage: after either side
    rekeys the IKE SA, a Child SA rekey too big for one datagram is still fragmented both
    ways, and Petrel reassembles strongSwan's fragments on the new IKE SA."""
    petrel, swan = many_selectors_pair(lab, "strongswan->petrel")
    assert swan.initiate("net"), logs(petrel, swan)
    first = ike_sas(petrel)[0]["initiator-spi"]
    if rekeyed_by == "strongswan":
        swan.swanctl("--rekey", "--ike", "c")
    else:
        assert petrel.cli("rekey", "--ike", "c").returncode == 0
    assert wait_for(
        lambda: [sa["initiator-spi"] for sa in ike_sas(petrel)] not in ([], [first]), 15
    ), logs(petrel, swan)
    assert wait_for(lambda: len(ike_sas(petrel)) == 1, 10), logs(petrel, swan)
    before = child_spis(petrel)
    cap = lab.capture(lab.left.ns, lab.left.ifname, "frag-rekey", "udp")
    assert "rekey completed successfully" in swan.swanctl("--rekey", "--child", "net").stdout
    assert wait_for(lambda: child_spis(petrel) not in ([], before), 15), logs(petrel, swan)
    assert lab.ping(lab.left.ns, "198.51.100.7", "203.0.113.1", count=2) == 2
    cap.stop()
    skf = fragments_seen(cap)
    assert skf["request"] >= 2 and skf["response"] >= 2, skf


@pytest.mark.parametrize("attempt", range(3))
def test_simultaneous_ike_rekey_with_strongswan_converges(lab: Lab, attempt: int) -> None:
    petrel, swan = petrel_to_strongswan(lab)
    assert petrel.initiate("net")
    spis = child_spis(petrel)
    for _ in range(3):
        before = {sa["initiator-spi"] for sa in ike_sas(petrel)}
        ours = subprocess.Popen(
            ["ip", "netns", "exec", lab.left.ns, *petrel_cli(petrel), "rekey", "--ike", "c"],
            stdout=subprocess.DEVNULL,
        )
        swan.swanctl("--rekey", "--ike", "c", check=False)
        ours.wait(timeout=30)
        assert wait_for(
            lambda before=before: (
                len(ike_sas(petrel)) == 1
                and len(re.findall(r"ESTABLISHED", swan.list_sas())) == 1
                and {sa["initiator-spi"] for sa in ike_sas(petrel)} != before
            ),
            15,
        ), petrel.log_text()[-3000:]
        assert child_spis(petrel) == spis  # the Child SA moved over untouched
        assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    (sa,) = ike_sas(petrel)
    assert sa["initiator-spi"] in swan.list_sas()


def test_rekeys_complete_under_loss(lab: Lab) -> None:
    """20 % random loss each way: Child and IKE SA rekeys by either side still complete
    (retransmissions), and each side ends with exactly one IKE SA and one Child SA.

    When the response to the Delete of a rekeyed IKE SA is lost, the peer has already
    forgotten that SA and ignores the retransmits (§2.21), so the old SA stays DELETING until
    its retransmissions give up; "settled" therefore counts established IKE SAs, and the end
    of the test waits for every superseded SA to be gone."""
    petrel, swan = petrel_to_strongswan(lab, **FAST_RETRANSMIT)  # type: ignore[arg-type]
    assert petrel.initiate("net")
    for host in (lab.left, lab.right):
        lab.set_loss(20, host.ns)
    rekeys = [
        ["petrel", "rekey", "--child", "net"],
        ["swan", "--rekey", "--child", "net"],
        ["petrel", "rekey", "--ike", "c"],
        ["swan", "--rekey", "--ike", "c"],
        ["petrel", "rekey", "--child", "net"],
        ["swan", "--rekey", "--child", "net"],
    ]
    for who, *args in rekeys:
        before_child = child_spis(petrel)
        before_ike = [sa["initiator-spi"] for sa in ike_sas(petrel)]
        if who == "petrel":
            assert petrel.cli(*args).returncode == 0
        else:
            swan.swanctl(*args, check=False)

        def settled(child=before_child, ike=before_ike, args=args) -> bool:
            now_child = child_spis(petrel)
            now_ike = [s["initiator-spi"] for s in ike_sas(petrel) if s["state"] == "ESTABLISHED"]
            changed = now_child != child if "--child" in args else now_ike != ike
            return (
                changed
                and len(now_child) == 1
                and len(now_ike) == 1
                and swan_child_count(swan) == 1
                and len(re.findall(r"ESTABLISHED", swan.list_sas())) == 1
            )

        assert wait_for(settled, 60, interval=0.5), (who, args, logs(petrel, swan))
    for host in (lab.left, lab.right):
        lab.set_loss(0, host.ns)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=3) == 3
    # FAST_RETRANSMIT gives up within ~50 s: by then a superseded SA is gone
    assert wait_for(lambda: len(ike_sas(petrel)) == 1, 60), logs(petrel, swan)
    assert "retransmit" in petrel.log_text() or "retransmit" in swan.log_text()


@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
def test_child_rekey_with_pfs(lab: Lab, pair: str) -> None:
    """ESP proposals with a key exchange: IKE_AUTH leaves it out (RFC 7296 §1.2), each rekey
    runs a fresh ECDH exchange (§1.3.1), whichever side starts it."""
    left, right = start_pair(lab, pair, esp_proposals="aes256gcm16-ecp256")
    assert left.initiate("net"), logs(left, right)
    petrel = left if isinstance(left, PetrelPeer) else right
    swan = right if isinstance(right, StrongSwan) else left
    for who in ("petrel", "swan", "petrel"):
        before = child_spis(petrel)
        if who == "petrel":
            assert petrel.cli("rekey", "--child", "net").returncode == 0
        else:
            swan.swanctl("--rekey", "--child", "net", check=False)
        assert wait_for(lambda b=before: child_spis(petrel) not in ([], b), 15), logs(left, right)
        assert wait_for(lambda: len(child_spis(petrel)) == 1, 10), logs(left, right)
        assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    assert "ECP_256" in swan.list_sas()  # the rekeyed Child SA used PFS
