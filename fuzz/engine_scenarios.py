"""The engine target's worlds and scenarios (see fuzz_engine.py): two in-memory engines and a
bystander, driven to each state whose next message the target mutates.

Imported by fuzz_engine.py inside its instrumentation block, so Petrel's modules it imports
are instrumented under atheris.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DetRandom, Snapshot

from petrel.config.swanctl import parse_swanctl
from petrel.crypto import ke as _ke
from petrel.crypto.sk import SkCipher
from petrel.ike import events as ev
from petrel.ike.engine import EngineSettings, IkeEngine
from petrel.ike.fragment import open_fragment
from petrel.ike.protect import open_protected
from petrel.ike.sa import IkeSa
from petrel.wire.codec import decode_message, decode_payloads
from petrel.wire.payloads import SK, SKF, IkeHeader, Payload
from petrel.wire.registry import ExchangeType

LEFT = ("192.0.2.1", 500)
RIGHT = ("192.0.2.2", 500)
FAR = ("192.0.2.9", 500)
NAT_T = 4500
PSK = b"fuzzing-the-petrel-engine"
BYSTANDER_PSK = b"the-bystander-has-its-own-secret"
T0 = 10.0  # when the worlds are established
FRAGMENT_SIZE = 160  # IP datagram size in the fragmenting world: IKE_AUTH takes 4 fragments

# Keyed objects that never change once made: shared by every restored copy of an engine.
ATOMIC = frozenset(
    {SkCipher, _ke._XExchange, _ke._EcpExchange, _ke._ModpExchange, _ke._MlKemExchange}
)


SUITES = {
    "gcm": ("aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519"),
    "cbc": ("aes128-sha256-prfsha256-ecp256", "aes128-sha256"),
}

# The scenarios built here; those of engine_scenarios_extra (newer engine features) follow.
CORE_SCENARIOS = 63

Tweak = Callable[[str, str], str]  # (side, swanctl.conf text) -> the text a world uses


# ---------------------------------------------------------------------------- the worlds


def _side_conf(side: str, me: str, peer: str, suite: str, frag_ts: bool, encap: bool) -> str:
    ike, esp = SUITES[suite]
    mine, theirs = ("198.51.100", "203.0.113") if side == "left" else ("203.0.113", "198.51.100")
    peer_id = "right" if side == "left" else "left"
    extra = ""
    if frag_ts:  # a second selector each way: a few more fragments, one more narrowing case
        extra, extra_r = f",{mine}.77/32[udp]", f",{theirs}.64/26"
    else:
        extra_r = ""
    actions = (
        "close_action = start" if side == "left" else "close_action = trap\n dpd_action = restart"
    )
    return f"""
