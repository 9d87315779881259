"""No key material in Petrel's log at its most verbose level, text or JSON lines: two engines
negotiate, rekey the IKE SA and the Child SA in memory, and no SK_*, ESP key or the PSK shows up
in any form (the e2e counterpart is tests/e2e/test_no_keys_in_logs.py)."""

from __future__ import annotations

import base64
import io

import pytest
from test_ike_engine import engines, pump

from petrel import logsetup
from petrel.ike import events as ev


def _capture(spec: str, fmt: str) -> io.StringIO:
    stream = io.StringIO()
    logsetup.setup_logging(spec, fmt, stream)
    return stream


def _forms(secret: bytes) -> set[str]:
    return {
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    }


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_key_material_at_level_4(fmt: str) -> None:
    out = _capture("4", fmt)
    left, right = engines(right_kw={"esp": "aes128-sha256"}, left_kw={"esp": "aes128-sha256"})
    secrets: list[bytes] = [base64.b64decode("dGVzdHRlc3R0ZXN0dGVzdA==")]
    events: list[ev.Event] = []

    def collect() -> None:
        events.extend(left.take_events() + right.take_events())
        for engine in (left, right):
            for sa in engine.ike_sas():
                assert sa.keys is not None
                keys = sa.keys
                # Copies: the key buffers are zeroed when their SA ends (a rekey here).
                own = (keys.sk_d, keys.sk_ei, keys.sk_er, keys.sk_ai, keys.sk_ar)
                secrets.extend(bytes(k) for k in (*own, keys.sk_pi, keys.sk_pr))

    left.initiate("c", "net", ("192.0.2.1", 500), ("192.0.2.2", 500), 0.0)
    pump(left, right)
    collect()
    for sa in left.ike_sas():
        left.rekey_ike(sa.ike_id, 1.0)
    pump(left, right, now=1.0)
    collect()
    for sa, child in left.child_sas():
        left.rekey_child(sa.ike_id, child.child_id, 2.0)
    pump(left, right, now=2.0)
    collect()
    ups = [e for e in events if isinstance(e, ev.ChildSaUp)]
    assert len(ups) >= 4 and any(isinstance(e, ev.IkeSaRekeyed) for e in events)
    for up in ups:
        for direction in (up.inbound, up.outbound):
            secrets.extend([bytes(direction.encr_key), bytes(direction.integ_key)])
    secrets = list({s for s in secrets if s})
    assert len(secrets) >= 15  # PSK, 5 keys of 2 IKE SAs, 4 of 2 Child SAs
    text = out.getvalue()
    assert "IKE_AUTH" in text and "CREATE_CHILD_SA" in text  # the exchanges were logged
    for secret in secrets:
        assert not [f for f in _forms(secret) if f in text], f"{len(secret)}-octet key logged"
