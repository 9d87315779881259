"""Structure-aware atheris target for the IKE engine: authentic messages with hostile contents.

Two in-memory :class:`~petrel.ike.engine.IkeEngine` peers (left 192.0.2.1, right 192.0.2.2),
each also holding an established IKE SA with a third peer (the *bystander*, 192.0.2.9), are
driven to a chosen state: before the IKE_SA_INIT response, in IKE_AUTH, established with a
CREATE_CHILD_SA (new Child SA, Child SA rekey, IKE SA rekey, collisions), an INFORMATIONAL
(Delete, liveness, retransmission), with fragmentation on, with AES-GCM and with
AES-CBC+HMAC; and (engine_scenarios_extra.py) a virtual IP client and gateway, a MOBIKE
address update, childless IKE SAs.  Each such *scenario* holds the next message one peer
sent, decrypted with the receiving IKE SA's own keys, and snapshots of both engines.

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
within its configuration ("dynamic" meaning the address it stands for, a virtual IP once
assigned); every virtual IP assigned is an address; a pool's leases are its own, distinct, and
held by as many IKE SAs as they count; the engine's tables stay bounded.

Run:  python3 fuzz/fuzz_engine.py -atheris_runs=100000 [corpus_dir]
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Input, KnownBug, instrumentation, tolerated
from _common import main as run_fuzzer

with instrumentation(__name__, ("petrel.ike", "petrel.policy")):
    from engine_forge import forge
    from engine_scenarios import (
        FAR,
        LEFT,
        NAT_T,
        RIGHT,
        Scenario,
        bystander_fingerprints,
        deliver,
        sa_fingerprint,
        scenarios,
        strip_marker,
    )

    from petrel.esp.sa import InboundSa, OutboundSa
    from petrel.ike import events as ev
    from petrel.ike.engine import IkeEngine
    from petrel.ike.fragment import MAX_REASSEMBLED
    from petrel.policy.selectors import Selector, all_within, resolve_dynamic
    from petrel.wire.codec import decode_message
    from petrel.wire.errors import DecodeError

NAME = "engine"

# Bounds on what one input may leave behind (the engine's per-peer tables).
MAX_IKE_SAS = 12
MAX_CHILDREN = 16
MAX_QUEUED = 16
MAX_TIMERS = 64
MAX_DROP_REASONS = 64


# ---------------------------------------------------------------------------- invariants


def check_engine(engine: IkeEngine, bystanders: dict[int, tuple[object, ...]]) -> None:
    """What no authenticated message may break (AssertionError otherwise)."""
    by_id = {sa.ike_id: sa for sa in engine.ike_sas()}
    for ike_id, fingerprint in bystanders.items():
        sa = by_id.get(ike_id)
        if sa is None:
            raise AssertionError(f"bystander IKE SA {ike_id} was destroyed")
        if sa_fingerprint(sa) != fingerprint:
            raise AssertionError(f"bystander IKE SA {ike_id} changed: {sa_fingerprint(sa)}")
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
    check_pools(engine)


def check_pools(engine: IkeEngine) -> None:
    """Virtual IP leases (the gateway of the virtual IP world): inside their pool, no address
    leased twice, and each online lease counting exactly the IKE SAs of its owner that hold
    it (none leaked when an SA ends or is rekeyed, none handed out twice)."""
    held: dict[tuple[str, str, str], int] = {}
    for sa in engine.ike_sas():
        for name, address in sa.remote_vips:
            key = (name, sa.remote_id, address)
            held[key] = held.get(key, 0) + 1
    for name, pool in engine.pools.items():
        leases = pool.leases()
        addresses = [address for address, _, _ in leases]
        if len(set(addresses)) != len(leases) or not all(map(pool.owns, addresses)):
            raise AssertionError(f"pool {name}: leases {leases}")
        if len(pool.online) > MAX_IKE_SAS:
            raise AssertionError(f"pool {name}: {len(pool.online)} online leases")
        online = {owner: str(address) for address, owner, up in leases if up}
        for owner, (_offset, refs) in pool.online.items():
            count = held.pop((name, owner, online[owner]), 0)
            if count < refs:
                raise LeaseLeak(f"pool {name}: lease of {owner!r} {refs} refs, {count} SAs")
            if count != refs:
                raise AssertionError(f"pool {name}: lease of {owner!r} {refs} refs, {count} SAs")
    if held:
        raise AssertionError(f"IKE SAs hold virtual IPs their pool does not lease: {held}")


class ReservedSpi(AssertionError):
    """A Child SA announced with an SPI the data plane refuses (0..255, RFC 4303 §2.1)."""


class NoIntegrity(AssertionError):
    """A Child SA announced with a cipher that is not AEAD and no integrity algorithm."""


class LeaseLeak(AssertionError):
    """An online virtual IP lease counting more IKE SAs than hold it: one lost its virtual IP,
    so the lease is never released."""


class NotTheVirtualIp(AssertionError):
    """A virtual IP client's Child SA whose local selectors reach beyond the virtual IP it
    was assigned ("dynamic" means that address once known, as charon narrows it)."""


def check_outputs(engine: IkeEngine) -> list[ev.Datagram]:
    """Every datagram decodes; every virtual IP assigned is an address; every Child SA
    announced is installable and within its configuration's traffic selectors."""
    datagrams = engine.take_datagrams()
    for d in datagrams:
        try:
            decode_message(strip_marker(d))
        except DecodeError as exc:
            raise AssertionError(f"the engine sent an undecodable message: {exc}") from exc
    events = engine.take_events()
    vips = {a for e in events if isinstance(e, ev.VirtualIpsAssigned) for a in e.addresses}
    for address in vips:  # the data plane puts them on its device
        try:
            ipaddress.ip_address(address)
        except ValueError as exc:
            raise AssertionError(f"virtual IP the data plane cannot add: {address!r}") from exc
    for event in events:
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
        conn = engine.connections[event.connection]
        config = conn.children[event.name]
        local, remote = _dynamic_hosts(engine, event, vips)
        local_ok = all_within(event.local_ts, _meaning(config.local_ts, local))
        if not local_ok and conn.vips and any(s.dynamic for s in config.local_ts):
            raise NotTheVirtualIp(f"Child SA beyond our virtual IP {sorted(local)}: {event}")
        if not local_ok or not all_within(event.remote_ts, _meaning(config.remote_ts, remote)):
            raise AssertionError(f"Child SA wider than its configuration: {event}")
    return datagrams


