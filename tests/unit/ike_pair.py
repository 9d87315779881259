"""Two IKE engines in memory, and hand-built messages sealed as the peer would seal them.

Shared by the engine tests (``tests/unit/ike``) and the conformance tests
(``tests/unit/ike/conformance``): ``from ike_pair import …`` (pyproject.toml puts
``tests/unit`` on the path).  No sockets: datagrams move between the engines by hand.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from petrel.config.swanctl import parse_swanctl
from petrel.ike import events as ev
from petrel.ike.engine import EngineSettings, IkeEngine
from petrel.ike.protect import build_plain, build_protected, open_protected
from petrel.ike.sa import IkeSa
from petrel.wire.codec import decode_message, encode_header
from petrel.wire.payloads import (
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    IKE_HEADER_LEN,
    IkeHeader,
    Message,
    Payload,
)
from petrel.wire.registry import PayloadType

LEFT = ("192.0.2.1", 500)
RIGHT = ("192.0.2.2", 500)


def conf(
    me: str,
    peer: str,
    my_id: str,
    peer_id: str,
    local_ts: str,
    remote_ts: str,
    proposals: str = "aes256gcm16-prfsha256-x25519",
    esp: str = "aes256gcm16",
    secret: str = "0sdGVzdHRlc3R0ZXN0dGVzdA==",
    encap: str = "no",
    extra: str = "",
) -> str:
    """swanctl.conf of one side: connection ``c`` with child ``net``, PSK authentication;
    ``extra``: more ``key = value`` lines of the connection."""
    return f"""
connections {{
  c {{
    local_addrs = {me}
    remote_addrs = {peer}
    proposals = {proposals}
    encap = {encap}
    {extra}
    local {{
      auth = psk
      id = {my_id}
    }}
    remote {{
      auth = psk
      id = {peer_id}
    }}
    children {{
      net {{
        local_ts = {local_ts}
        remote_ts = {remote_ts}
        esp_proposals = {esp}
      }}
    }}
  }}
}}
secrets {{
  ike-1 {{
    id-1 = {my_id}
    id-2 = {peer_id}
    secret = {secret}
  }}
}}
"""


def engines(
    left_kw: dict | None = None,
    right_kw: dict | None = None,
    settings: EngineSettings | None = None,
) -> tuple[IkeEngine, IkeEngine]:
    """Left (192.0.2.1, 198.51.100.1) and right (192.0.2.2, 203.0.113.1), mirrored."""
    left_kw = {"my_id": "left", "peer_id": "right", **(left_kw or {})}
    right_kw = {"my_id": "right", "peer_id": "left", **(right_kw or {})}
    left_kw = {"local_ts": "198.51.100.1/32", "remote_ts": "203.0.113.1/32", **left_kw}
    right_kw = {"local_ts": "203.0.113.1/32", "remote_ts": "198.51.100.1/32", **right_kw}
    return (
        engine_of(conf("192.0.2.1", "192.0.2.2", **left_kw), settings),
        engine_of(conf("192.0.2.2", "192.0.2.1", **right_kw), settings),
    )


def engine_of(text: str, settings: EngineSettings | None = None) -> IkeEngine:
    """An engine configured from swanctl.conf ``text`` (connections, secrets, pools)."""
    cfg = parse_swanctl(text)
    return IkeEngine(cfg.connections, cfg.secrets, settings, pools=cfg.pools)


def strip(data: bytes) -> bytes:
    """Without the non-ESP marker of port 4500 (RFC 3948 §2.2)."""
    return data[4:] if data[:4] == b"\0\0\0\0" else data


def pump(
    a: IkeEngine,
    b: IkeEngine,
    now: float = 0.0,
    rounds: int = 20,
    drop: Callable[[ev.Datagram], bool] | None = None,
) -> list[bytes]:
    """Deliver datagrams between ``a`` and ``b`` until both are quiet; returns the IKE
    messages that crossed (without the non-ESP marker of port 4500)."""
    seen: list[bytes] = []
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for dgram in src.take_datagrams():
                moved = True
                seen.append(strip(dgram.data))
                if drop is not None and drop(dgram):
                    continue
                dst.receive(strip(dgram.data), dgram.remote, dgram.local, now)
        if not moved:
            break
    return seen


def cross(a: IkeEngine, b: IkeEngine, now: float) -> None:
    """Both engines' pending requests cross on the wire before either answer is delivered."""
    a_out, b_out = a.take_datagrams(), b.take_datagrams()
    for dst, datagrams in ((b, a_out), (a, b_out)):
        for d in datagrams:
            dst.receive(strip(d.data), d.remote, d.local, now)


