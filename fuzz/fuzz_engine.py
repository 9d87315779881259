"""Structure-aware atheris target for the IKE engine: authentic messages with hostile contents.

Two in-memory :class:`~petrel.ike.engine.IkeEngine` peers (left 192.0.2.1, right 192.0.2.2),
each also holding an established IKE SA with a third peer (the *bystander*, 192.0.2.9), are
driven to a chosen state: before the IKE_SA_INIT response, in IKE_AUTH, established with a
CREATE_CHILD_SA (new Child SA, Child SA rekey, IKE SA rekey, collisions), an INFORMATIONAL
(Delete, liveness, retransmission), with fragmentation on, with AES-GCM and with
AES-CBC+HMAC.  Each such *scenario* holds the next message one peer sent, decrypted with the
receiving IKE SA's own keys, and snapshots of both engines.

One input (see ``forge``) picks a scenario and a list of edits to that message's *plaintext*
payload chain (delete/insert/duplicate/move payloads, change any field of any payload —
notify types, SPIs, proposals, traffic selectors, KE, nonces, identities, a recomputed AUTH —
then raw edits of the encoded chain: lengths, next-payload types, critical bits), its header
(message ID, flags, exchange) and its transport (SK or SKF fragments, numbering, order,
duplicates, source address).  The result is sealed with the receiver's keys through
:class:`petrel.crypto.sk.SkCipher`, exactly as its peer would have, so it *authenticates*
and reaches the code that runs after the integrity check.  Then the input may let the peers
answer each other, advance the clock, or give the receiver local commands (rekey, create,
delete) on whatever state the message left behind.

Invariants after every input: nothing raises out of the engine's host interface; the
bystander IKE SA and its Child SA are exactly as they were; every datagram sent decodes;
every Child SA announced can be installed in the ESP data plane and has traffic selectors
within its configuration; the engine's tables stay bounded.

Run:  python3 fuzz/fuzz_engine.py -atheris_runs=100000 [corpus_dir]
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DetRandom, Input, KnownBug, Snapshot, instrumentation, tolerated
from _common import main as run_fuzzer

with instrumentation(__name__, ("petrel.ike", "petrel.policy")):
    from petrel.config.swanctl import parse_swanctl
    from petrel.crypto import ke as _ke
    from petrel.crypto.auth import psk_auth, signed_octets
    from petrel.crypto.sk import SkCipher
    from petrel.esp.sa import InboundSa, OutboundSa
    from petrel.ike import events as ev
    from petrel.ike.engine import EngineSettings, IkeEngine
    from petrel.ike.fragment import MAX_REASSEMBLED, open_fragment
    from petrel.ike.protect import open_protected
    from petrel.ike.sa import IkeSa
    from petrel.policy.selectors import all_within
    from petrel.wire.codec import (
        decode_message,
        decode_payloads,
        encode_header,
        encode_payloads,
        sk_generic_header,
        skf_header,
    )
    from petrel.wire.errors import DecodeError
    from petrel.wire.payloads import (
        AUTH,
        CERT,
        CERTREQ,
        CP,
        EAP,
        IKE_HEADER_LEN,
        KE,
        SK,
        SKF,
        ConfigAttribute,
        Delete,
        IDi,
        IDr,
        IkeHeader,
        Nonce,
        Notify,
        Payload,
        TrafficSelector,
        UnknownPayload,
        VendorID,
    )
    from petrel.wire.registry import (
        AuthMethod,
        CertEncoding,
        CfgAttr,
        CfgType,
        EncrId,
        EsnId,
        ExchangeType,
        IdType,
        IntegId,
        KeId,
        NotifyType,
        PayloadType,
        PrfId,
        ProtocolId,
        TransformType,
        TsType,
    )

NAME = "engine"
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

# Bounds on what one input may leave behind (the engine's per-peer tables).
MAX_IKE_SAS = 12
MAX_CHILDREN = 16
MAX_QUEUED = 16
MAX_TIMERS = 64
MAX_DROP_REASONS = 64

SUITES = {
    "gcm": ("aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519"),
    "cbc": ("aes128-sha256-prfsha256-ecp256", "aes128-sha256"),
}


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


def _strip(d: ev.Datagram) -> bytes:
    """The IKE message of a datagram (without the non-ESP marker on port 4500)."""
    if NAT_T in (d.local[1], d.remote[1]):
        assert d.data[:4] == bytes(4), "no non-ESP marker on port 4500"
        return d.data[4:]
    return d.data


def _deliver(dst: IkeEngine, datagrams: list[ev.Datagram], now: float) -> None:
    for d in datagrams:
        dst.receive(_strip(d), d.remote, d.local, now)


def _pump(a: IkeEngine, b: IkeEngine, now: float, rounds: int = 20) -> None:
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            out = src.take_datagrams()
            moved = moved or bool(out)
            _deliver(dst, out, now)
        if not moved:
            return


class World:
    """Left and right, each with its bystander SA up, at time T0."""

    def __init__(self, suite: str = "gcm", fragment_size: int = 1280, encap: bool = False):
        settings = EngineSettings(fragment_size=fragment_size, retransmit_timeout=2.0)
        frag = fragment_size < 600
        engines = []
        for side, me, peer in (("left", LEFT, RIGHT), ("right", RIGHT, LEFT)):
            text = _side_conf(side, me[0], peer[0], suite, frag, encap and side == "left")
            cfg = parse_swanctl(text)
            engines.append(
                IkeEngine(cfg.connections, cfg.secrets, settings, DetRandom(side.encode()))
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


def _bystanders(engine: IkeEngine) -> dict[int, tuple[object, ...]]:
    return {sa.ike_id: _fingerprint(sa) for sa in engine.ike_sas() if sa.remote[0] == FAR[0]}


def _fingerprint(sa: IkeSa) -> tuple[object, ...]:
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
    raw = [_strip(d) for d in datagrams]
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
        bystanders=_bystanders(receiver),
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
    _deliver(w.right, request, now)
    response = w.right.take_datagrams()
    out.append(_capture(f"{suite}/init-response", w.right, w.left, now, response))
    _deliver(w.left, response, now)
    auth = w.left.take_datagrams()
    out.append(_capture(f"{suite}/auth-request", w.left, w.right, now, auth))
    _deliver(w.right, auth, now)
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
        _deliver(receiver, request, now)
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
        _deliver(w.right, w.left.take_datagrams(), now)
        _deliver(w.left, w.right.take_datagrams(), now)
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
    _deliver(w.right, request, w.now)
    _deliver(w.left, w.right.take_datagrams(), w.now)
    out.append(_capture(f"{p}/retransmitted-request", w.left, w.right, w.now, request))


_SCENARIOS: list[Scenario] = []


def _half_way(w: World) -> list[ev.Datagram]:
    """Deliver IKE_SA_INIT both ways; return left's IKE_AUTH request, not delivered."""
    w.left.initiate("c", "net", LEFT, RIGHT, w.now)
    _deliver(w.right, w.left.take_datagrams(), w.now)
    _deliver(w.left, w.right.take_datagrams(), w.now)
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
        _deliver(frag.right, auth, frag.now)
        built.append(_capture("gcm-frag/auth-response", frag.right, frag.left, frag.now))
        natt = World("gcm", encap=True)
        auth = _half_way(natt)
        built.append(_capture("gcm-natt/auth-request", natt.left, natt.right, natt.now, auth))
        _SCENARIOS.extend(built)
    return _SCENARIOS