connections {{
  c {{
    local_addrs = {me}
    remote_addrs = {peer}
    proposals = {ike}
    encap = {"yes" if encap else "no"}
    dpd_delay = 30s
    local {{
      auth = psk
      id = {side}
    }}
    remote {{
      auth = psk
      id = {peer_id}
    }}
    children {{
      net {{
        local_ts = {mine}.0/28{extra}
        remote_ts = {theirs}.0/28{extra_r}
        esp_proposals = {esp}
        {actions}
      }}
      web {{
        local_ts = {mine}.128/25[tcp/80]
        remote_ts = {theirs}.0/24[tcp]
        esp_proposals = aes128gcm16-esn-noesn,{esp}
      }}
    }}
  }}
  b {{
    local_addrs = {me}
    remote_addrs = {FAR[0]}
    proposals = aes128gcm16-prfsha256-x25519
    rekey_time = 24h
    local {{
      auth = psk
      id = {side}-b
    }}
    remote {{
      auth = psk
      id = far-{side}
    }}
    children {{
      bnet {{
        local_ts = 10.{1 if side == "left" else 2}.0.0/16
        remote_ts = 10.9.0.0/16
        esp_proposals = aes128gcm16
        rekey_time = 24h
        life_time = 25h
      }}
    }}
  }}
}}
secrets {{
  ike-c {{
    id-1 = {side}
    id-2 = {peer_id}
    secret = 0x{PSK.hex()}
  }}
  ike-b {{
    id-1 = {side}-b
    id-2 = far-{side}
    secret = 0x{BYSTANDER_PSK.hex()}
  }}
}}
"""


def _far_conf() -> str:
    conns = []
    for name, side, addr, net in (("l", "left", LEFT[0], 1), ("r", "right", RIGHT[0], 2)):
        conns.append(f"""
  {name} {{
    local_addrs = {FAR[0]}
    remote_addrs = {addr}
    proposals = aes128gcm16-prfsha256-x25519
    rekey_time = 24h
    local {{
      auth = psk
      id = far-{side}
    }}
    remote {{
      auth = psk
      id = {side}-b
    }}
    children {{
      bnet {{
        local_ts = 10.9.0.0/16
        remote_ts = 10.{net}.0.0/16
        esp_proposals = aes128gcm16
        rekey_time = 24h
        life_time = 25h
      }}
    }}
  }}""")
    secrets = "".join(
        f"""
  ike-{side} {{
    id-1 = far-{side}
    id-2 = {side}-b
    secret = 0x{BYSTANDER_PSK.hex()}
  }}"""
        for side in ("left", "right")
    )
    return "connections {" + "".join(conns) + "\n}\nsecrets {" + secrets + "\n}\n"


def strip_marker(d: ev.Datagram) -> bytes:
    """The IKE message of a datagram (without the non-ESP marker on port 4500)."""
    if NAT_T in (d.local[1], d.remote[1]):
        assert d.data[:4] == bytes(4), "no non-ESP marker on port 4500"
        return d.data[4:]
    return d.data


def deliver(dst: IkeEngine, datagrams: list[ev.Datagram], now: float) -> None:
    for d in datagrams:
        dst.receive(strip_marker(d), d.remote, d.local, now)


def _pump(a: IkeEngine, b: IkeEngine, now: float, rounds: int = 20) -> None:
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            out = src.take_datagrams()
            moved = moved or bool(out)
            deliver(dst, out, now)
        if not moved:
            return


class World:
    """Left and right, each with its bystander SA up, at time T0."""

    def __init__(
        self,
        suite: str = "gcm",
        fragment_size: int = 1280,
        encap: bool = False,
        tweak: Tweak | None = None,
    ):
        """``tweak`` edits each side's swanctl.conf (virtual IPs, childless, …)."""
        settings = EngineSettings(fragment_size=fragment_size, retransmit_timeout=2.0)
        frag = fragment_size < 600
        engines = []
        for side, me, peer in (("left", LEFT, RIGHT), ("right", RIGHT, LEFT)):
            text = _side_conf(side, me[0], peer[0], suite, frag, encap and side == "left")
            if tweak is not None:
                text = tweak(side, text)
            cfg = parse_swanctl(text)
            random = DetRandom(side.encode())
            engines.append(
                IkeEngine(cfg.connections, cfg.secrets, settings, random, pools=cfg.pools)
            )
        self.left, self.right = engines
        far_cfg = parse_swanctl(_far_conf())
        far = IkeEngine(far_cfg.connections, far_cfg.secrets, None, DetRandom(b"far"))
        far.initiate("l", "bnet", FAR, LEFT, 1.0)
        _pump(far, self.left, 1.0)
        far.initiate("r", "bnet", FAR, RIGHT, 1.0)
        _pump(far, self.right, 1.0)
        for engine in (self.left, self.right):
            engine.take_events()
            assert len(engine.child_sas()) == 1, "bystander not established"
        self.now = T0

    def establish(self) -> World:
        self.left.initiate("c", "net", LEFT, RIGHT, self.now)
        _pump(self.left, self.right, self.now)
        for engine in (self.left, self.right):
            engine.take_events()
            assert len(engine.child_sas()) == 2, "left-right not established"
        return self

    def sa(self, engine: IkeEngine) -> IkeSa:
        """The engine's established left-right IKE SA (the one under attack)."""
        return next(s for s in engine.ike_sas() if s.name == "c" and s.rekeyed_to is None)


