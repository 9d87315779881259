#!/usr/bin/env python3
"""Tunnel throughput (iperf3 TCP, AES-256-GCM) between two namespaces, per pair of IPsec peers.

Each *pair runner* gets a fresh :class:`Lab`, starts both peers, brings the Child SA up and
returns the inner addresses to measure between. Every pair is measured in the same run, and
the table reports each result as a ratio to strongSwan <-> strongSwan (kernel-libipsec), the
reference: absolute figures drift between machines (LAB.md, "Measuring").

Add a pair: write ``def my_pair(lab: Lab) -> Endpoints`` and register it in ``PAIRS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

from petrel.lab import Lab, run_in, strongswan_available, wait_for
from petrel.lab.pairs import logs, start_pair

REFERENCE = "strongswan-strongswan"


@dataclass(frozen=True)
class Endpoints:
    """Where iperf3 runs: client in ``src_ns`` bound to ``src``, server in ``dst_ns`` on ``dst``."""

    src_ns: str
    src: str
    dst_ns: str
    dst: str


PairRunner = Callable[[Lab], Endpoints]


def inner(lab: Lab) -> Endpoints:
    return Endpoints(lab.left.ns, lab.left.inner4, lab.right.ns, lab.right.inner4)


def _pair(pair: str, daemon_args: tuple[str, ...] = ()) -> PairRunner:
    """L of ``pair`` (see :data:`petrel.lab.pairs.PAIRS`) initiates; PSK, AES-256-GCM. Petrel
    daemons log nothing but warnings, as a production daemon would."""

    def run(lab: Lab) -> Endpoints:
        left, right = start_pair(lab, pair, daemon_args=("--log", "0", *daemon_args))
        if not left.initiate("net"):
            raise RuntimeError(f"{pair} did not come up:\n" + logs(left, right))
        return inner(lab)

    return run


def plain_veth(lab: Lab) -> Endpoints:
    """No IPsec: the outer addresses over the bare veth (the ceiling, for scale)."""
    return Endpoints(lab.left.ns, lab.left.outer4, lab.right.ns, lab.right.outer4)


PAIRS: dict[str, PairRunner] = {
    # charon (kernel-libipsec, userspace ESP-in-UDP) on both sides: the reference
    REFERENCE: _pair("strongswan->strongswan"),
    # Petrel (userspace ESP over TUN, UDP 4500) ↔ charon
    "petrel-strongswan": _pair("petrel->strongswan"),
    # the same, Petrel sending in UDP GSO batches
    "petrel-strongswan-gso": _pair("petrel->strongswan", ("--udp-gso",)),
    # Petrel ↔ Petrel: ESP over raw IP protocol 50 (no NAT, no forced encapsulation)
    "petrel-petrel": _pair("petrel->petrel"),
    "veth-no-ipsec": plain_veth,
}


def iperf3(lab: Lab, ep: Endpoints, seconds: int, parallel: int) -> float:
    """Run one iperf3 TCP test through ``ep``; return received Mbit/s."""
    log = lab.workdir / "iperf3-server.log"
    server = lab.spawn_in(ep.dst_ns, ["iperf3", "-s", "-1", "--forceflush", "-B", ep.dst], log)
    if not wait_for(lambda: "listening" in log.read_text(errors="replace"), 10):
        raise RuntimeError("iperf3 server did not start: " + log.read_text(errors="replace"))
    argv = ["iperf3", "-c", ep.dst, "-B", ep.src, "-t", str(seconds), "-P", str(parallel), "-J"]
    out = run_in(ep.src_ns, argv, timeout=seconds + 60)
    lab.stop(server)
    result = json.loads(out.stdout)
    return result["end"]["sum_received"]["bits_per_second"] / 1e6


def measure(name: str, seconds: int, parallel: int) -> float:
    with Lab() as lab:
        return iperf3(lab, PAIRS[name](lab), seconds, parallel)


def table(results: dict[str, float | str]) -> str:
    ref = results.get(REFERENCE)
    rows = [f"{'pair':<24} {'Mbit/s':>10} {'vs ' + REFERENCE:>26}"]
    for name, value in results.items():
        if isinstance(value, str):
            rows.append(f"{name:<24} {'error':>10} {value[:60]:>26}")
            continue
        ratio = f"{value / ref:.2f}x" if isinstance(ref, float) and ref > 0 else "-"
        rows.append(f"{name:<24} {value:>10.1f} {ratio:>26}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=int, default=10, help="seconds per iperf3 run (default 10)")
    ap.add_argument("--parallel", type=int, default=1, help="iperf3 -P streams (default 1)")
    ap.add_argument("--pairs", nargs="*", default=list(PAIRS), choices=list(PAIRS))
    ap.add_argument("--json", action="store_true", help="print results as JSON as well")
    args = ap.parse_args(argv)
    missing = strongswan_available()
    if missing and REFERENCE in args.pairs:
        print(f"cannot run {REFERENCE}: {missing}", file=sys.stderr)
        return 2
    results: dict[str, float | str] = {}
    for name in args.pairs:
        print(f"measuring {name} for {args.time} s ...", file=sys.stderr, flush=True)
        try:
            results[name] = measure(name, args.time, args.parallel)
        except Exception as exc:  # one broken pair must not hide the others' figures
            results[name] = f"{type(exc).__name__}: {exc}"
    print(table(results))
    if args.json:
        print(json.dumps(results))
    return 0 if all(isinstance(v, float) for v in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
