"""The IKE_SA_INIT flood scenario shared by tests/e2e/test_flood.py and bench/flood.py.

R runs the responder under test (Petrel or charon). L holds the flooders' addresses
(``FLOOD_SOURCES`` on vL, :mod:`petrel.lab.flood`) and a legitimate Petrel initiator; a third
namespace X, linked to R (X vX 198.51.100.130/25 <-> R vRX 198.51.100.129/25), holds a
legitimate strongSwan initiator. Each legitimate client runs complete handshakes one after
the other (``swanctl --initiate`` then ``--terminate`` over its VICI socket: Debian's swanctl
drives both) while the flood runs; the responder's RSS and its VICI ``stats`` answer time are
sampled throughout.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .netns import Lab
from .petrel_peer import PetrelPeer
from .process import PYTHON, run_in
from .strongswan import DEFAULT_PSK, StrongSwan, swanctl_psk_conf

FLOOD_SOURCES = "192.0.2.64/26"  # 62 flooder addresses on L's vL
X_ADDR, RX_ADDR = "198.51.100.130", "198.51.100.129"
X_INNER = "198.51.100.2"
PROPOSALS = "aes256gcm16-prfsha256-x25519"


def add_flood_sources(lab: Lab, prefix: str = FLOOD_SOURCES) -> list[str]:
    """Configure every host address of ``prefix`` on L's vL (one ``ip -batch``)."""
    hosts = [str(a) for a in ipaddress.ip_network(prefix).hosts()]
    batch = "".join(f"addr add {a}/24 dev vL\n" for a in hosts)
    run_in(lab.left.ns, ["ip", "-batch", "-"], input=batch.encode())
    return hosts


def add_x_namespace(lab: Lab) -> str:
    """Namespace X joined to R by its own veth pair; returns its name (the lab deletes it)."""
    ns = f"{lab.prefix}X"
    run_in(None, ["ip", "netns", "add", ns])
    lab.namespaces.append(ns)
    lab.ip(ns, "link", "set", "lo", "up")
    lab.ip(ns, "link", "add", "vX", "type", "veth", "peer", "name", "vRX", "netns", lab.right.ns)
    lab.ip(ns, "addr", "add", f"{X_ADDR}/25", "dev", "vX")
    lab.ip(ns, "addr", "add", f"{X_INNER}/32", "dev", "lo")
    lab.ip(ns, "link", "set", "vX", "up")
    lab.ip(lab.right.ns, "addr", "add", f"{RX_ADDR}/25", "dev", "vRX")
    lab.ip(lab.right.ns, "link", "set", "vRX", "up")
    return ns


def responder_conf(lab: Lab) -> str:
    """R's swanctl.conf: ``c`` for the Petrel client (id left), ``s`` for strongSwan (sleft)."""
    inner = f"{lab.right.inner4}/32"
    c = swanctl_psk_conf(
        local_addr="%any", remote_addr="%any", local_id="right", remote_id="left",
        local_ts=inner, remote_ts=f"{lab.left.inner4}/32", proposals=PROPOSALS, conn="c",
    )  # fmt: skip
    s = swanctl_psk_conf(
        local_addr="%any", remote_addr="%any", local_id="right", remote_id="sleft",
        local_ts=inner, remote_ts=f"{X_INNER}/32", proposals=PROPOSALS, conn="s",
    )  # fmt: skip
    # Two documents in one: the connections of both, then the secrets of both.
    c_conns, c_secrets = c.split("secrets {")
    s_conns, s_secrets = s.split("secrets {")
    s_secrets = s_secrets.replace("ike-1", "ike-2")
    conns = c_conns.rstrip()[:-1] + s_conns.strip()[len("connections {") :]
    return f"{conns}\nsecrets {{{c_secrets.rstrip()[:-1]}{s_secrets}"


