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

import pytest

from petrel.lab import Lab
from petrel.lab.dos import build_scene, run_round

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

FLOOD_RATE = 1000.0
SECONDS = 12.0
RSS_GROWTH_KIB = 32 * 1024  # the flood may not grow the responder by more than this


@pytest.mark.parametrize("mode", ["never", "cookie"])
def test_legitimate_handshakes_survive_an_ike_sa_init_flood(lab: Lab, mode: str) -> None:
    scene = build_scene(lab, "petrel")
    result = run_round(scene, mode, FLOOD_RATE, SECONDS)
    summary = result.summary()
    print(summary)
    counts, probe = result.flood, result.probe
    assert counts.get("sent", 0) >= FLOOD_RATE * SECONDS * 0.8, summary
    if mode == "cookie":
        assert counts.get("cookie_replies", 0) > 0, summary
    # at least 10 times the legitimate IKE_SA_INIT rate (two requests per handshake at most)
    legit_rate = 2 * result.attempts / result.legit_seconds
    assert counts["sent"] / SECONDS >= 10 * legit_rate, summary
    assert all(r.attempts >= 5 for r in result.clients), summary
    assert result.succeeded >= 0.99 * result.attempts, summary
    assert not probe.stats_failures and len(probe.stats_times) >= SECONDS, summary
    assert max(probe.stats_times) < 3.0, summary
    assert max(probe.rss) - result.baseline_rss < RSS_GROWTH_KIB, summary
    if mode == "cookie":
        # Petrel solved the puzzles it was given (RFC 8019 §7.1.2); strongSwan, which knows
        # none, got in by returning the cookie alone (§7.1.1).
        petrel_client, swan_client = scene.client_peers
        assert "and a solved puzzle" in petrel_client.log_text(), summary
        drops = probe.last_stats.get("drops", {}).get("ike", {})
        assert not [reason for reason in drops if "puzzle" in reason], summary
        swan_log = swan_client.log_text()
        assert "IKE_SA_INIT response 0 [ N(COOKIE) N((16434)) ]" in swan_log, summary
        assert "IKE_SA_INIT request 0 [ N(COOKIE) SA KE No" in swan_log, summary
