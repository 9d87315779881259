"""Randomness is injected into the core: engines and ESP SAs fed the same seeded source produce
the same octets, run after run (SPIs, nonces, KE values, SK and ESP IVs, jitter)."""

from __future__ import annotations

import random

import pytest
from test_ike_engine import LEFT, RIGHT, conf, pump

from petrel.config.swanctl import parse_swanctl
from petrel.crypto.encr import encr_spec
from petrel.crypto.integ import integ_spec
from petrel.crypto.ke import SeededKeyExchanges, supported_groups
from petrel.esp.sa import OutboundSa
from petrel.ike.engine import IkeEngine
from petrel.wire.registry import EncrId, IntegId

IKE_PROPOSALS = ["aes128-sha256-modp2048", "aes256-sha384-ecp384", "aes128gcm16-prfsha256-x25519"]


def _engine(seed: int, me: str, peer: str, ids: tuple[str, str], ts: tuple[str, str], p: str):
    cfg = parse_swanctl(
        conf(me, peer, ids[0], ids[1], ts[0], ts[1], proposals=p, esp="aes128-sha256-modp2048")
    )
    rng = random.Random(seed).randbytes
    return IkeEngine(
        cfg.connections, cfg.secrets, random=rng, key_exchanges=SeededKeyExchanges(rng)
    )


def _session(proposals: str) -> list[bytes]:
    """Every datagram of IKE_SA_INIT, IKE_AUTH, a Child SA rekey with PFS, an IKE SA rekey and
    the deletes, between two engines seeded 1 and 2."""
    ts = ("198.51.100.1/32", "203.0.113.1/32")
    left = _engine(1, "192.0.2.1", "192.0.2.2", ("left", "right"), ts, proposals)
    right = _engine(2, "192.0.2.2", "192.0.2.1", ("right", "left"), ts[::-1], proposals)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    wire = pump(left, right, 0.0)
    sa, child = left.child_sas()[0]
    assert left.rekey_child(sa.ike_id, child.child_id, 1.0)
    wire += pump(left, right, 1.0)
    assert left.rekey_ike(sa.ike_id, 2.0)
    wire += pump(left, right, 2.0)
    left.terminate(left.ike_sas()[0].ike_id, 3.0)
    wire += pump(left, right, 3.0)
    assert not left.ike_sas() and not right.ike_sas()
    return wire


@pytest.mark.parametrize("proposals", IKE_PROPOSALS)
def test_seeded_engines_repeat_every_octet(proposals: str) -> None:
    first, second = _session(proposals), _session(proposals)
    assert len(first) >= 8
    assert first == second


def test_the_default_sources_are_not_repeatable() -> None:
    """Without injection, SPIs, nonces, KE values and IVs are fresh: two runs differ."""
    cfg = parse_swanctl(
        conf("192.0.2.1", "192.0.2.2", "l", "r", "198.51.100.1/32", "203.0.113.1/32")
    )
    runs = []
    for _ in range(2):
        engine = IkeEngine(cfg.connections, cfg.secrets)
        engine.initiate("c", "net", LEFT, RIGHT, 0.0)
        runs.append(engine.take_datagrams()[0].data)
    assert runs[0] != runs[1]


@pytest.mark.parametrize("group", sorted(supported_groups()))
def test_seeded_key_exchanges_agree_and_repeat(group: int) -> None:
    def run() -> tuple[bytes, bytes, bytes]:
        initiator = SeededKeyExchanges(random.Random(7).randbytes).new(group)
        public, secret = SeededKeyExchanges(random.Random(8).randbytes).respond(
            group, initiator.public_value()
        )
        assert initiator.shared_secret(public) == secret
        return initiator.public_value(), public, secret

    first, second = run(), run()
    assert first[0] == second[0]  # the initiator's value always repeats
    if group < 35:  # ML-KEM encapsulation draws randomness inside the library
        assert first == second


def test_esp_cbc_ivs_come_from_the_injected_source() -> None:
    def packets(seed: int) -> list[bytes]:
        sa = OutboundSa(
            0x1000,
            encr_spec(EncrId.AES_CBC, 128),
            bytes(16),
            integ_spec(IntegId.HMAC_SHA2_256_128),
            bytes(32),
            esn=False,
            random=random.Random(seed).randbytes,
        )
        inner = bytes.fromhex("4500001c000000004001f8d7c6336401cb00710108004d5b00010001")
        return [sa.encapsulate(inner) for _ in range(3)]

    assert packets(3) == packets(3)
    assert packets(3) != packets(4)
    assert len({p[8:24] for p in packets(3)}) == 3  # a fresh IV per packet