def of_type(events: Sequence[object], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def established(**kw) -> tuple[IkeEngine, IkeEngine, list[ev.Event], list[ev.Event]]:
    """An IKE SA with its Child SA ``net``, left the initiator; the events of each side."""
    left, right = engines(**kw)
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    return left, right, left.take_events(), right.take_events()


def the_sa(engine: IkeEngine) -> IkeSa:
    """The engine's one IKE SA."""
    (sa,) = engine.ike_sas()
    return sa


# ---------------------------------------------------------------------- hand-built messages


def seal(
    sender: IkeSa,
    exchange: int,
    message_id: int,
    payloads: Sequence[Payload],
    *,
    response: bool = False,
    flags: int | None = None,
    major: int = 2,
    minor: int = 0,
) -> bytes:
    """A message as ``sender`` (the peer's own IKE SA) would protect it: authentic, so it
    reaches the receiver's code past the integrity check.  ``flags`` overrides I/R/V."""
    assert sender.sk_out is not None
    if flags is None:
        flags = (FLAG_INITIATOR if sender.initiator else 0) | (FLAG_RESPONSE if response else 0)
    header = IkeHeader(sender.spi_i, sender.spi_r, 0, exchange, message_id, flags, major, minor)
    return build_protected(header, payloads, sender.sk_out)


def plain(header: IkeHeader, payloads: Sequence[Payload]) -> bytes:
    """An unprotected message (IKE_SA_INIT, or an error outside any SA)."""
    return build_plain(header, payloads)


def next_request(sender: IkeSa, exchange: int, payloads: Sequence[Payload], **kw) -> bytes:
    """The sender's next request (its next message ID, which it then counts as used)."""
    message_id = sender.next_request_id
    sender.next_request_id += 1
    return seal(sender, exchange, message_id, payloads, **kw)


def sent(engine: IkeEngine) -> list[bytes]:
    """What ``engine`` sent since last asked, without non-ESP markers."""
    return [strip(d.data) for d in engine.take_datagrams()]


def opened(receiver: IkeSa, data: bytes) -> tuple[Message, tuple[Payload, ...]]:
    """A protected message decrypted with the receiving IKE SA's keys."""
    assert receiver.sk_in is not None
    message = decode_message(data)
    return message, open_protected(data, message, receiver.sk_in)


def notify_types(payloads: Sequence[Payload]) -> list[int]:
    return [int(p.notify_type) for p in payloads if hasattr(p, "notify_type")]


def seal_raw(
    sender: IkeSa, exchange: int, message_id: int, first: int, inner: bytes, flags: int
) -> bytes:
    """Like :func:`seal`, but the plaintext payload chain is given as octets (``first``
    names its first payload), so malformed chains can be sealed authentically."""
    cipher = sender.sk_out
    assert cipher is not None
    body_len = cipher.body_length(len(inner))
    header = IkeHeader(
        sender.spi_i,
        sender.spi_r,
        PayloadType.SK,
        exchange,
        message_id,
        flags,
        length=IKE_HEADER_LEN + 4 + body_len,
    )
    aad = encode_header(header) + struct.pack(">BBH", first, 0, 4 + body_len)
    return aad + cipher.seal(aad, inner)


def rewrite(
    sender: IkeSa,
    receiver: IkeSa,
    data: bytes,
    edit: Callable[[list[Payload]], list[Payload]],
) -> bytes:
    """``data`` (sent by ``sender``) opened with ``receiver``'s keys, its payloads edited, and
    sealed again with the sender's keys under the same header: the peer's own message, changed."""
    message, payloads = opened(receiver, data)
    h = message.header
    return seal(
        sender,
        h.exchange,
        h.message_id,
        edit(list(payloads)),
        flags=h.flags,
        major=h.major,
        minor=h.minor,
    )


# ---------------------------------------------------------------------- a NAT in front of left

PUBLIC = "192.0.2.100"  # the NAT box's outside address


class NatBox:
    """Left's datagrams leave from PUBLIC:<port>; answers to that mapping reach left."""

    def __init__(self) -> None:
        self.out: dict[tuple[str, int], tuple[str, int]] = {}

    def outside(self, inside: tuple[str, int]) -> tuple[str, int]:
        return self.out.setdefault(inside, (PUBLIC, 30000 + len(self.out)))

    def inside(self, outside: tuple[str, int]) -> tuple[str, int]:
        (found,) = [i for i, o in self.out.items() if o == outside]
        return found


def nat_pump(left: IkeEngine, right: IkeEngine, nat: NatBox, now: float = 0.0) -> None:
    """Like :func:`pump`, left's datagrams through the NAT box."""
    for _ in range(20):
        moved = False
        for d in left.take_datagrams():
            moved = True
            right.receive(strip(d.data), d.remote, nat.outside(d.local), now)
        for d in right.take_datagrams():
            moved = True
            left.receive(strip(d.data), nat.inside(d.remote), d.local, now)
        if not moved:
            return


def behind_nat(
    mobike: bool = False, left_extra: str = ""
) -> tuple[IkeEngine, IkeEngine, IkeSa, IkeSa, NatBox]:
    """Left (behind a :class:`NatBox`) initiated to right; NAT detected on both sides, both
    on 4500; MOBIKE agreed only when asked for; ``left_extra``: more connection lines."""
    extra = "" if mobike else "mobike = no"
    left_conf = conf(
        LEFT[0],
        RIGHT[0],
        "left",
        "right",
        "198.51.100.1/32",
        "203.0.113.1/32",
        extra=f"{extra}\n    {left_extra}",
    )
    left = engine_of(left_conf)
    right = engine_of(
        conf(RIGHT[0], "%any", "right", "left", "203.0.113.1/32", "198.51.100.1/32", extra=extra)
    )
    nat = NatBox()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    nat_pump(left, right, nat)
    (left_sa,), (right_sa,) = left.ike_sas(), right.ike_sas()
    assert left_sa.nat_local and right_sa.nat_remote
    assert right_sa.remote == nat.outside((LEFT[0], 4500))
    assert left_sa.mobike == right_sa.mobike == mobike
    left.take_events()
    right.take_events()
    return left, right, left_sa, right_sa, nat