# ---------------------------------------------------------------------------- mutations

# Field widths (bits) and the registry each field's values come from, by (class, field).
_INT_FIELDS: dict[tuple[str, str], tuple[int, tuple[int, ...]]] = {}


def _registry(*enums: Any) -> tuple[int, ...]:
    return tuple(sorted({int(v) for e in enums for v in e}))


def _ints(owner: str, field: str, bits: int, *enums: Any) -> None:
    _INT_FIELDS[(owner, field)] = (bits, _registry(*enums))


for _owner in ("Notify", "Delete"):
    _ints(_owner, "protocol", 8, ProtocolId)
_ints("Notify", "notify_type", 16, NotifyType)
_ints("Delete", "spi_size", 8)
_ints("Proposal", "number", 8)
_ints("Proposal", "protocol", 8, ProtocolId)
_ints("Transform", "type", 8, TransformType)
_ints("Transform", "id", 16, EncrId, PrfId, IntegId, KeId, EsnId)
_ints("Transform", "key_length", 16)
_ints("KE", "group", 16, KeId)
_ints("IDi", "id_type", 8, IdType)
_ints("IDr", "id_type", 8, IdType)
_ints("AUTH", "method", 8, AuthMethod)
_ints("CERT", "encoding", 8, CertEncoding)
_ints("CERTREQ", "encoding", 8, CertEncoding)
_ints("TrafficSelector", "ts_type", 8, TsType)
_ints("TrafficSelector", "ip_protocol", 8)
_ints("TrafficSelector", "start_port", 16)
_ints("TrafficSelector", "end_port", 16)
_ints("CP", "cfg_type", 8, CfgType)
_ints("ConfigAttribute", "type", 15, CfgAttr)
_ints("UnknownPayload", "type_value", 8, PayloadType)
_ints("IkeHeader", "message_id", 32)
_ints("IkeHeader", "flags", 8)
_ints("IkeHeader", "exchange", 8, ExchangeType)
_ints("IkeHeader", "major", 4)
_ints("IkeHeader", "minor", 4)

