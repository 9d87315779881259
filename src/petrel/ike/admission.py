"""Admission of IKE_SA_INIT requests before any key exchange (RFC 7296 §2.6, RFC 8019 §4).

Every IKE_SA_INIT request passes :meth:`Admission.screen` before it is decoded, so a flood
costs a few dictionary lookups, a bounded scan of the payload chain and one HMAC per
datagram; no Diffie-Hellman and no IKE SA until the request carries a valid COOKIE (and,
when one was asked, a puzzle solution). In order, with strongSwan's setting names:

1. a retransmission of a half-open SA's request passes (it is answered from the cache);
2. a host blocked for abuse is dropped (``block_time``: its half-open SAs timed out
   ``block_threshold`` times in a row without one completing);
3. a host holding ``block_threshold`` half-open SAs is dropped (charon's "peer too
   aggressive");
4. at ``init_limit_half_open`` half-open SAs every new request is dropped, and so is one
   read while more than ``init_limit_job_load`` datagrams wait behind it (``backlog``, set
   by the host: Petrel's nearest thing to charon's queued jobs);
5. under load (cookies demanded, below) a host may send ``init_rate_per_host`` requests a
   second (bursts of twice that): a flood's surplus costs no scan, no HMAC and no reply;
6. under load a request whose payload chain does not parse is dropped unanswered;
7. from ``cookie_threshold`` half-open SAs on (and for 10 s after, charon's calm-down, so
   that retransmissions see one behaviour) a request needs a valid COOKIE, else it is
   answered with one — with a PUZZLE (RFC 8019 §7.1.1) when puzzles are on. A request with a
   valid cookie but no solution (an initiator that knows no puzzles, §7.1.2) is still
   admitted below three quarters of ``init_limit_half_open``; a solved one up to the limit;
   a wrong solution is dropped.

A "host" above is a source (:mod:`petrel.ike.sources`): an IPv4 address, or an IPv6 /64
(``ipv6_source_prefix``), since one IPv6 customer can send from any address of its /64.

Every refusal is counted by reason in the engine's drop log.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..crypto.errors import UnsupportedAlgorithm
from ..crypto.prf import prf_spec
from ..wire.payloads import FLAG_RESPONSE, IkeHeader, Notify
from ..wire.registry import ExchangeType, NotifyType, PayloadType
from . import events as ev
from .cookies import CookieJar
from .puzzle import PS_PAYLOAD, difficulty_for, puzzle_notify, verify
from .services import ZERO_SPI, EngineSettings, IkeServices, trace

COOKIE_CALMDOWN = 10.0  # seconds cookies stay demanded after the load fell (as charon)
MAX_TRACKED_HOSTS = 4096  # bound on the per-host abuse records
MAX_PAYLOADS = 64
_U16 = struct.Struct(">H")
_INIT = int(ExchangeType.IKE_SA_INIT)
_PRF = 2  # Transform Type 2 (RFC 7296 §3.3.2)
_HEADER = struct.Struct(">8s8sBBBBII")  # RFC 7296 §3.1
_NOTIFY = struct.Struct(">BBHBBH")  # generic payload header, protocol, SPI size, type (§3.10)
_PUZZLE_DATA = struct.Struct(">HB")
_NOTIFY_TYPE = int(PayloadType.NOTIFY)
_COOKIE = int(NotifyType.COOKIE)
_PUZZLE = int(NotifyType.PUZZLE)
log = logging.getLogger("petrel.ike")

DROP_BLOCKED = "IKE_SA_INIT from a blocked host"
DROP_AGGRESSIVE = "IKE_SA_INIT from a host at block_threshold half-open SAs"
DROP_LIMIT = "IKE_SA_INIT over init_limit_half_open"
DROP_JOB_LOAD = "IKE_SA_INIT over init_limit_job_load"
DROP_RATE = "IKE_SA_INIT over init_rate_per_host under load"
DROP_MALFORMED = "malformed IKE_SA_INIT under load"
DROP_COOKIE = "IKE_SA_INIT without a valid COOKIE (COOKIE sent)"
DROP_STALE = "IKE_SA_INIT with a forged or expired COOKIE (new COOKIE sent)"
DROP_PUZZLE = "IKE_SA_INIT with a wrong puzzle solution"
DROP_UNSOLVED = "IKE_SA_INIT without a puzzle solution under load"


@dataclass
class InitScan:
    """What admission needs of an IKE_SA_INIT request, read without decoding it."""

    spi_i: bytes
    nonce: bytes | None = None
    cookie: bytes | None = None  # a COOKIE notify that is the first payload (§2.6)
    solution: bytes | None = None  # a Puzzle Solution payload (RFC 8019 §8.2)
    prfs: list[int] = field(default_factory=list)


def is_init_request(data: bytes) -> bool:
    return len(data) >= 28 and data[18] == _INIT and not data[19] & FLAG_RESPONSE


def scan_init(data: bytes) -> InitScan | None:
    """The generic payload chain of an IKE_SA_INIT request, bounds-checked; None when it is
    malformed (the full decoder then answers it as RFC 7296 §2.5 says)."""
    n = len(data)
    if n < 28 or struct.unpack_from(">I", data, 24)[0] != n:
        return None
    scan = InitScan(bytes(data[0:8]))
    next_type, offset = data[16], 28
    for index in range(MAX_PAYLOADS):
        if next_type == 0:
            return scan
        if offset + 4 > n:
            return None
        length = _U16.unpack_from(data, offset + 2)[0]
        if length < 4 or offset + length > n:
            return None
        body = data[offset + 4 : offset + length]
        if next_type == PayloadType.NONCE:
            scan.nonce = bytes(body)
        elif next_type == PayloadType.NOTIFY and index == 0 and len(body) >= 4:
            if body[1] == 0 and _U16.unpack_from(body, 2)[0] == NotifyType.COOKIE:
                scan.cookie = bytes(body[4:])
        elif next_type == PS_PAYLOAD:
            scan.solution = bytes(body)
        elif next_type == PayloadType.SA:
            scan.prfs = _prfs(body)
        next_type = data[offset]
        offset += length
    return None


def _prfs(body: bytes) -> list[int]:
    """PRF transform IDs offered in an SA payload body, in order (bounded walk)."""
    out: list[int] = []
    pos = 0
    while pos + 8 <= len(body):
        length = _U16.unpack_from(body, pos + 2)[0]
        if length < 8 or pos + length > len(body):
            break
        spi_size, count = body[pos + 6], body[pos + 7]
        t = pos + 8 + spi_size
        for _ in range(count):
            if t + 8 > pos + length:
                break
            t_len = _U16.unpack_from(body, t + 2)[0]
            if t_len < 8:
                break
            if body[t + 4] == _PRF:
                out.append(_U16.unpack_from(body, t + 6)[0])
            t += t_len
        pos += length
    return out


def cookie_reply(spi_i: bytes, cookie: bytes, prf: int | None, difficulty: int) -> bytes:
    """``HDR, N(COOKIE) [, N(PUZZLE)]`` (§2.6, RFC 8019 §7.1.1), packed directly: this is
    the one reply a flood gets, so it skips the general encoder."""
    puzzle = difficulty > 0 and prf is not None
    first = _NOTIFY.pack(_NOTIFY_TYPE if puzzle else 0, 0, 8 + len(cookie), 0, 0, _COOKIE)
    body = first + cookie
    if puzzle:
        assert prf is not None
        body += _NOTIFY.pack(0, 0, 11, 0, 0, _PUZZLE) + _PUZZLE_DATA.pack(prf, difficulty)
    length = 28 + len(body)
    header = _HEADER.pack(spi_i, ZERO_SPI, _NOTIFY_TYPE, 0x20, _INIT, FLAG_RESPONSE, 0, length)
    if log.isEnabledFor(logging.DEBUG):
        notifies = [Notify(NotifyType.COOKIE, cookie)]
        if puzzle:
            assert prf is not None
            notifies.append(puzzle_notify(prf, difficulty))
        trace("sending", None, IkeHeader(spi_i, ZERO_SPI, 0, _INIT, 0, FLAG_RESPONSE), notifies)
    return header + body


def puzzle_prf(offered: list[int]) -> int | None:
    """The PRF a puzzle uses: the first one offered that we have (RFC 8019 §7.1.1)."""
    for prf_id in offered:
        try:
            prf_spec(prf_id)
        except UnsupportedAlgorithm:
            continue
        return prf_id
    return None


class Admission:
    """The responder's gate for IKE_SA_INIT requests; pure, time injected."""

    def __init__(
        self, settings: EngineSettings, jar: CookieJar, source: Callable[[str], str] = str
    ) -> None:
        self.settings = settings
        self.jar = jar
        self.source = source  # peer address -> the source it counts under (IPv6: its /64)
        self.blocked: dict[str, float] = {}  # source -> blocked until
        self.strikes: dict[str, int] = {}  # source -> half-open timeouts in a row
        self.buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, last refill)
        self._cookies_until = float("-inf")
        self.backlog = 0  # datagrams received and waiting behind the one being screened

    def screen(
        self, ctx: IkeServices, data: bytes, local: ev.Address, remote: ev.Address, now: float
    ) -> bool:
        """True if the request may go on to the IKE_SA_INIT responder; otherwise it was
        dropped or answered with a COOKIE (and counted)."""
        s = self.settings
        host = remote[0]
        half_open = ctx.half_open
        if (bytes(data[0:8]), host, remote[1]) in half_open:
            return True
        source = self.source(host)
        until = self.blocked.get(source)
        if until is not None:
            if now < until:
                ctx.drops.drop(DROP_BLOCKED, now, host)
                return False
            del self.blocked[source]
        if s.block_threshold and half_open.count(source) >= s.block_threshold:
            ctx.drops.drop(DROP_AGGRESSIVE, now, host)
            return False
        total = len(half_open)
        if s.init_limit_half_open and total >= s.init_limit_half_open:
            ctx.drops.drop(DROP_LIMIT, now, f"{total} half-open IKE SAs")
            return False
        if s.init_limit_job_load and self.backlog > s.init_limit_job_load:
            ctx.drops.drop(DROP_JOB_LOAD, now, f"{self.backlog} datagrams waiting")
            return False
        if not self._cookies_required(total, now):
            return True
        if s.init_rate_per_host and not self._within_rate(source, now):
            ctx.drops.drop(DROP_RATE, now, host)
            return False
        scan = scan_init(data)
        if scan is None or scan.nonce is None:  # under load, no INVALID_SYNTAX answers
            ctx.drops.drop(DROP_MALFORMED, now, host)
            return False
        packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        asked = (
            self.jar.check(scan.cookie, now, scan.nonce, packed, scan.spi_i)
            if scan.cookie is not None
            else None
        )
        if asked is None:
            ctx.drops.drop(DROP_COOKIE if scan.cookie is None else DROP_STALE, now)
            self._send_cookie(ctx, scan, packed, total, local, remote, now)
            return False
        if asked == 0:
            return True
        if scan.solution is not None:
            prf = puzzle_prf(scan.prfs)
            if prf is not None and verify(prf, scan.cookie or b"", asked, scan.solution):
                return True
            ctx.drops.drop(DROP_PUZZLE, now, host)
            return False
        if s.init_limit_half_open and total >= s.init_limit_half_open * 3 // 4:
            ctx.drops.drop(DROP_UNSOLVED, now, host)
            return False
        return True  # RFC 8019 §7.1.2: it returned the cookie, but knows no puzzles

    def _within_rate(self, source: str, now: float) -> bool:
        """Token bucket per source: ``init_rate_per_host`` requests/s, bursts of twice that."""
        rate = self.settings.init_rate_per_host
        tokens, last = self.buckets.get(source, (2.0 * rate, now))
        tokens = min(2.0 * rate, tokens + (now - last) * rate)
        allowed = tokens >= 1.0
        left = (tokens - 1.0 if allowed else tokens, now)
        if source in self.buckets:
            self.buckets[source] = left
        else:
            _bounded_put(self.buckets, source, left)
        return allowed

    def _cookies_required(self, half_open: int, now: float) -> bool:
        threshold = self.settings.cookie_threshold
        if threshold and half_open >= threshold:
            self._cookies_until = now + COOKIE_CALMDOWN
            return True
        return now < self._cookies_until

    def _send_cookie(
        self,
        ctx: IkeServices,
        scan: InitScan,
        packed: bytes,
        half_open: int,
        local: ev.Address,
        remote: ev.Address,
        now: float,
    ) -> None:
        s = self.settings
        difficulty = 0
        prf = puzzle_prf(scan.prfs)
        if s.puzzle_difficulty and prf is not None:
            difficulty = difficulty_for(
                half_open, s.cookie_threshold, s.puzzle_difficulty, s.puzzle_max_difficulty
            )
        assert scan.nonce is not None
        cookie = self.jar.make(now, scan.nonce, packed, scan.spi_i, difficulty)
        ctx.send_to(cookie_reply(scan.spi_i, cookie, prf, difficulty), local, remote)

    def timed_out(self, host: str, now: float) -> None:
        """A half-open SA of ``host`` timed out; ``block_threshold`` in a row from its source
        block that source."""
        s = self.settings
        if not s.block_threshold or s.block_time <= 0:
            return
        source = self.source(host)
        strikes = self.strikes.pop(source, 0) + 1
        if strikes >= s.block_threshold:
            _bounded_put(self.blocked, source, now + s.block_time)
        else:
            _bounded_put(self.strikes, source, strikes)

    def completed(self, host: str) -> None:
        """An IKE SA of ``host`` left the half-open state by its IKE_AUTH: no abuse."""
        self.strikes.pop(self.source(host), None)


def _bounded_put(table: dict[str, Any], key: str, value: object) -> None:
    """Insert, evicting the oldest entries beyond MAX_TRACKED_HOSTS (memory stays bounded)."""
    table.pop(key, None)
    while len(table) >= MAX_TRACKED_HOSTS:
        del table[next(iter(table))]
    table[key] = value
