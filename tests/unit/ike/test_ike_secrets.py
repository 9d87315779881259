"""Key material (issue 9 §4): SK_* and Child SA keys live in buffers of their own that are
zeroed when their SA ends, and no key reaches a log line, even at level 2 (DEBUG)."""

from __future__ import annotations

import logging

import pytest
from ike_pair import LEFT, RIGHT, engines, established, of_type, pump, sent, the_sa

from petrel.crypto.secrets import zeroize
from petrel.ike import events as ev


def ike_keys(sa) -> list[bytearray]:  # type: ignore[no-untyped-def]
    k = sa.keys
    return [k.sk_d, k.sk_ai, k.sk_ar, k.sk_ei, k.sk_er, k.sk_pi, k.sk_pr]


def test_zeroize_overwrites_in_place_and_skips_bytes() -> None:
    buffer = bytearray(b"secret-key-material")
    view = memoryview(buffer)
    frozen = b"cannot be wiped"
    zeroize(buffer, frozen)
    assert view.tobytes() == bytes(19) and frozen == b"cannot be wiped"


@pytest.mark.parametrize("by_peer", [False, True])
def test_ike_sa_keys_zeroed_when_the_sa_is_deleted(by_peer: bool) -> None:
    left, right, _, _ = established()
    sas = [the_sa(left), the_sa(right)]
    keys = [key for sa in sas for key in ike_keys(sa)]
    assert all(isinstance(k, bytearray) for k in keys)
    assert all(any(k) for k in keys if k)  # SK_a* are empty with an AEAD
    deleter = right if by_peer else left
    assert deleter.terminate(the_sa(deleter).ike_id, 1.0)
    pump(left, right, now=1.0)
    assert left.ike_sas() == [] and right.ike_sas() == []
    assert all(not any(k) for k in keys)
    assert all(sa.sk_in is None and sa.sk_out is None for sa in sas)


def test_rekeyed_ike_sa_keys_zeroed_and_the_new_ones_kept() -> None:
    left, right, _, _ = established()
    old = the_sa(left)
    old_keys = ike_keys(old)
    assert left.rekey_ike(old.ike_id, 1.0)
    pump(left, right, now=1.0)
    new = the_sa(left)
    assert new is not old
    assert all(not any(k) for k in old_keys)
    assert any(new.keys.sk_d)  # type: ignore[union-attr]


def test_half_open_sa_keys_zeroed_on_timeout() -> None:
    left, right, _, _ = established()
    del left
    # A second initiator that never sends IKE_AUTH.
    lonely, _ = engines()
    lonely.initiate("c", "net", LEFT, RIGHT, 0.0)
    for d in sent(lonely):
        right.receive(d, RIGHT, LEFT, 0.0)
    half = [sa for sa in right.ike_sas() if sa.state.label == "CONNECTING"]
    (sa,) = half
    keys = ike_keys(sa)
    right.handle_timer(right.settings.half_open_timeout + 1.0)
    assert sa not in right.ike_sas()
    assert all(not any(k) for k in keys)


def test_child_sa_keys_handed_over_in_their_own_buffers() -> None:
    _left, _right, l_events, r_events = established()
    (l_up,) = of_type(l_events, ev.ChildSaUp)
    (r_up,) = of_type(r_events, ev.ChildSaUp)
    for keys in (l_up.inbound, l_up.outbound, r_up.inbound, r_up.outbound):
        assert isinstance(keys.encr_key, bytearray)
    # Separate buffers: wiping one direction leaves the other, and the peer's, intact.
    l_up.inbound.wipe()
    assert not any(l_up.inbound.encr_key)
    assert any(l_up.outbound.encr_key) and any(r_up.outbound.encr_key)


def _forms(secret: bytes) -> set[str]:
    return {secret.hex(), secret.hex().upper(), repr(secret)[2:-1]}


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes128-sha256-modp2048"])
def test_no_key_material_in_debug_logs(esp: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    kw = {"esp": esp, "proposals": "aes128-sha256-prfsha256-x25519"}
    left, right, l_events, _ = established(left_kw=kw, right_kw=kw)
    secrets = [bytes(k) for sa in (the_sa(left), the_sa(right)) for k in ike_keys(sa) if k]
    for up in of_type(l_events, ev.ChildSaUp):
        for keys in (up.inbound, up.outbound):
            secrets += [bytes(k) for k in (keys.encr_key, keys.integ_key) if k]
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 1.0)
    pump(left, right, now=1.0)
    for up in of_type(left.take_events(), ev.ChildSaUp):
        secrets += [bytes(up.inbound.encr_key), bytes(up.outbound.encr_key)]
    assert left.terminate(the_sa(left).ike_id, 2.0)
    pump(left, right, now=2.0)
    assert len(secrets) >= 12
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "IKE_AUTH" in text  # level 2 did log every message
    for secret in secrets:
        assert not [form for form in _forms(secret) if form in text]
