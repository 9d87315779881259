"""`petrel demo`: a real tunnel between two network namespaces, with traffic through it.

Builds the lab (two namespaces joined by a veth pair, documentation addresses only), starts two
Petrel daemons from a built-in swanctl.conf (PSK, AES-256-GCM, X25519) — and a Petrel↔strongSwan
pair when strongSwan is installed — brings the Child SA up, pings both ways, moves data over TCP
with a checksum at the far end, prints the SAs and the throughput, and removes everything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from .lab import Lab, StrongSwan, run_in, strongswan_available
from .lab.pairs import start_pair
from .lab.prerequisites import INSTALL_HINT, missing_programs
from .lab.probes import tcp_transfer

TRANSFER_BYTES = 20 * 1024 * 1024
DEMO_PROGRAMS = ("ip", "sysctl")  # the lab itself; strongSwan's are checked before its pair


def _say(text: str = "") -> None:
    print(text, flush=True)


def _throughput(lab: Lab, seconds: float) -> str:
    """iperf3 through the tunnel when installed, else a timed checksummed TCP transfer."""
    left, right = lab.left, lab.right
    if shutil.which("iperf3") and seconds > 0:
        log = lab.workdir / "iperf3.log"
        server = lab.spawn_in(right.ns, ["iperf3", "-s", "-1", "-B", right.inner4], log)
        time.sleep(0.5)
        out = run_in(
            left.ns,
            [
                "iperf3",
                "-c",
                right.inner4,
                "-B",
                left.inner4,
                "-t",
                str(int(max(seconds, 1))),
                "-J",
            ],
            check=False,
            timeout=seconds + 60,
        )
        lab.stop(server)
        try:
            bps = json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]
        except (ValueError, KeyError):
            return "iperf3 failed"
        return f"{bps / 1e6:.0f} Mbit/s (iperf3 TCP, {int(max(seconds, 1))} s)"
    start = time.monotonic()
    ok = tcp_transfer(left.ns, right.ns, left.inner4, right.inner4, TRANSFER_BYTES)
    elapsed = time.monotonic() - start
    return f"{TRANSFER_BYTES * 8 / elapsed / 1e6:.0f} Mbit/s (TCP {'ok' if ok else 'FAILED'})"


def _run_pair(title: str, with_strongswan: bool, seconds: float) -> bool:
    _say(f"== {title} ==")
    with Lab() as lab:
        left_host, right_host = lab.left, lab.right
        pair = "petrel->strongswan" if with_strongswan else "petrel->petrel"
        left, right = start_pair(lab, pair, daemon_args=("--log", "1"))
        _say(
            f"namespaces {left_host.ns} ({left_host.outer4}) and {right_host.ns} "
            f"({right_host.outer4}); protecting {left_host.inner4} <=> {right_host.inner4}"
        )
        start = time.monotonic()
        if not left.initiate("net"):
            _say("tunnel did not come up; Petrel's log:\n" + left.log_text()[-3000:])
            return False
        _say(f"tunnel up in {(time.monotonic() - start) * 1000:.0f} ms")
        there = lab.ping(left_host.ns, left_host.inner4, right_host.inner4, count=3)
        back = lab.ping(right_host.ns, right_host.inner4, left_host.inner4, count=3)
        _say(
            f"ping {left_host.inner4} -> {right_host.inner4}: {there}/3 answered; "
            f"back: {back}/3 answered"
        )
        moved = tcp_transfer(
            left_host.ns, right_host.ns, left_host.inner4, right_host.inner4, TRANSFER_BYTES
        )
        _say(
            f"TCP transfer of {TRANSFER_BYTES >> 20} MiB: "
            f"{'SHA-256 matches at the far end' if moved else 'FAILED'}"
        )
        rate = _throughput(lab, seconds)
        _say(f"throughput: {rate}")
        _say("\npetrel list-sas (initiator):")
        _say(left.list_sas())
        if isinstance(right, StrongSwan):
            _say("swanctl --list-sas (strongSwan responder):")
            _say(right.list_sas())
        else:
            _say("petrel list-sas (responder):")
            _say(right.list_sas())
        ok = there == 3 and back == 3 and moved
    _say(f"cleaned up; {title}: {'OK' if ok else 'FAILED'}\n")
    return ok


def main(args: argparse.Namespace) -> int:
    """Run the pairs; a peer that cannot start raises :class:`PeerStartError`, which ``petrel``
    reports in one line (what failed, charon's or Petrel's line saying why, what to install)."""
    if os.geteuid() != 0:
        print("petrel demo: needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 2
    missing = missing_programs(DEMO_PROGRAMS)
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        print(
            f"petrel demo: {', '.join(missing)} not found; install {packages} ({INSTALL_HINT})",
            file=sys.stderr,
        )
        return 1
    results = [_run_pair("Petrel <-> Petrel (ESP over IP protocol 50)", False, args.seconds)]
    missing = strongswan_available()
    if args.no_strongswan:
        pass
    elif missing:
        _say(f"skipping Petrel <-> strongSwan: {missing}")
    else:
        results.append(_run_pair("Petrel <-> strongSwan 5.9 (ESP in UDP 4500)", True, args.seconds))
    return 0 if all(results) else 1
