"""An IKE_SA_INIT flood against a Petrel responder (RFC 7296 §2.6, RFC 8019): legitimate
clients — a Petrel daemon and a strongSwan initiator — keep completing handshakes.

62 flooder addresses in L send IKE_SA_INIT requests at 1,000/s (far above 10 times the legitimate
IKE_SA_INIT rate, which is measured and checked), once never answering and once returning
every COOKIE and then never sending IKE_AUTH. Meanwhile each legitimate client runs complete
handshakes one after the other. ≥ 99 % of them must succeed, the responder's RSS must stay
bounded and its VICI socket must answer ``stats`` throughout. strongSwan knows no puzzles: it
gets in by returning the cookie (RFC 8019 §7.1.1).
"""

from __future__ import annotations

import threading
import time

import pytest

from petrel.lab import Lab
from petrel.lab.dos import (
    ClientResult,
    Probe,
    build_scene,
    flood_counts,
    handshake_loop,
    probe_loop,
    start_flooder,
)

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

FLOOD_RATE = 1000.0
SECONDS = 15.0
RSS_GROWTH_KIB = 60 * 1024  # the flood may not grow the responder by more than this


@pytest.mark.parametrize("mode", ["never", "cookie"])
def test_legitimate_handshakes_survive_an_ike_sa_init_flood(lab: Lab, mode: str) -> None:
    scene = build_scene(lab, "petrel")
    baseline = Probe()
    stop = threading.Event()
    probe = Probe()
    probing = threading.Thread(
        target=probe_loop, args=(scene.responder_pid, scene.responder.vici, stop, probe, True)
    )
    probing.start()
    time.sleep(0.5)
    baseline.rss = list(probe.rss)
    out = lab.workdir / f"flood-{mode}.json"
    flooder = start_flooder(lab, lab.right.outer4, FLOOD_RATE, SECONDS, mode, out)
    time.sleep(1.0)  # the flood is on before the first legitimate handshake
    results = [ClientResult(name) for name, _vici in scene.clients]
    threads = [
        threading.Thread(target=handshake_loop, args=(name, vici, stop, result))
        for (name, vici), result in zip(scene.clients, results, strict=True)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    flooder.wait(SECONDS + 20)
    stop.set()
    for thread in threads:
        thread.join(60)
    legit_seconds = time.monotonic() - started
    probing.join(10)
    counts = flood_counts(out)
    stats = probe.last_stats
    summary = (
        f"flood {counts}; clients "
        + "; ".join(f"{r.name}: {len(r.latencies)}/{r.attempts} {r.failures[:3]}" for r in results)
        + f"; RSS {probe.rss[:1]}..{max(probe.rss, default=0)} KiB; stats failures "
        f"{probe.stats_failures[:3]}, slowest {max(probe.stats_times, default=0):.2f} s; "
        f"drops {stats.get('drops')}"
    )
    print(summary)
    attempts = sum(r.attempts for r in results)
    succeeded = sum(len(r.latencies) for r in results)
    assert counts.get("sent", 0) >= FLOOD_RATE * SECONDS * 0.8, summary
    if mode == "cookie":
        assert counts.get("cookie_replies", 0) > 0, summary
    # ≥ 10 times the legitimate IKE_SA_INIT rate (each handshake: at most two IKE_SA_INIT requests)
    assert counts["sent"] / SECONDS >= 10 * (2 * attempts / legit_seconds), summary
    assert all(r.attempts >= 5 for r in results), summary
    assert succeeded >= 0.99 * attempts, summary
    assert not probe.stats_failures, summary
    assert max(probe.stats_times) < 3.0, summary
    assert max(probe.rss) - min(baseline.rss or probe.rss) < RSS_GROWTH_KIB, summary
    if mode == "cookie":
        # Petrel solved the puzzles it was given (RFC 8019 §7.1.2); strongSwan, which knows
        # none, got in by returning the cookie alone (§7.1.1).
        petrel_client, swan_client = scene.client_peers
        assert "and a solved puzzle" in petrel_client.log_text(), summary
        swan_log = swan_client.log_text()
        assert "IKE_SA_INIT response 0 [ N(COOKIE) N((16434)) ]" in swan_log, summary
        assert "IKE_SA_INIT request 0 [ N(COOKIE) SA KE No" in swan_log, summary