_SPECIAL_INTS = (0, 1, 2, 3, 4, 8, 16, 31, 32, 64, 127, 128, 255, 256, 1023, 4096, 65535)


def _mutate_int(inp: Input, value: int, bits: int, registry: tuple[int, ...]) -> int:
    top = (1 << bits) - 1
    choice = inp.int(6)
    if choice == 0 and registry:
        return inp.pick(registry)
    if choice == 1:
        return (value + 1) & top
    if choice == 2:
        return (value - 1) & top
    if choice == 3:
        return inp.pick(_SPECIAL_INTS) & top
    if choice == 4:
        return top
    return inp.int(top + 1)


class Dictionary:
    """Octet strings worth trying in a given scenario: its SPIs, key-exchange values, …"""

    def __init__(self, scenario: Scenario) -> None:
        values: list[bytes] = list(scenario.spis)
        values += [b"", bytes(4), b"\0\0\0\1", b"\0\0\0\xff", b"\xff" * 4, bytes(8)]
        values += [bytes(15), bytes(16), bytes(32), bytes(257), b"\x01" * 32, bytes(20)]
        values += [b"left", b"right", b"far-left", b"left-b", b"\xc0\x00\x02\x01", bytes(16)]
        values += [b"\xc6\x33\x64\x01", b"\xcb\x00\x71\x01", b"\x00\x50", b"\x00\x0e"]
        for payload in scenario.payloads:
            if isinstance(payload, KE | Nonce):
                values.append(payload.data)
        self.values = tuple(values)


def _mutate_bytes(inp: Input, value: bytes, words: Dictionary) -> bytes:
    choice = inp.int(8)
    if choice == 0:
        return inp.pick(words.values)
    if choice == 1 and value:
        pos = inp.int(len(value))
        return value[:pos] + bytes((value[pos] ^ (1 << inp.int(8)),)) + value[pos + 1 :]
    if choice == 2:
        return value[: inp.int(len(value) + 1)]
    if choice == 3:
        return value + inp.blob(64)
    if choice == 4:
        return b""
    if choice == 5 and value:
        pos = inp.int(len(value))
        return value[:pos] + bytes((inp.byte(),)) + value[pos + 1 :]
    if choice == 6:
        return bytes(len(value))
    return inp.blob(96)


def _mutate_tuple(inp: Input, value: tuple[Any, ...], words: Dictionary, depth: int) -> tuple:
    items = list(value)
    choice = inp.int(6)
    if not items:
        return value
    index = inp.int(len(items))
    if choice == 0:
        del items[index]
    elif choice == 1:
        items.insert(inp.int(len(items) + 1), items[index])
    elif choice == 2:
        other = inp.int(len(items))
        items[index], items[other] = items[other], items[index]
    elif choice == 3:
        items = items[:1] if inp.bool() else []
    else:
        items[index] = _mutate_value(inp, items[index], "", "", words, depth + 1)
    return tuple(items)


