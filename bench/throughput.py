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

from petrel.lab import (
    Lab,
    PetrelPeer,
    StrongSwan,
    run_in,
    strongswan_available,
    strongswan_pair_confs,
    wait_for,
)

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


def strongswan_strongswan(lab: Lab) -> Endpoints:
    """charon (kernel-libipsec, userspace ESP-in-UDP) on both sides, PSK, AES-256-GCM."""
    l_conf, r_conf = strongswan_pair_confs(lab)
    left = StrongSwan(lab, lab.left.ns, "left", l_conf).start()
    right = StrongSwan(lab, lab.right.ns, "right", r_conf).start()
    left.load()
    right.load()
    if not left.initiate("net"):
        raise RuntimeError("strongSwan pair did not come up:\n" + left.log_text()[-3000:])
    return inner(lab)


def _petrel_pair(lab: Lab, right_is_petrel: bool, args: tuple[str, ...] = ()) -> Endpoints:
    """Petrel on L initiating; R is Petrel or strongSwan. AES-256-GCM, PSK."""
    extra = [] if right_is_petrel else ["encap = yes"]  # kernel-libipsec needs UDP encap
    l_conf, _ = strongswan_pair_confs(lab, conn_extra=extra)
    _, r_conf = strongswan_pair_confs(lab)
    if right_is_petrel:
        PetrelPeer(lab, lab.right.ns, "right", r_conf, log="0").start()
    else:
        StrongSwan(lab, lab.right.ns, "right", r_conf).start().load()
    left = PetrelPeer(lab, lab.left.ns, "left", l_conf, log="0", daemon_args=args).start()
    if not left.initiate("net"):
        raise RuntimeError("Petrel pair did not come up:\n" + left.log_text()[-3000:])
    return inner(lab)


def petrel_strongswan(lab: Lab) -> Endpoints:
    """Petrel (userspace ESP over TUN, UDP 4500) ↔ charon (kernel-libipsec)."""
    return _petrel_pair(lab, right_is_petrel=False)


def petrel_strongswan_gso(lab: Lab) -> Endpoints:
    """As petrel-strongswan, Petrel sending in UDP GSO batches (``--udp-gso``)."""
    return _petrel_pair(lab, right_is_petrel=False, args=("--udp-gso",))


def petrel_petrel(lab: Lab) -> Endpoints:
    """Petrel ↔ Petrel: userspace ESP over raw IP protocol 50 (no NAT, no forced encap)."""
    return _petrel_pair(lab, right_is_petrel=True)


def plain_veth(lab: Lab) -> Endpoints:
    """No IPsec: the outer addresses over the bare veth (the ceiling, for scale)."""
    return Endpoints(lab.left.ns, lab.left.outer4, lab.right.ns, lab.right.outer4)


PAIRS: dict[str, PairRunner] = {
    REFERENCE: strongswan_strongswan,
    "petrel-strongswan": petrel_strongswan,
    "petrel-strongswan-gso": petrel_strongswan_gso,
    "petrel-petrel": petrel_petrel,
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