def client_conf(local: str, remote: str, local_id: str, inner: str, lab: Lab, encap: bool) -> str:
    return swanctl_psk_conf(
        local_addr=local, remote_addr=remote, local_id=local_id, remote_id="right",
        local_ts=f"{inner}/32", remote_ts=f"{lab.right.inner4}/32", proposals=PROPOSALS,
        secret=DEFAULT_PSK, conn_extra=["encap = yes"] if encap else [],
    )  # fmt: skip


@dataclass
class ClientResult:
    """Handshakes of one legitimate client: outcome and latency of each ``--initiate``."""

    name: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.latencies) + len(self.failures)


def handshake_loop(
    vici: Path, stop: threading.Event, result: ClientResult, limit: int = 10_000
) -> None:
    """Initiate and terminate ``c`` (child ``net``) until ``stop``; record each outcome."""
    uri = f"unix://{vici}"
    while not stop.is_set() and result.attempts < limit:
        start = time.monotonic()
        try:
            proc = run_in(
                None,
                ["swanctl", "--initiate", "--child", "net", "--timeout", "25", "--uri", uri],
                check=False,
                timeout=40,
            )
        except subprocess.TimeoutExpired:
            result.failures.append("swanctl --initiate hung")
            continue
        took = time.monotonic() - start
        if proc.returncode == 0:
            result.latencies.append(took)
        else:
            result.failures.append((proc.stdout + proc.stderr).strip()[-300:])
        run_in(
            None,
            ["swanctl", "--terminate", "--ike", "c", "--timeout", "10", "--uri", uri],
            check=False,
            timeout=30,
        )


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS), KiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Probe:
    """The responder seen from outside: RSS and the VICI ``stats`` round trip, sampled."""

    rss: list[int] = field(default_factory=list)
    stats_times: list[float] = field(default_factory=list)
    stats_failures: list[str] = field(default_factory=list)
    last_stats: dict = field(default_factory=dict)  # type: ignore[type-arg]


def probe_loop(pid: int, vici: Path, stop: threading.Event, probe: Probe) -> None:
    """Every 0.5 s until ``stop``: ``pid``'s RSS and a VICI ``stats`` round trip (5 s at most)."""
    from ..control.client import ViciClient

    while not stop.is_set():
        probe.rss.append(rss_kib(pid))
        start = time.monotonic()
        try:
            with ViciClient(str(vici), timeout=5) as client:
                probe.last_stats = client.request("stats")
            probe.stats_times.append(time.monotonic() - start)
        except Exception as exc:  # any failure to answer is the finding
            probe.stats_failures.append(f"{type(exc).__name__}: {exc}")
        stop.wait(0.5)


def start_flooder(
    lab: Lab,
    target: str,
    rate: float,
    seconds: float,
    mode: str,
    out: Path,
    sources: str = FLOOD_SOURCES,
) -> subprocess.Popen[bytes]:
    """The flooder in L (its output, one JSON line, goes to ``out``)."""
    argv = [
        PYTHON, "-m", "petrel.lab.flood", "--target", target, "--sources", sources,
        "--rate", str(rate), "--seconds", str(seconds), "--mode", mode,
    ]  # fmt: skip
    return lab.spawn_in(lab.left.ns, argv, out, env=dict(os.environ))