# ---------------------------------------------------------------------------- scenarios


@dataclasses.dataclass
class Scenario:
    name: str
    receiver: Snapshot
    sender: Snapshot
    header: IkeHeader
    payloads: tuple[Payload, ...]
    cipher: SkCipher | None  # None: an unprotected IKE_SA_INIT message
    fragmented: bool
    local: tuple[str, int]  # the receiver's address the message arrives on
    remote: tuple[str, int]
    now: float
    bystanders: dict[int, tuple[object, ...]]
    auth: tuple[bytes, bytes, Any, bytes] | None  # message, nonce, prf, SK_p for an AUTH fix
    spis: tuple[bytes, ...]  # SPIs of this scenario (Child SAs, IKE SAs)
    raw: tuple[bytes, ...]  # the message as it was sent (its fragments, if any)
    words: tuple[bytes, ...] = ()  # more octet strings worth trying (NAT-D hashes, addresses)


def bystander_fingerprints(engine: IkeEngine) -> dict[int, tuple[object, ...]]:
    return {sa.ike_id: sa_fingerprint(sa) for sa in engine.ike_sas() if sa.remote[0] == FAR[0]}


def sa_fingerprint(sa: IkeSa) -> tuple[object, ...]:
    children = tuple(
        sorted((c.child_id, c.spi_in, c.spi_out, c.state) for c in sa.children.values())
    )
    keys = sa.keys.sk_d if sa.keys is not None else b""
    return (
        sa.state,
        sa.spi_i,
        sa.spi_r,
        sa.local,
        sa.remote,
        sa.next_request_id,
        sa.expected_peer_id,
        sa.outstanding is None,
        children,
        keys,
    )


def _capture(
    name: str,
    sender: IkeEngine,
    receiver: IkeEngine,
    now: float,
    datagrams: list[ev.Datagram] | None = None,
) -> Scenario:
    """Snapshot both engines and decrypt the message ``sender`` just sent (or ``datagrams``)."""
    if datagrams is None:
        datagrams = sender.take_datagrams()
    assert datagrams, f"scenario {name}: nothing was sent"
    sender.take_events()
    receiver.take_events()
    receiver.take_datagrams()
    first = datagrams[0]
    raw = [strip_marker(d) for d in datagrams]
    messages = [decode_message(r) for r in raw]
    header = messages[0].header
    for message in messages[1:]:
        assert message.header.message_id == header.message_id, f"{name}: two messages"
    last = messages[0].payloads[-1] if messages[0].payloads else None
    auth = None
    if isinstance(last, SK | SKF):
        sa = next(
            s for s in receiver.ike_sas() if (s.spi_i, s.spi_r) == (header.spi_i, header.spi_r)
        )
        cipher = sa.sk_in
        assert cipher is not None
        if isinstance(last, SK):
            payloads = open_protected(raw[0], messages[0], cipher)
            fragmented = False
        else:
            chunks = {}
            first_type = 0
            for r, m in zip(raw, messages, strict=True):
                skf = m.payloads[-1]
                assert isinstance(skf, SKF)
                chunks[skf.fragment_number] = open_fragment(r, m, cipher)
                first_type = first_type or int(skf.inner_next_payload)
            payloads = decode_payloads(first_type, b"".join(chunks[n] for n in sorted(chunks)))
            fragmented = True
        if header.exchange == ExchangeType.IKE_AUTH and sa.keys and sa.algorithms:
            if sa.initiator:  # the responder's AUTH: its IKE_SA_INIT response, our nonce
                auth = (sa.init_response, sa.ni, sa.algorithms.prf, sa.keys.sk_pr)
            else:
                auth = (sa.init_request, sa.nr, sa.algorithms.prf, sa.keys.sk_pi)
    else:
        cipher, fragmented, payloads = None, False, messages[0].payloads
    spis = {header.spi_i, header.spi_r}
    for engine in (sender, receiver):
        for sa in engine.ike_sas():
            spis.update((sa.spi_i, sa.spi_r))
        for _sa, child in engine.child_sas():
            spis.update((child.spi_in.to_bytes(4, "big"), child.spi_out.to_bytes(4, "big")))
    return Scenario(
        name=name,
        receiver=Snapshot(receiver, ATOMIC),
        sender=Snapshot(sender, ATOMIC),
        header=header,
        payloads=tuple(payloads),
        cipher=cipher,
        fragmented=fragmented,
        local=first.remote,
        remote=first.local,
        now=now,
        bystanders=bystander_fingerprints(receiver),
        auth=auth,
        spis=tuple(sorted(spis - {bytes(8)})),
        raw=tuple(raw),
    )


