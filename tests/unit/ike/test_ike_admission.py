"""IKE_SA_INIT admission under load (RFC 7296 §2.6, RFC 8019 §7.1), time injected: cookies
with rotating versioned secrets, half-open limits per host and global, temporary blocks,
client puzzles both ways, and the bounded pre-decode scan."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.config.swanctl import parse_swanctl
from petrel.ike import events as ev
from petrel.ike.admission import (
    DROP_AGGRESSIVE,
    DROP_BLOCKED,
    DROP_COOKIE,
    DROP_JOB_LOAD,
    DROP_LIMIT,
    DROP_MALFORMED,
    DROP_PUZZLE,
    DROP_RATE,
    DROP_STALE,
    DROP_UNSOLVED,
    scan_init,
)
from petrel.ike.cookies import COOKIE_SIZE, CookieJar
from petrel.ike.engine import EngineSettings, IkeEngine
from petrel.ike.puzzle import difficulty_for, solve, verify, zero_bits
from petrel.lab.flood import cookie_of, request_template, with_cookie
from petrel.wire.codec import decode_message
from petrel.wire.registry import NotifyType, PrfId

RIGHT = ("192.0.2.2", 500)
RIGHT6 = ("2001:db8::2", 500)
LEFT = ("192.0.2.1", 500)
NONCE, HOST, SPI = bytes(range(32)), bytes([192, 0, 2, 1]), bytes(range(8))

CONF = """
connections {
  c {
    local_addrs = %s
    remote_addrs = %s
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = %s
    }
    remote {
      auth = psk
      id = %s
    }
    children {
      net {
        local_ts = %s
        remote_ts = %s
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  ike-1 {
    id-1 = left
    id-2 = right
    secret = 0sdGVzdHRlc3R0ZXN0dGVzdA==
  }
}
"""


def responder(**settings: object) -> IkeEngine:
    cfg = parse_swanctl(CONF % ("%any", "%any", "right", "left", "203.0.113.1/32", "0.0.0.0/0"))
    return IkeEngine(cfg.connections, cfg.secrets, EngineSettings(**settings))  # type: ignore[arg-type]


def initiator(**settings: object) -> IkeEngine:
    cfg = parse_swanctl(
        CONF % ("192.0.2.1", "192.0.2.2", "left", "right", "198.51.100.1/32", "203.0.113.1/32")
    )
    return IkeEngine(cfg.connections, cfg.secrets, EngineSettings(**settings))  # type: ignore[arg-type]


def strip(data: bytes) -> bytes:
    return data[4:] if data[:4] == bytes(4) else data


def flood_request(engine: IkeEngine, host: str, port: int = 500, now: float = 0.0) -> bytes:
    """One IKE_SA_INIT from ``host``; returns the reply (b"" if none)."""
    data = bytearray(request_template())
    data[0:8] = os.urandom(8)
    engine.receive(bytes(data), RIGHT6 if ":" in host else RIGHT, (host, port), now)
    replies = engine.take_datagrams()
    return strip(replies[0].data) if replies else b""


def half_open(engine: IkeEngine) -> int:
    return sum(1 for sa in engine.ike_sas() if sa.established_at is None)


def pump(a: IkeEngine, b: IkeEngine, now: float = 0.0) -> list[bytes]:
    seen = []
    for _ in range(20):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for d in src.take_datagrams():
                moved = True
                seen.append(strip(d.data))
                dst.receive(strip(d.data), d.remote, d.local, now)
        if not moved:
            break
    return seen


# ------------------------------------------------------------------ cookies (§2.6)


def test_cookie_is_versioned_and_bound_to_nonce_address_and_spi() -> None:
    jar = CookieJar(os.urandom, lifetime=20, rotate=60)
    cookie = jar.make(100.0, NONCE, HOST, SPI, difficulty=9)
    assert len(cookie) == COOKIE_SIZE and cookie[0] == jar.version
    assert jar.check(cookie, 101.0, NONCE, HOST, SPI) == 9
    assert jar.check(cookie, 101.0, NONCE[:-1] + b"x", HOST, SPI) is None
    assert jar.check(cookie, 101.0, NONCE, bytes([192, 0, 2, 9]), SPI) is None
    assert jar.check(cookie, 101.0, NONCE, HOST, bytes(8)) is None
    forged = bytearray(cookie)
    forged[5] = 0  # a lower difficulty claimed
    assert jar.check(bytes(forged), 101.0, NONCE, HOST, SPI) is None
    assert jar.check(cookie[:-1], 101.0, NONCE, HOST, SPI) is None


def test_cookie_of_previous_secret_valid_until_its_lifetime_ends() -> None:
    jar = CookieJar(os.urandom, lifetime=20, rotate=60)
    jar.make(0.0, NONCE, HOST, SPI)  # the first secret's clock starts
    old = jar.make(55.0, NONCE, HOST, SPI)
    fresh = jar.make(61.0, NONCE, HOST, SPI)  # rotated: version 1
    assert old[0] == 0 and fresh[0] == 1
    assert jar.check(old, 70.0, NONCE, HOST, SPI) == 0  # previous secret, 15 s old
    assert jar.check(old, 76.0, NONCE, HOST, SPI) is None  # past its lifetime
    assert jar.check(fresh, 80.0, NONCE, HOST, SPI) == 0
    jar.make(125.0, NONCE, HOST, SPI)  # rotated again: version 0's secret is retired
    replay = bytearray(old)
    replay[1:5] = (125).to_bytes(4, "big")  # a fresh time does not revive it (tag covers it)
    assert jar.check(bytes(replay), 125.0, NONCE, HOST, SPI) is None


# ------------------------------------------------------------------ puzzles (RFC 8019)


@pytest.mark.parametrize("prf", [PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA1, PrfId.AES128_XCBC])
def test_puzzle_solution_verifies_and_tampering_fails(prf: PrfId) -> None:
    cookie = os.urandom(22)
    solution = solve(prf, cookie, 6, os.urandom)
    assert verify(prf, cookie, 6, solution)
    size = len(solution) // 4
    keys = [solution[i * size : (i + 1) * size] for i in range(4)]
    assert verify(prf, cookie, 6, b"".join([keys[0]] * 4)) is False  # keys must differ
    assert verify(prf, cookie, 6, solution[:-1]) is False


def test_zero_bits_and_difficulty_adapts_to_load() -> None:
    assert zero_bits(b"\x01\x00") == 8 and zero_bits(b"\x80") == 7 and zero_bits(b"\x00") == 8
    levels = [difficulty_for(n, 10, 8, 12) for n in (10, 19, 20, 40, 80, 10_000)]
    assert levels == [8, 8, 9, 10, 11, 12]
    assert difficulty_for(10_000, 10, 0, 12) == 0


def test_petrel_initiator_solves_the_puzzle_and_connects() -> None:
    right = responder(cookie_threshold=1, puzzle_difficulty=6)
    flood_request(right, "192.0.2.77")  # one half-open SA: cookies are on
    left = initiator()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    crossed = pump(left, right)
    first = decode_message(crossed[1])
    kinds = [n.notify_type for n in first.notifies()]
    assert kinds == [NotifyType.COOKIE, NotifyType.PUZZLE]
    retry = decode_message(crossed[2])
    assert [getattr(p, "type_value", None) for p in retry.payloads[:2]] == [None, 54]
    assert any(isinstance(e, ev.ChildSaUp) for e in left.take_events())


def test_initiator_ignoring_puzzles_gets_in_with_the_cookie_alone() -> None:
    right = responder(cookie_threshold=1, puzzle_difficulty=6)
    flood_request(right, "192.0.2.77")
    left = initiator(puzzle_max_solve=0)  # as strongSwan: knows no puzzles (§7.1.2)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    assert any(isinstance(e, ev.ChildSaUp) for e in left.take_events())


def with_solution(request: bytes, cookie: bytes, solution: bytes) -> bytes:
    """``request`` with N(COOKIE) first, then a Puzzle Solution payload (RFC 8019 §7.1.2)."""
    with_c = with_cookie(request, cookie)
    cut = 28 + 8 + len(cookie)
    head = bytearray(with_c[:cut])
    ps = bytes([head[28], 0]) + (4 + len(solution)).to_bytes(2, "big") + solution
    head[28] = 54  # the COOKIE notify is followed by PS
    message = bytes(head) + ps + with_c[cut:]
    return message[:24] + len(message).to_bytes(4, "big") + message[28:]


def test_unsolved_refused_near_the_limit_solved_admitted_up_to_it() -> None:
    right = responder(cookie_threshold=3, init_limit_half_open=4, puzzle_difficulty=6)
    for host in ("192.0.2.71", "192.0.2.72", "192.0.2.73"):
        flood_request(right, host)
    request = bytearray(request_template())
    request[0:8] = os.urandom(8)
    right.receive(bytes(request), RIGHT, ("192.0.2.74", 500), 1.0)
    reply = decode_message(strip(right.take_datagrams()[0].data))
    cookie, puzzle = (n.data for n in reply.notifies())
    prf, difficulty = int.from_bytes(puzzle[:2], "big"), puzzle[2]
    assert (prf, difficulty) == (int(PrfId.HMAC_SHA2_256), 6)
    # the cookie alone at 3 of 4 half-open SAs (three quarters of the limit): refused
    right.receive(with_cookie(bytes(request), cookie), RIGHT, ("192.0.2.74", 500), 1.0)
    assert right.drops.counts[DROP_UNSOLVED] == 1 and half_open(right) == 3
    solved = with_solution(bytes(request), cookie, solve(prf, cookie, difficulty, os.urandom))
    right.receive(solved, RIGHT, ("192.0.2.74", 500), 1.5)
    assert half_open(right) == 4


# ------------------------------------------------------------------ limits and blocks


def test_cookies_demanded_past_threshold_before_any_key_exchange() -> None:
    right = responder(cookie_threshold=2, puzzle_difficulty=0)
    flood_request(right, "192.0.2.71")
    flood_request(right, "192.0.2.72")
    reply = flood_request(right, "192.0.2.73")
    assert cookie_of(reply) is not None and half_open(right) == 2
    assert right.drops.counts[DROP_COOKIE] == 1
    # the cookie returned: admitted, a third half-open SA
    request = bytearray(request_template())
    request[0:8] = os.urandom(8)
    right.receive(bytes(request), RIGHT, ("192.0.2.73", 500), 0.0)
    cookie = cookie_of(strip(right.take_datagrams()[0].data))
    assert cookie is not None
    right.receive(with_cookie(bytes(request), cookie), RIGHT, ("192.0.2.73", 500), 1.0)
    assert half_open(right) == 3
    right.take_datagrams()
    # a cookie for another SPI, or one past its lifetime, is refused with a new cookie
    other = bytearray(request_template())
    other[0:8] = os.urandom(8)
    right.receive(with_cookie(bytes(other), cookie), RIGHT, ("192.0.2.73", 500), 1.0)
    right.receive(with_cookie(bytes(request), cookie), RIGHT, ("192.0.2.73", 501), 40.0)
    assert right.drops.counts[DROP_STALE] == 2
    assert all(cookie_of(strip(d.data)) for d in right.take_datagrams())


def test_cookie_calm_down_keeps_cookies_on_for_ten_seconds() -> None:
    right = responder(cookie_threshold=1, puzzle_difficulty=0, half_open_timeout=5)
    flood_request(right, "192.0.2.71", now=0.0)
    assert cookie_of(flood_request(right, "192.0.2.72", now=1.0)) is not None
    right.handle_timer(6.0)  # the half-open SA is gone
    assert half_open(right) == 0
    assert cookie_of(flood_request(right, "192.0.2.72", now=8.0)) is not None
    assert cookie_of(flood_request(right, "192.0.2.72", now=12.0)) is None  # admitted


def test_block_threshold_per_host_and_global_half_open_limit() -> None:
    right = responder(cookie_threshold=0, block_threshold=3, init_limit_half_open=5)
    for port in (1, 2, 3, 4):
        flood_request(right, "192.0.2.71", port)
    assert half_open(right) == 3 and right.drops.counts[DROP_AGGRESSIVE] == 1
    flood_request(right, "192.0.2.72")
    flood_request(right, "192.0.2.73")
    assert flood_request(right, "192.0.2.74") == b""
    assert half_open(right) == 5 and right.drops.counts[DROP_LIMIT] == 1


def test_ipv6_sources_count_per_64_for_block_threshold() -> None:
    right = responder(cookie_threshold=0, block_threshold=3)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"):
        assert flood_request(right, host) != b""
    assert flood_request(right, "2001:db8:1:2:aaaa::1") == b""  # a fourth address of that /64
    assert right.drops.counts[DROP_AGGRESSIVE] == 1
    assert flood_request(right, "2001:db8:1:3::1") != b""  # the next /64 is another source
    assert flood_request(right, "192.0.2.71") != b""


def test_ipv6_source_prefix_128_counts_each_address_as_charon() -> None:
    right = responder(cookie_threshold=0, block_threshold=1, ipv6_source_prefix=128)
    assert all(flood_request(right, f"2001:db8:1:2::{n}") != b"" for n in range(1, 6))
    assert flood_request(right, "2001:db8:1:2::1", 501) == b""  # same address, another port
    assert right.drops.counts[DROP_AGGRESSIVE] == 1


def test_ipv6_block_and_rate_apply_to_the_whole_64() -> None:
    right = responder(cookie_threshold=0, block_threshold=2, block_time=60, half_open_timeout=30)
    flood_request(right, "2001:db8:1:2::1", now=0.0)
    flood_request(right, "2001:db8:1:2::2", now=0.0)
    right.handle_timer(31.0)  # both time out: two strikes against 2001:db8:1:2::/64
    assert flood_request(right, "2001:db8:1:2:9::9", now=32.0) == b""
    assert right.drops.counts[DROP_BLOCKED] == 1
    assert flood_request(right, "2001:db8:1:3::1", now=32.0) != b""
    loaded = responder(cookie_threshold=1, init_rate_per_host=1, puzzle_difficulty=0)
    flood_request(loaded, "192.0.2.99")  # one half-open SA: cookies on from here
    replies = [flood_request(loaded, f"2001:db8:5:6::{n}") for n in range(1, 6)]
    assert sum(1 for r in replies if r) == 2  # a burst of twice the rate, then dropped
    assert loaded.drops.counts[DROP_RATE] == 3


def test_host_whose_half_open_sas_keep_timing_out_is_blocked_for_block_time() -> None:
    right = responder(cookie_threshold=0, block_threshold=2, block_time=60, half_open_timeout=30)
    flood_request(right, "192.0.2.71", 1, now=0.0)
    flood_request(right, "192.0.2.71", 2, now=0.0)
    right.handle_timer(31.0)  # both time out: two strikes
    assert half_open(right) == 0
    assert flood_request(right, "192.0.2.71", 3, now=32.0) == b""
    assert right.drops.counts[DROP_BLOCKED] == 1
    assert flood_request(right, "192.0.2.72", now=32.0) != b""  # others are unaffected
    assert flood_request(right, "192.0.2.71", 4, now=92.0) != b""  # the block expired


def test_retransmitted_request_of_a_half_open_sa_is_answered_from_the_cache() -> None:
    right = responder(cookie_threshold=0, block_threshold=1)
    request = bytearray(request_template())
    request[0:8] = os.urandom(8)
    right.receive(bytes(request), RIGHT, ("192.0.2.71", 500), 0.0)
    first = right.take_datagrams()
    right.receive(bytes(request), RIGHT, ("192.0.2.71", 500), 1.0)
    again = right.take_datagrams()
    assert [d.data for d in again] == [d.data for d in first]
    assert right.drops.counts[DROP_AGGRESSIVE] == 0


def test_scan_never_raises_on_hostile_bytes() -> None:
    template = with_cookie(request_template(), bytes(22))
    scan = scan_init(template)
    assert scan is not None and scan.cookie == bytes(22) and scan.prfs == [int(PrfId.HMAC_SHA2_256)]
    for cut in range(len(template)):
        scan_init(template[:cut])
        broken = bytearray(template)
        broken[cut] ^= 0xFF
        scan_init(bytes(broken))
    for _ in range(2000):
        scan_init(template[:28] + os.urandom(len(template) - 28))


def test_wrong_puzzle_solution_is_dropped() -> None:
    right = responder(cookie_threshold=1, puzzle_difficulty=12)
    flood_request(right, "192.0.2.71")
    request = bytearray(request_template())
    request[0:8] = os.urandom(8)
    right.receive(bytes(request), RIGHT, ("192.0.2.72", 500), 0.0)
    cookie = cookie_of(strip(right.take_datagrams()[0].data))
    assert cookie is not None
    keys = b"".join(bytes([i]) * 8 for i in range(4))  # four keys, almost surely no solution
    right.receive(with_solution(bytes(request), cookie, keys), RIGHT, ("192.0.2.72", 500), 0.5)
    assert right.drops.counts[DROP_PUZZLE] == 1 and half_open(right) == 1


def test_init_limit_job_load_drops_while_the_backlog_is_long() -> None:
    right = responder(cookie_threshold=0, init_limit_job_load=8)
    right.admission.backlog = 9
    assert flood_request(right, "192.0.2.71") == b""
    assert right.drops.counts[DROP_JOB_LOAD] == 1
    right.admission.backlog = 8
    assert flood_request(right, "192.0.2.71") != b""


def test_daemon_reads_the_knobs_from_strongswan_conf(tmp_path, monkeypatch) -> None:
    from petrel.daemon import DaemonOptions, with_strongswan_conf

    conf = tmp_path / "strongswan.conf"
    conf.write_text("charon {\n  block_threshold = 2\n}\npetrel {\n  puzzle_difficulty = 0\n}\n")
    monkeypatch.setenv("STRONGSWAN_CONF", str(conf))
    engine = with_strongswan_conf(DaemonOptions()).engine
    assert (engine.block_threshold, engine.puzzle_difficulty, engine.cookie_threshold) == (2, 0, 10)
    monkeypatch.delenv("STRONGSWAN_CONF")
    assert with_strongswan_conf(DaemonOptions()).engine == EngineSettings()


@pytest.mark.parametrize(("prf", "difficulty"), [(None, 0), (5, 0), (5, 11)])
def test_packed_cookie_reply_equals_the_encoders(prf: int | None, difficulty: int) -> None:
    from petrel.ike.admission import cookie_reply
    from petrel.ike.protect import build_plain
    from petrel.ike.puzzle import puzzle_notify
    from petrel.wire.payloads import FLAG_RESPONSE, IkeHeader, Notify
    from petrel.wire.registry import ExchangeType

    cookie = os.urandom(22)
    notifies = [Notify(NotifyType.COOKIE, cookie)]
    if prf is not None and difficulty:
        notifies.append(puzzle_notify(prf, difficulty))
    header = IkeHeader(SPI, bytes(8), 0, ExchangeType.IKE_SA_INIT, 0, FLAG_RESPONSE)
    assert cookie_reply(SPI, cookie, prf, difficulty) == build_plain(header, notifies)


def test_cookie_jar_survives_pickling_with_both_secrets() -> None:
    import pickle

    jar = CookieJar(os.urandom, lifetime=20, rotate=60)
    jar.make(0.0, NONCE, HOST, SPI)
    old = jar.make(55.0, NONCE, HOST, SPI)
    fresh = jar.make(61.0, NONCE, HOST, SPI)
    copy = pickle.loads(pickle.dumps(jar))
    assert copy.check(old, 70.0, NONCE, HOST, SPI) == 0
    assert copy.check(fresh, 70.0, NONCE, HOST, SPI) == 0


def test_per_host_rate_under_load_drops_the_surplus_before_any_work() -> None:
    right = responder(cookie_threshold=1, init_rate_per_host=5, puzzle_difficulty=0)
    flood_request(right, "192.0.2.70")
    replies = [flood_request(right, "192.0.2.71", now=1.0) for _ in range(15)]
    assert sum(1 for r in replies if cookie_of(r)) == 10  # a burst of twice the rate
    assert right.drops.counts[DROP_RATE] == 5
    assert cookie_of(flood_request(right, "192.0.2.72", now=1.0))  # other hosts unaffected
    assert cookie_of(flood_request(right, "192.0.2.71", now=1.25))  # a token per 0.2 s
    assert flood_request(right, "192.0.2.71", now=1.25) == b""


def test_malformed_request_under_load_is_dropped_unanswered() -> None:
    right = responder(cookie_threshold=1)
    flood_request(right, "192.0.2.70")
    request = bytearray(request_template())
    request[0:8] = os.urandom(8)
    right.receive(bytes(request[:-4]), RIGHT, ("192.0.2.71", 500), 1.0)  # length field lies
    assert right.take_datagrams() == [] and right.drops.counts[DROP_MALFORMED] == 1


@given(st.binary(max_size=400), st.integers(0, 3))
@settings(max_examples=300, deadline=None)
def test_hostile_requests_under_load_never_raise_nor_open_sas(body: bytes, variant: int) -> None:
    """Under load no datagram, however built, gets past the gate without a valid cookie."""
    right = responder(cookie_threshold=1, block_threshold=0)
    flood_request(right, "192.0.2.70")
    template = bytearray(request_template())
    template[0:8] = bytes(range(1, 9))
    data = bytes(template[:28]) + body
    if variant == 1:  # a consistent length field
        data = data[:24] + len(data).to_bytes(4, "big") + data[28:]
    elif variant == 2:  # a real request with a forged cookie
        data = with_cookie(bytes(template), body[:64] or b"\0")
    elif variant == 3:  # a real request, tail mutated
        data = bytes(template[: len(template) - len(body[:40])]) + body[:40]
    right.receive(data, RIGHT, ("192.0.2.71", 500), 1.0)
    assert half_open(right) == 1


def test_timers_see_half_open_sas_in_bulk_and_established_ones_alike() -> None:
    right = responder(cookie_threshold=0, block_threshold=0)
    left = initiator()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    (established,) = [sa for sa in right.ike_sas() if sa.established_at is not None]
    own = min(established.timers.values())
    for port in range(50):
        flood_request(right, "192.0.2.71", 1000 + port, now=10.0 + port)
    assert half_open(right) == 50 and right.next_timer() == min(own, 40.0)
    right.handle_timer(44.5)  # the first five half-open SAs time out, nothing else
    assert half_open(right) == 45 and established in right.ike_sas()
    assert right.next_timer() == min(own, 45.0)
    right.handle_timer(100.0)
    assert half_open(right) == 0 and right.next_timer() == own