def _mutate_value(
    inp: Input, value: Any, owner: str, field: str, words: Dictionary, depth: int
) -> Any:
    if depth > 6:
        return value
    if isinstance(value, bool):
        return not value
    if isinstance(value, int) or (value is None and field == "key_length"):
        bits, registry = _INT_FIELDS.get((owner, field), (8, ()))
        if value is None:
            return inp.pick((128, 256, 192, 0, 65535))
        if field == "key_length" and inp.chance(4):
            return None
        return _mutate_int(inp, int(value), bits, registry)
    if isinstance(value, bytes):
        return _mutate_bytes(inp, value, words)
    if isinstance(value, tuple):
        return _mutate_tuple(inp, value, words, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mutate_dataclass(inp, value, words, depth)
    return value


def _mutate_dataclass(inp: Input, value: Any, words: Dictionary, depth: int) -> Any:
    fields = [f for f in dataclasses.fields(value) if f.init]
    if not fields:
        return value
    field = inp.pick(fields)
    old = getattr(value, field.name)
    new = _mutate_value(inp, old, type(value).__name__, field.name, words, depth + 1)
    try:
        return dataclasses.replace(value, **{field.name: new})
    except (TypeError, ValueError):
        return value


def _palette() -> tuple[Payload, ...]:
    """Payloads to insert: every payload of every scenario, plus kinds none of them carries."""
    seen: dict[bytes, Payload] = {}
    for scenario in scenarios():
        for payload in scenario.payloads:
            try:
                key = bytes((int(payload.payload_type),)) + encode_payloads((payload,))[1]
            except ValueError:
                continue
            seen.setdefault(key, payload)
    v4 = TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, bytes(4), b"\xff" * 4)
    extra: list[Payload] = [
        Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, bytes(4)),
        Notify(NotifyType.INITIAL_CONTACT),
        Notify(NotifyType.AUTHENTICATION_FAILED),
        Notify(NotifyType.USE_TRANSPORT_MODE),
        Notify(NotifyType.INVALID_KE_PAYLOAD, b"\x00\x1f"),
        Notify(NotifyType.INVALID_KE_PAYLOAD, b"\x00\x13"),
        Notify(NotifyType.COOKIE, bytes(16)),
        Notify(NotifyType.TEMPORARY_FAILURE),
        Notify(NotifyType.CHILD_SA_NOT_FOUND, b"", ProtocolId.ESP, bytes(4)),
        Notify(NotifyType.NO_PROPOSAL_CHOSEN),
        Notify(NotifyType.TS_UNACCEPTABLE),
        Notify(NotifyType.INVALID_SYNTAX),
        Notify(NotifyType.INVALID_IKE_SPI),
        Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
        Notify(NotifyType.NAT_DETECTION_SOURCE_IP, bytes(20)),
        Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, bytes(20)),
        Notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, b"\x30"),
        Delete(ProtocolId.IKE),
        Delete(ProtocolId.ESP, (bytes(4),), 4),
        Delete(ProtocolId.AH, (bytes(4), b"\0\0\1\0"), 4),
        UnknownPayload(200, b"opaque"),
        UnknownPayload(201, b"", critical=True),
        VendorID(b"petrel-fuzz"),
        CP(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),)),
        EAP(b"\x02\x01\x00\x06\x01a"),
        CERT(CertEncoding.X509_SIGNATURE, b"\x30\x03\x02\x01\x00"),
        CERTREQ(CertEncoding.X509_SIGNATURE, bytes(20)),
        KE(KeId.CURVE25519, bytes(32)),
        Nonce(bytes(range(32))),
        AUTH(AuthMethod.PSK, bytes(32)),
        IDi(IdType.FQDN, b"left"),
        IDr(IdType.FQDN, b"right"),
        UnknownPayload(int(PayloadType.TSi), bytes(4)),
        UnknownPayload(int(PayloadType.SA), b""),
    ]
    from petrel.wire.payloads import TSi, TSr

    extra += [TSi((v4,)), TSr((v4,))]
    return (*seen.values(), *extra)


_PALETTE: list[tuple[Payload, ...]] = []


def palette() -> tuple[Payload, ...]:
    if not _PALETTE:
        _PALETTE.append(_palette())
    return _PALETTE[0]