# "dynamic" traffic selectors (only the virtual IP world has them: the client's local one, the
# gateway's remote one).  As configured, "dynamic" is a placeholder that contains nothing; the
# engine resolves it to one host address when it makes a Child SA: its own (the peer's) IKE
# address, or the virtual IP once there is one (IkeSa.local_ts_address/remote_ts_address).  The
# check resolves it the same way, so that it still says "no wider than configured" (a single
# host address: the right one) instead of failing every Child SA of that world or skipping it.


def _dynamic_hosts(
    engine: IkeEngine, event: ev.ChildSaUp, assigned: set[str]
) -> tuple[set[str], set[str]]:
    """The addresses "dynamic" may mean for the Child SA of ``event``: (local, remote)."""
    sa = next((s for s in engine.ike_sas() if s.ike_id == event.ike_id), None)
    if sa is not None and sa.local_vips:
        local = set(sa.local_vips)
    elif engine.connections[event.connection].vips:  # asked for: never our IKE address
        # (the IKE SA rekeyed in the same step moved its virtual IPs to the new one)
        local = assigned | {a for s in engine.ike_sas() for a in s.local_vips}
    else:
        local = {event.local[0]}
    if sa is not None and sa.remote_vips:
        remote = {address for _, address in sa.remote_vips}
    else:  # or the peer's lease, moved on by an IKE SA rekey in the same step
        remote = {event.remote[0]}
        remote.update(str(a) for pool in engine.pools.values() for a, _, _ in pool.leases())
    return local, remote


def _meaning(configured: tuple[Selector, ...], hosts: set[str]) -> tuple[Selector, ...]:
    """The configured selectors with "dynamic" resolved to each of ``hosts``."""
    if not any(s.dynamic for s in configured):
        return configured
    out = [s for s in configured if not s.dynamic]
    for host in sorted(hosts):
        out += [s for s in resolve_dynamic(configured, host) if s not in out]
    return tuple(out)


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


KNOWN_BUGS: tuple[KnownBug, ...] = ()  # none open (fuzz/README.md lists those fixed)


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
            deliver(sender, out, now)
            deliver(receiver, check_outputs(sender), now)
        elif step == 1:  # time passes: retransmissions, timeouts, rekeys, DPD
            now += inp.pick(_DELAYS)
            receiver.handle_timer(now)
            if sender is not None:
                sender.handle_timer(now)
                deliver(receiver, check_outputs(sender), now)
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
        _SENDER_BYSTANDERS[scenario.name] = bystander_fingerprints(original)
    return _SENDER_BYSTANDERS[scenario.name]


def seeds() -> list[bytes]:
    """One input per scenario: its captured message, delivered unchanged."""
    return [bytes((index,)) for index in range(len(scenarios()))]


if __name__ == "__main__":
    scenarios()
    run_fuzzer(NAME, sys.argv, TestOneInput, logging.INFO, seeds=seeds)
