"""IKE_SA_INIT client puzzles (RFC 8019 §7.1): the PUZZLE notify, solving and verifying.

The responder sends ``N(COOKIE), N(PUZZLE)`` — PUZZLE carrying a PRF the initiator offered
and a difficulty (§8.1). The initiator finds four different keys Ki of equal length for that
PRF such that every ``PRF(Ki, cookie)`` ends in at least ``difficulty`` zero bits (§7.1.4),
and returns them in a Puzzle Solution payload (PS, type 54, §8.2) after the COOKIE. Keys of an
HMAC PRF are 8 octets here (§8.2 allows 8 up to the preferred key length); the AES PRFs take
16. An initiator that knows no puzzles just returns the cookie (§7.1.1).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..crypto.errors import UnsupportedAlgorithm
from ..crypto.prf import PrfSpec, prf_spec
from ..wire.payloads import Notify, UnknownPayload
from ..wire.registry import NotifyType

PS_PAYLOAD = 54  # Puzzle Solution, RFC 8019 §8.2
KEYS = 4  # §7.1.4: the solution holds four keys
_NOTIFY = struct.Struct(">HB")  # PRF transform ID, difficulty (§8.1)


def puzzle_notify(prf_id: int, difficulty: int) -> Notify:
    return Notify(NotifyType.PUZZLE, _NOTIFY.pack(prf_id, difficulty))


def parse_puzzle(data: bytes) -> tuple[int, int] | None:
    """(PRF transform ID, difficulty) of a PUZZLE notify's data, or None if malformed."""
    if len(data) != _NOTIFY.size:
        return None
    prf_id, difficulty = _NOTIFY.unpack(data)
    return int(prf_id), int(difficulty)


def solution_payload(solution: bytes) -> UnknownPayload:
    return UnknownPayload(PS_PAYLOAD, solution)


def zero_bits(digest: bytes) -> int:
    """Trailing zero bits of ``digest`` (RFC 8019 §7.1.4)."""
    value = int.from_bytes(digest, "big")
    if value == 0:
        return len(digest) * 8
    return (value & -value).bit_length() - 1


def key_length(prf: PrfSpec) -> int:
    return prf.key_size if prf.fixed_key_prf else 8


def solve(prf_id: int, cookie: bytes, difficulty: int, random: Callable[[int], bytes]) -> bytes:
    """Four keys whose PRF over ``cookie`` has ``difficulty`` trailing zero bits, concatenated.

    Expected cost: ``4 * 2**difficulty`` PRF computations. Raises UnsupportedAlgorithm for a
    PRF Petrel does not have."""
    prf = prf_spec(prf_id)
    size = key_length(prf)
    prefix = random(size - 4)
    keys: list[bytes] = []
    counter = 0
    while len(keys) < KEYS:
        key = prefix + counter.to_bytes(4, "big")
        counter += 1
        if zero_bits(prf.compute(key, cookie)) >= difficulty:
            keys.append(key)
    return b"".join(keys)


def verify(prf_id: int, cookie: bytes, difficulty: int, solution: bytes) -> bool:
    """Is ``solution`` four different, equally long, valid keys each meeting ``difficulty``?"""
    try:
        prf = prf_spec(prf_id)
    except UnsupportedAlgorithm:
        return False
    if len(solution) % KEYS:
        return False
    size = len(solution) // KEYS
    if (prf.fixed_key_prf and size != prf.key_size) or not 8 <= size <= prf.key_size:
        return False
    keys = [solution[i * size : (i + 1) * size] for i in range(KEYS)]
    if len(set(keys)) != KEYS:
        return False
    return all(zero_bits(prf.compute(key, cookie)) >= difficulty for key in keys)


def difficulty_for(half_open: int, threshold: int, base: int, ceiling: int) -> int:
    """The difficulty to ask at this load: ``base`` at the cookie threshold, one bit more per
    doubling of the half-open SAs beyond it, never above ``ceiling``."""
    if base <= 0:
        return 0
    level = base
    mark = max(threshold, 1) * 2
    while half_open >= mark and level < ceiling:
        level += 1
        mark *= 2
    return min(level, ceiling)