def _fix_auth(scenario: Scenario, payloads: list[Payload]) -> None:
    """Recompute the AUTH payload for the (possibly edited) ID payload, with the PSK the
    attacker is assumed to know: the edited identity then still authenticates."""
    if scenario.auth is None:
        return
    message, nonce, prf, sk_p = scenario.auth
    kind = IDr if scenario.header.is_response else IDi
    ident = next((p for p in payloads if isinstance(p, kind)), None)
    index = next((i for i, p in enumerate(payloads) if isinstance(p, AUTH)), None)
    if ident is None or index is None or prf is None:
        return
    body = bytes((int(ident.id_type) & 0xFF, 0, 0, 0)) + ident.data
    value = psk_auth(prf, PSK, signed_octets(message, nonce, prf, sk_p, body))
    payloads[index] = AUTH(AuthMethod.PSK, value)


def _payload_op(inp: Input, scenario: Scenario, chain: list[Payload], words: Dictionary) -> None:
    op = inp.int(11)
    n = len(chain)
    if op == 0 and n:
        del chain[inp.int(n)]
    elif op == 1 and n:
        chain.insert(inp.int(n + 1), chain[inp.int(n)])
    elif op == 2 and n:
        chain.insert(inp.int(n), chain.pop(inp.int(n)))
    elif op in (3, 4, 5) and n:
        index = inp.int(n)
        chain[index] = _mutate_dataclass(inp, chain[index], words, 0)
    elif op == 6:
        chain.insert(inp.int(n + 1), inp.pick(palette()))
    elif op == 7 and n:
        chain[inp.int(n)] = inp.pick(palette())
    elif op == 8:
        spi = inp.pick(words.values)
        protocol = inp.pick((ProtocolId.ESP, ProtocolId.IKE, ProtocolId.AH, ProtocolId.NONE))
        notify = Notify(inp.pick(_INT_FIELDS[("Notify", "notify_type")][1]), b"", protocol, spi)
        chain.insert(inp.int(n + 1), notify)
    elif op == 9:
        _fix_auth(scenario, chain)
    elif op == 10:
        spis = tuple(s for s in (inp.pick(words.values) for _ in range(inp.int(4))) if s)
        size = len(spis[0]) if spis else inp.pick((0, 4, 8))
        spis = tuple(s[:size].ljust(size, b"\0") for s in spis)
        protocol = inp.pick((ProtocolId.ESP, ProtocolId.IKE, ProtocolId.AH, 7))
        chain.insert(inp.int(n + 1), Delete(protocol, spis, size))


def _header_op(inp: Input, header: IkeHeader, words: Dictionary) -> IkeHeader:
    field = inp.pick(("message_id", "message_id", "flags", "exchange", "spi", "major", "minor"))
    if field == "spi":
        which = inp.pick(("spi_i", "spi_r"))
        value = inp.pick(words.values)
        value = value[:8].ljust(8, b"\0")
        return dataclasses.replace(header, **{which: value})
    bits, registry = _INT_FIELDS[("IkeHeader", field)]
    return dataclasses.replace(
        header, **{field: _mutate_int(inp, getattr(header, field), bits, registry)}
    )


def _chain_offsets(first: int, inner: bytes) -> list[int]:
    """Where each generic payload header of an encoded chain starts."""
    offsets, pos = [], 0
    while pos + 4 <= len(inner) and len(offsets) < 32:
        offsets.append(pos)
        length = int.from_bytes(inner[pos + 2 : pos + 4], "big")
        if length < 4:
            break
        pos += length
    return offsets