def _init_scenarios(out: list[Scenario], suite: str) -> None:
    w = World(suite)
    now = w.now
    w.left.initiate("c", "net", LEFT, RIGHT, now)
    request = w.left.take_datagrams()
    out.append(_capture(f"{suite}/init-request", w.left, w.right, now, request))
    deliver(w.right, request, now)
    response = w.right.take_datagrams()
    out.append(_capture(f"{suite}/init-response", w.right, w.left, now, response))
    deliver(w.left, response, now)
    auth = w.left.take_datagrams()
    out.append(_capture(f"{suite}/auth-request", w.left, w.right, now, auth))
    deliver(w.right, auth, now)
    out.append(_capture(f"{suite}/auth-response", w.right, w.left, now))


def _exchange_scenarios(
    out: list[Scenario], prefix: str, world: Snapshot, start: Any, *, both: bool = True
) -> None:
    """``start(w)`` makes left (or right) send a request: capture it, then the response."""
    w: World = world.restore()  # type: ignore[assignment]
    now = w.now + 1.0
    sender = start(w, now)
    now = max(now, w.now)  # a timer may have moved the clock on
    receiver = w.right if sender is w.left else w.left
    request = sender.take_datagrams()
    out.append(_capture(f"{prefix}-request", sender, receiver, now, request))
    if both:
        deliver(receiver, request, now)
        out.append(_capture(f"{prefix}-response", receiver, sender, now))