def flood_counts(out: Path) -> dict:  # type: ignore[type-arg]
    for line in reversed(out.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    return {}


@dataclass
class Scene:
    """Responder R, clients (a Petrel daemon in L, a charon in X), flooder sources ready."""

    lab: Lab
    responder: PetrelPeer | StrongSwan
    clients: list[tuple[str, Path]]
    responder_pid: int
    client_peers: list[PetrelPeer | StrongSwan]


def build_scene(
    lab: Lab, responder: str, env: dict[str, str] | None = None, sources: str = FLOOD_SOURCES
) -> Scene:
    """R runs ``responder`` ("petrel" or "strongswan", default settings), the clients wait."""
    add_flood_sources(lab, sources)
    x_ns = add_x_namespace(lab)
    conf = responder_conf(lab)
    peer: PetrelPeer | StrongSwan
    if responder == "petrel":
        peer = PetrelPeer(lab, lab.right.ns, "right", conf, log="1", env=env).start()
    else:
        peer = StrongSwan(lab, lab.right.ns, "right", conf).start()
        peer.load()
    assert peer.proc is not None
    pid = charon_pid(peer) if isinstance(peer, StrongSwan) else peer.proc.pid
    left = PetrelPeer(
        lab,
        lab.left.ns,
        "left",
        client_conf(
            lab.left.outer4, lab.right.outer4, "left", lab.left.inner4, lab, responder != "petrel"
        ),
        log="1",
    ).start()
    swan = StrongSwan(
        lab, x_ns, "x", client_conf(X_ADDR, RX_ADDR, "sleft", X_INNER, lab, False)
    ).start()
    swan.load()
    clients = [("petrel", left.vici), ("strongswan", swan.vici)]
    return Scene(lab, peer, clients, pid, [left, swan])


def charon_pid(swan: StrongSwan) -> int:
    """charon's own PID (the lab's process is the ``unshare … sh`` that execs it)."""
    assert swan.proc is not None
    pid_file = swan.run_dir / "charon.pid"
    if pid_file.exists():
        return int(pid_file.read_text().strip())
    return swan.proc.pid


@dataclass
class Round:
    """One flood round: the flooder's counters, each client's handshakes, the probe."""

    mode: str
    flood: dict  # type: ignore[type-arg]
    clients: list[ClientResult]
    probe: Probe
    baseline_rss: int
    legit_seconds: float

    @property
    def attempts(self) -> int:
        return sum(r.attempts for r in self.clients)

    @property
    def succeeded(self) -> int:
        return sum(len(r.latencies) for r in self.clients)

    def latency(self, quantile: float) -> float:
        values = sorted(x for r in self.clients for x in r.latencies)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(quantile * len(values)))]

    def summary(self) -> str:
        clients = "; ".join(
            f"{r.name}: {len(r.latencies)}/{r.attempts} {r.failures[:3]}" for r in self.clients
        )
        probe = self.probe
        return (
            f"{self.mode}: flood {self.flood}; clients {clients}; RSS {self.baseline_rss}.."
            f"{max(probe.rss, default=0)} KiB; stats failures {probe.stats_failures[:3]}, "
            f"slowest {max(probe.stats_times, default=0):.2f} s; drops "
            f"{probe.last_stats.get('drops')}"
        )


def run_round(
    scene: Scene,
    mode: str,
    rate: float,
    seconds: float,
    sources: str = FLOOD_SOURCES,
    handshakes: int = 10_000,
) -> Round:
    """Flood R for ``seconds`` while every client runs handshakes (at most ``handshakes``
    each); the probe samples R's RSS and VICI ``stats`` from before the flood to the end."""
    lab = scene.lab
    stop = threading.Event()
    probe = Probe()
    probing = threading.Thread(
        target=probe_loop, args=(scene.responder_pid, scene.responder.vici, stop, probe)
    )
    probing.start()
    time.sleep(0.6)
    baseline = min(probe.rss) if probe.rss else rss_kib(scene.responder_pid)
    out = lab.workdir / f"flood-{mode}-{time.monotonic():.0f}.json"
    flooder = start_flooder(lab, lab.right.outer4, rate, seconds, mode, out, sources)
    time.sleep(1.0)  # the flood is on before the first legitimate handshake
    results = [ClientResult(name) for name, _vici in scene.clients]
    threads = [
        threading.Thread(target=handshake_loop, args=(vici, stop, result, handshakes))
        for (_name, vici), result in zip(scene.clients, results, strict=True)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        flooder.wait(seconds + 30)
    except subprocess.TimeoutExpired:
        lab.stop(flooder)
    stop.set()
    for thread in threads:
        thread.join(90)
    legit_seconds = time.monotonic() - started
    probing.join(10)
    return Round(mode, flood_counts(out), results, probe, baseline, legit_seconds)