def _raw_op(inp: Input, first: int, inner: bytearray) -> int:
    """One octet-level edit of an encoded payload chain; returns the (new) first type."""
    offsets = _chain_offsets(first, bytes(inner))
    op = inp.int(7)
    if op == 0 and offsets:  # a payload length
        pos = inp.pick(offsets) + 2
        old = int.from_bytes(inner[pos : pos + 2], "big")
        new = inp.pick((0, 1, 3, 4, 5, old - 1, old + 1, old + 4, 0xFFFF, inp.int(0x10000)))
        inner[pos : pos + 2] = (new & 0xFFFF).to_bytes(2, "big")
    elif op == 1 and offsets:  # a next-payload type
        pos = inp.pick(offsets)
        inner[pos] = inp.pick(_INT_FIELDS[("UnknownPayload", "type_value")][1] + (0, 255))
    elif op == 2 and offsets:  # the critical bit and the reserved bits
        inner[inp.pick(offsets) + 1] ^= inp.pick((0x80, 0x01, 0x7F))
    elif op == 3 and inner:
        inner[inp.int(len(inner))] = inp.byte()
    elif op == 4:
        del inner[inp.int(len(inner) + 1) :]
    elif op == 5:
        inner += inp.blob(48)
    else:
        first = inp.pick(_INT_FIELDS[("UnknownPayload", "type_value")][1] + (0, 255))
    return first


def _seal_sk(header: IkeHeader, first: int, inner: bytes, cipher: SkCipher) -> bytes:
    body_len = cipher.body_length(len(inner))
    fixed = dataclasses.replace(
        header, next_payload=PayloadType.SK, length=IKE_HEADER_LEN + 4 + body_len
    )
    aad = encode_header(fixed) + sk_generic_header(first, body_len)
    return aad + cipher.seal(aad, inner, bytes(cipher.encr.iv_size))


def _seal_skf(
    inp: Input, header: IkeHeader, first: int, inner: bytes, cipher: SkCipher, usual: int
) -> list[bytes]:
    """RFC 7383 fragments of ``inner``, with the input choosing how many (``usual``: as many
    as the peer sent) and how honest."""
    count = inp.int(7) or usual
    count = max(1, min(count, len(inner)))
    total = count if not inp.chance(8) else inp.pick((0, count - 1, count + 1, 0xFFFF, 65))
    base, extra = divmod(len(inner), count)
    fragments, pos = [], 0
    for number in range(1, count + 1):
        size = base + (1 if number <= extra else 0)
        piece = inner[pos : pos + size]
        pos += size
        shown = number if not inp.chance(16) else inp.int(count + 2)
        next_type = first if number == 1 else 0
        if inp.chance(16):
            next_type = inp.pick((0, first, int(PayloadType.NOTIFY)))
        body_len = cipher.body_length(len(piece))
        fixed = dataclasses.replace(
            header, next_payload=PayloadType.SKF, length=IKE_HEADER_LEN + 8 + body_len
        )
        aad = encode_header(fixed) + skf_header(next_type, shown, total & 0xFFFF, body_len)
        fragments.append(aad + cipher.seal(aad, piece, bytes(cipher.encr.iv_size)))
    order = inp.int(4)
    if order == 1:
        fragments.reverse()
    elif order == 2 and len(fragments) > 1:
        fragments.pop(inp.int(len(fragments)))
    elif order == 3:
        fragments.insert(inp.int(len(fragments) + 1), inp.pick(fragments))
    return fragments


_WORDS: dict[str, Dictionary] = {}


def forge(inp: Input, scenario: Scenario) -> list[bytes]:
    """The datagrams of one hostile, authentic version of the scenario's message."""
    words = _WORDS.get(scenario.name)
    if words is None:
        words = _WORDS[scenario.name] = Dictionary(scenario)
    chain = list(scenario.payloads)
    for _ in range(inp.int(5)):
        before = list(chain)
        _payload_op(inp, scenario, chain, words)
        try:
            encode_payloads(chain)
        except ValueError:
            chain = before  # not expressible on the wire; the raw edits can go further
    if scenario.auth is not None and inp.chance(3):
        _fix_auth(scenario, chain)
    header = scenario.header
    for _ in range(3):
        if not inp.chance(5):
            break
        header = _header_op(inp, header, words)
    try:
        first, encoded = encode_payloads(chain)
    except ValueError:
        first, encoded = encode_payloads(scenario.payloads)
    inner = bytearray(encoded)
    for _ in range(inp.int(4) if inp.chance(3) else 0):
        first = _raw_op(inp, first, inner)
    if scenario.cipher is None:
        fixed = dataclasses.replace(header, next_payload=first, length=IKE_HEADER_LEN + len(inner))
        try:
            return [encode_header(fixed) + bytes(inner)]
        except ValueError:
            return []
    fragment = scenario.fragmented != inp.chance(8)
    try:
        if fragment:
            usual = len(scenario.raw) if scenario.fragmented else 2
            return _seal_skf(inp, header, first, bytes(inner), scenario.cipher, usual)
        return [_seal_sk(header, first, bytes(inner), scenario.cipher)]
    except ValueError:  # a header field out of range
        return []