def _established_scenarios(out: list[Scenario], suite: str, tag: str = "", **kw: Any) -> None:
    base = World(suite, **kw).establish()
    world = Snapshot(base, ATOMIC)
    p = f"{suite}{tag}"

    def create_child(w: World, now: float) -> IkeEngine:
        assert w.left.create_child(w.sa(w.left).ike_id, "web", now)
        return w.left

    def rekey_child_left(w: World, now: float) -> IkeEngine:
        sa = w.sa(w.left)
        child = next(c for c in sa.children.values())
        assert w.left.rekey_child(sa.ike_id, child.child_id, now)
        return w.left

    def rekey_child_right(w: World, now: float) -> IkeEngine:
        sa = w.sa(w.right)
        child = next(c for c in sa.children.values())
        assert w.right.rekey_child(sa.ike_id, child.child_id, now)
        return w.right

    def rekey_ike(w: World, now: float) -> IkeEngine:
        assert w.left.rekey_ike(w.sa(w.left).ike_id, now)
        return w.left

    def rekey_ike_right(w: World, now: float) -> IkeEngine:
        assert w.right.rekey_ike(w.sa(w.right).ike_id, now)
        return w.right

    def delete_child(w: World, now: float) -> IkeEngine:
        sa = w.sa(w.left)
        child = next(c for c in sa.children.values())
        assert w.left.delete_child(sa.ike_id, child.child_id, now)
        return w.left

    def delete_ike(w: World, now: float) -> IkeEngine:
        assert w.left.terminate(w.sa(w.left).ike_id, now)
        return w.left

    def liveness(w: World, now: float) -> IkeEngine:
        w.left.handle_timer(now + 31.0)  # dpd_delay 30 s: an empty INFORMATIONAL
        w.now = now + 31.0
        return w.left

    _exchange_scenarios(out, f"{p}/create-child", world, create_child)
    _exchange_scenarios(out, f"{p}/rekey-child", world, rekey_child_left)
    _exchange_scenarios(out, f"{p}/rekey-child-by-right", world, rekey_child_right)
    _exchange_scenarios(out, f"{p}/rekey-ike", world, rekey_ike)
    _exchange_scenarios(out, f"{p}/delete-child", world, delete_child)
    if tag:  # the fragmenting world: the bigger exchanges are enough
        return
    _exchange_scenarios(out, f"{p}/rekey-ike-by-right", world, rekey_ike_right, both=False)
    _exchange_scenarios(out, f"{p}/delete-ike", world, delete_ike)
    _exchange_scenarios(out, f"{p}/liveness", world, liveness)

    # The second half of a rekey: the Delete of the old Child SA / old IKE SA.
    for label, start in (("rekey-child", rekey_child_left), ("rekey-ike", rekey_ike)):
        w: World = world.restore()  # type: ignore[assignment]
        now = w.now + 1.0
        start(w, now)
        deliver(w.right, w.left.take_datagrams(), now)
        deliver(w.left, w.right.take_datagrams(), now)
        delete = w.left.take_datagrams()  # the Delete the completed rekey sent
        if delete:
            out.append(_capture(f"{p}/{label}-delete-request", w.left, w.right, now, delete))

    # Collisions: both peers start the same exchange; the receiver has its own outstanding.
    for label, ours, theirs in (
        ("child-rekey-collision", rekey_child_right, rekey_child_left),
        ("ike-rekey-collision", rekey_ike_right, rekey_ike),
        ("delete-during-rekey", delete_ike, rekey_child_right),
    ):
        w = world.restore()  # type: ignore[assignment]
        now = w.now + 1.0
        receiver = ours(w, now)
        receiver.take_datagrams()
        sender = theirs(w, now)
        out.append(_capture(f"{p}/{label}", sender, receiver, now))

    # A retransmitted request (already answered): the response cache path.
    w = world.restore()  # type: ignore[assignment]
    liveness(w, w.now + 1.0)
    request = w.left.take_datagrams()
    deliver(w.right, request, w.now)
    deliver(w.left, w.right.take_datagrams(), w.now)
    out.append(_capture(f"{p}/retransmitted-request", w.left, w.right, w.now, request))


_SCENARIOS: list[Scenario] = []


def _half_way(w: World) -> list[ev.Datagram]:
    """Deliver IKE_SA_INIT both ways; return left's IKE_AUTH request, not delivered."""
    w.left.initiate("c", "net", LEFT, RIGHT, w.now)
    deliver(w.right, w.left.take_datagrams(), w.now)
    deliver(w.left, w.right.take_datagrams(), w.now)
    return w.left.take_datagrams()


def scenarios() -> list[Scenario]:
    """Every scenario, built once (about a second); the order is part of the input format:
    append new scenarios at the end, or the committed corpus changes meaning."""
    if not _SCENARIOS:
        built: list[Scenario] = []
        _init_scenarios(built, "gcm")
        _established_scenarios(built, "gcm")
        _init_scenarios(built, "cbc")
        _established_scenarios(built, "cbc")
        _established_scenarios(built, "gcm", "-frag", fragment_size=FRAGMENT_SIZE)
        frag = World("gcm", fragment_size=FRAGMENT_SIZE)
        auth = _half_way(frag)
        built.append(_capture("gcm-frag/auth-request", frag.left, frag.right, frag.now, auth))
        deliver(frag.right, auth, frag.now)
        built.append(_capture("gcm-frag/auth-response", frag.right, frag.left, frag.now))
        natt = World("gcm", encap=True)
        auth = _half_way(natt)
        built.append(_capture("gcm-natt/auth-request", natt.left, natt.right, natt.now, auth))
        assert len(built) == CORE_SCENARIOS, "append new scenarios in engine_scenarios_extra"
        from engine_scenarios_extra import extra_scenarios  # it imports this module

        extra_scenarios(built)
        _SCENARIOS.extend(built)
    return _SCENARIOS
