"""Traffic through a lab tunnel while something happens to it: a 100/s ping, an iperf3
stream, and a report of where lost pings went (drop counters, overflow counters, log lines)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

from .netns import Lab
from .petrel_peer import PetrelPeer
from .process import run_in, wait_for
from .strongswan import StrongSwan


def flood_ping(
    ns: str, src: str, dst: str, count: int, interval: float = 0.01
) -> tuple[int, int, list[str]]:
    """iputils ping at 1/interval per second; returns (sent, received, and for each unanswered
    icmp_seq the local time of the reply before it, to find it in the daemons' logs)."""
    out = run_in(
        ns,
        ["ping", "-n", "-D", "-i", str(interval), "-c", str(count), "-W", "2", "-I", src, dst],
        check=False,
        timeout=count * interval + 60,
    ).stdout
    sent, received = re.search(r"(\d+) packets transmitted, (\d+) received", out).groups()
    stamps = {int(n): float(t) for t, n in re.findall(r"^\[([\d.]+)\].*icmp_seq=(\d+) ", out, re.M)}
    missing = []
    for seq in sorted(set(range(1, int(sent) + 1)) - stamps.keys()):
        before = max((s for s in stamps if s < seq), default=None)
        when = stamps[before] if before is not None else 0.0
        clock = time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1000):03d}"
        missing.append(f"icmp_seq={seq} after {clock}")
    return int(sent), int(received), missing


class Traffic:
    """A 100/s ping and an iperf3 stream running in the background during a test."""

    def __init__(self, lab: Lab, seconds: int) -> None:
        self.lab, self.seconds = lab, seconds
        self.ping_result: tuple[int, int, list[str]] | None = None
        self.iperf_out = ""

    def __enter__(self) -> Traffic:
        L, R = self.lab.left, self.lab.right
        log = self.lab.workdir / "iperf3-server.log"
        self.server = self.lab.spawn_in(
            R.ns, ["iperf3", "-s", "-1", "--forceflush", "-B", R.inner4], log
        )
        assert wait_for(lambda: "listening" in log.read_text(errors="replace"), 10)
        self.client = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                L.ns,
                "iperf3",
                "-c",
                R.inner4,
                "-B",
                L.inner4,
                "-t",
                str(self.seconds),
                "-J",
                "-b",
                "40M",  # well below what charon's libipsec absorbs: no congestion losses
                "-l",
                # Short bursts: a 128 KiB write (iperf3's default) leaves the TUN device as ~90
                # back-to-back packets, about what charon's 208 KiB UDP receive buffer holds;
                # it then drops some (UdpRcvbufErrors), a ping among them now and then.
                "16K",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lab.procs.append(self.client)  # type: ignore[arg-type]
        self.pinger = threading.Thread(
            target=lambda: setattr(
                self, "ping_result", flood_ping(L.ns, L.inner4, R.inner4, self.seconds * 100)
            ),
        )
        self.pinger.start()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pinger.join(timeout=self.seconds + 90)
        self.iperf_out, _ = self.client.communicate(timeout=self.seconds + 60)

    def intervals(self) -> list[float]:
        result = json.loads(self.iperf_out)
        return [i["sum"]["bits_per_second"] for i in result["intervals"]]


def loss_report(lab: Lab, petrel: PetrelPeer, swan: StrongSwan, missing: list[str]) -> str:
    """Where lost pings can have gone: Petrel's drop counters, each namespace's nonzero drop,
    error and overflow counters, and both daemons' log lines around each loss."""
    lines = [f"unanswered: {missing[:10]}"]
    try:
        lines.append(f"petrel drops: {json.loads(petrel.cli('stats').stdout)['drops']}")
    except Exception as exc:  # a dead daemon must not hide the assertion that failed
        lines.append(f"petrel stats unavailable: {exc}")
    for ns in (lab.left.ns, lab.right.ns):
        counters = run_in(ns, ["nstat", "-asz"], check=False).stdout.splitlines()
        counters += run_in(ns, ["ip", "-s", "-o", "link"], check=False).stdout.splitlines()
        lines.append(f"{ns}: " + " | ".join(c for c in counters if _DROPPY.search(c)))
    for seq in missing[:3]:
        second = seq.split("after ")[-1][:8]  # HH:MM:SS of the reply before the loss
        for peer in (petrel, swan):
            lines += [
                f"{peer.name}: {line}"
                for line in peer.log_text().splitlines()
                if line.startswith(second)
            ]
    return "\n".join(lines)


_DROPPY = re.compile(r"(Err|Discard|Drop|Overflow|Prune)\w*\s+[1-9]|dropped")