# ---------------------------------------------------------------------------- invariants


def check_engine(engine: IkeEngine, bystanders: dict[int, tuple[object, ...]]) -> None:
    """What no authenticated message may break (AssertionError otherwise)."""
    by_id = {sa.ike_id: sa for sa in engine.ike_sas()}
    for ike_id, fingerprint in bystanders.items():
        sa = by_id.get(ike_id)
        if sa is None:
            raise AssertionError(f"bystander IKE SA {ike_id} was destroyed")
        if _fingerprint(sa) != fingerprint:
            raise AssertionError(f"bystander IKE SA {ike_id} changed: {_fingerprint(sa)}")
    sas = engine.ike_sas()
    if len(sas) > MAX_IKE_SAS:
        raise AssertionError(f"{len(sas)} IKE SAs after one input")
    for sa in sas:
        if len(sa.children) > MAX_CHILDREN:
            raise AssertionError(f"IKE SA {sa.ike_id}: {len(sa.children)} Child SAs")
        if len(sa.tasks) > MAX_QUEUED:
            raise AssertionError(f"IKE SA {sa.ike_id}: {len(sa.tasks)} queued exchanges")
        if len(sa.timers) > MAX_TIMERS:
            raise AssertionError(f"IKE SA {sa.ike_id}: {len(sa.timers)} timers")
        for reassembler in getattr(sa, "_reassembly", {}).values():
            pending = getattr(reassembler, "_pending", None)
            if pending is not None and pending.size > MAX_REASSEMBLED:
                raise AssertionError(f"IKE SA {sa.ike_id}: {pending.size} octets reassembling")
    half_open = getattr(engine, "_half_open", {})
    if len(half_open) > engine.settings.cookie_threshold + MAX_IKE_SAS:
        raise AssertionError(f"{len(half_open)} half-open IKE SAs")
    if len(engine.drops.counts) > MAX_DROP_REASONS:
        raise AssertionError(f"{len(engine.drops.counts)} drop reasons: {engine.drops.counts}")
    deadline = engine.next_timer()
    if deadline is not None and not deadline == deadline:  # NaN
        raise AssertionError("next_timer() is NaN")


class ReservedSpi(AssertionError):
    """A Child SA announced with an SPI the data plane refuses (0..255, RFC 4303 §2.1)."""


class NoIntegrity(AssertionError):
    """A Child SA announced with a cipher that is not AEAD and no integrity algorithm."""


def check_outputs(engine: IkeEngine) -> list[ev.Datagram]:
    """Every datagram decodes; every Child SA announced is installable and within its
    configuration's traffic selectors."""
    datagrams = engine.take_datagrams()
    for d in datagrams:
        try:
            decode_message(_strip(d))
        except DecodeError as exc:
            raise AssertionError(f"the engine sent an undecodable message: {exc}") from exc
    for event in engine.take_events():
        if not isinstance(event, ev.ChildSaUp):
            continue
        for keys in (event.inbound, event.outbound):
            if not 256 <= keys.spi <= 0xFFFFFFFF:
                raise ReservedSpi(f"Child SA announced with ESP SPI {keys.spi:#x}: {event}")
            if not keys.encr.aead and keys.integ is None:
                raise NoIntegrity(f"Child SA announced without integrity protection: {event}")
        try:
            for keys, kind in ((event.outbound, OutboundSa), (event.inbound, InboundSa)):
                kind(keys.spi, keys.encr, keys.encr_key, keys.integ, keys.integ_key, event.esn)
        except ValueError as exc:
            raise AssertionError(f"Child SA the data plane cannot install: {exc}") from exc
        config = engine.connections[event.connection].children[event.name]
        if not all_within(event.local_ts, config.local_ts) or not all_within(
            event.remote_ts, config.remote_ts
        ):
            raise AssertionError(f"Child SA wider than its configuration: {event}")
    return datagrams


