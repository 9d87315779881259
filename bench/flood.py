#!/usr/bin/env python3
"""Legitimate IKE handshakes under an IKE_SA_INIT flood: Petrel beside strongSwan.

For each responder (Petrel, then charon 5.9.8 with its default settings) and each flood mode
(``never``: flooders never answer; ``cookie``: they return every COOKIE and never send
IKE_AUTH), a fresh lab (:mod:`petrel.lab.dos`) floods R from ``--sources`` at ``--rate``
IKE_SA_INIT requests per second while two legitimate clients — a Petrel daemon and a charon —
run complete handshakes (``swanctl --initiate`` then ``--terminate``) until ``--handshakes``
each or the flood ends. Printed per round: legitimate successes, latency p50/p99 of a whole
``--initiate``, R's RSS before and at its peak, the slowest VICI ``stats`` answer, and the
ratios Petrel/strongSwan. Every responder runs its defaults: nothing is tuned for the flood.
"""

from __future__ import annotations

import argparse
import json
import sys

from petrel.lab import Lab, strongswan_available
from petrel.lab.dos import Round, build_scene, run_round

RESPONDERS = ("petrel", "strongswan")
MODES = ("never", "cookie")


def row(responder: str, result: Round) -> dict[str, object]:
    peak = max(result.probe.rss, default=0)
    return {
        "responder": responder,
        "mode": result.mode,
        "flood_sent": result.flood.get("sent", 0),
        "flood_rate": round(result.flood.get("sent", 0) / max(result.flood.get("seconds", 1), 1)),
        "ok": result.succeeded,
        "attempts": result.attempts,
        "success": result.succeeded / result.attempts if result.attempts else 0.0,
        "p50_ms": round(result.latency(0.50) * 1000),
        "p99_ms": round(result.latency(0.99) * 1000),
        "rss_before_mib": round(result.baseline_rss / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_growth_mib": round((peak - result.baseline_rss) / 1024, 1),
        "stats_slowest_s": round(max(result.probe.stats_times, default=float("nan")), 2),
        "stats_failures": len(result.probe.stats_failures),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=6000.0, help="flood requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="flood duration per round")
    parser.add_argument("--handshakes", type=int, default=100, help="per legitimate client")
    parser.add_argument("--sources", default="192.0.2.128/25", help="flooder prefix (in L)")
    parser.add_argument("--responders", nargs="+", choices=RESPONDERS, default=list(RESPONDERS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--json", action="store_true", help="one JSON line per round")
    args = parser.parse_args()
    missing = strongswan_available()
    if missing:
        print(f"bench/flood.py: {missing}", file=sys.stderr)
        return 2
    rows = []
    for mode in args.modes:
        for responder in args.responders:
            with Lab() as lab:
                scene = build_scene(lab, responder, sources=args.sources)
                result = run_round(
                    scene, mode, args.rate, args.seconds, args.sources, args.handshakes
                )
            line = row(responder, result)
            rows.append(line)
            print(json.dumps(line) if args.json else result.summary(), file=sys.stderr)
    print_table(rows)
    return 0


def print_table(rows: list[dict[str, object]]) -> None:
    head = (
        f"{'mode':7} {'responder':10} {'flood/s':>7} {'legit ok':>10} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'RSS MiB':>13} {'stats max s':>11}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['mode']:7} {r['responder']:10} {r['flood_rate']:>7} "
            f"{str(r['ok']) + '/' + str(r['attempts']):>10} {r['p50_ms']:>7} {r['p99_ms']:>7} "
            f"{str(r['rss_before_mib']) + '->' + str(r['rss_peak_mib']):>13} "
            f"{r['stats_slowest_s']:>11}"
        )
    for mode in {str(r["mode"]) for r in rows}:
        by = {r["responder"]: r for r in rows if r["mode"] == mode}
        if "petrel" in by and "strongswan" in by:
            p, s = by["petrel"], by["strongswan"]
            print(
                f"{mode}: Petrel/strongSwan success {_ratio(p['success'], s['success'])}, "
                f"p50 {_ratio(p['p50_ms'], s['p50_ms'])}, p99 {_ratio(p['p99_ms'], s['p99_ms'])}, "
                f"RSS growth {p['rss_growth_mib']} vs {s['rss_growth_mib']} MiB"
            )


def _ratio(a: object, b: object) -> str:
    try:
        return f"{float(a) / float(b):.2f}"  # type: ignore[arg-type]
    except (ZeroDivisionError, TypeError, ValueError):
        return "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