# ---------------------------------------------------------------------------- the target

_DELAYS = (0.5, 1.0, 2.5, 4.5, 11.0, 31.0, 65.0, 300.0)


def _command(inp: Input, engine: IkeEngine, now: float) -> None:
    """A local command on whatever state the input left (as the daemon would issue it)."""
    sas = [sa for sa in engine.ike_sas() if sa.remote[0] != FAR[0]]
    if not sas:
        if inp.bool():
            engine.initiate("c", inp.pick(("net", "web")), LEFT, RIGHT, now)
        return
    sa = inp.pick(sas)
    children = list(sa.children.values())
    op = inp.int(6)
    if op == 0 and children:
        engine.rekey_child(sa.ike_id, inp.pick(children).child_id, now)
    elif op == 1 and children:
        engine.delete_child(sa.ike_id, inp.pick(children).child_id, now)
    elif op == 2:
        engine.rekey_ike(sa.ike_id, now)
    elif op == 3:
        engine.create_child(sa.ike_id, inp.pick(("net", "web")), now)
    elif op == 4:
        engine.terminate(sa.ike_id, now)
    else:
        engine.reauthenticate(sa.ike_id, now)


KNOWN_BUGS: tuple[KnownBug, ...] = ()  # none open: each fixed one has its regression test


def TestOneInput(data: bytes) -> None:
    try:
        one_input(data)
    except Exception as exc:
        if not tolerated(exc, KNOWN_BUGS):
            raise


def one_input(data: bytes) -> None:
    inp = Input(data)
    all_scenarios = scenarios()
    scenario = all_scenarios[inp.byte() % len(all_scenarios)]
    datagrams = forge(inp, scenario)
    receiver: IkeEngine = scenario.receiver.restore()  # type: ignore[assignment]
    local, remote = scenario.local, scenario.remote
    if inp.chance(16):  # the peer behind a new NAT mapping, or another address
        remote = inp.pick(((remote[0], NAT_T), ("192.0.2.77", 4500), FAR, (remote[0], 1701)))
    now = scenario.now + 0.25
    for datagram in datagrams:
        receiver.receive(datagram, local, remote, now)
    if datagrams and inp.chance(8):  # the same again: a retransmission or a replay
        for datagram in datagrams:
            receiver.receive(datagram, local, remote, now)
    out = check_outputs(receiver)
    sender: IkeEngine | None = None
    for _ in range(inp.int(3)):  # at most two more steps: depth costs time per execution
        step = inp.int(3)
        if step == 0:  # let the peers answer each other
            if sender is None:
                sender = scenario.sender.restore()  # type: ignore[assignment]
                assert sender is not None
                sender.take_datagrams()
            _deliver(sender, out, now)
            _deliver(receiver, check_outputs(sender), now)
        elif step == 1:  # time passes: retransmissions, timeouts, rekeys, DPD
            now += inp.pick(_DELAYS)
            receiver.handle_timer(now)
            if sender is not None:
                sender.handle_timer(now)
                _deliver(receiver, check_outputs(sender), now)
        else:
            _command(inp, receiver, now)
        out = check_outputs(receiver)
    check_engine(receiver, scenario.bystanders)
    if sender is not None:
        check_outputs(sender)
        check_engine(sender, _bystanders_of(sender, scenario))


_SENDER_BYSTANDERS: dict[str, dict[int, tuple[object, ...]]] = {}


def _bystanders_of(sender: IkeEngine, scenario: Scenario) -> dict[int, tuple[object, ...]]:
    if scenario.name not in _SENDER_BYSTANDERS:
        original: IkeEngine = scenario.sender.restore()  # type: ignore[assignment]
        _SENDER_BYSTANDERS[scenario.name] = _bystanders(original)
    return _SENDER_BYSTANDERS[scenario.name]


def seeds() -> list[bytes]:
    """One input per scenario: its captured message, delivered unchanged."""
    return [bytes((index,)) for index in range(len(scenarios()))]


if __name__ == "__main__":
    scenarios()
    run_fuzzer(NAME, sys.argv, TestOneInput, logging.INFO, seeds=seeds)
