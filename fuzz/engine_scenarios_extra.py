"""The engine target's worlds for newer engine features (see engine_scenarios.py): a gateway
handing out virtual IPs from a pool (RFC 7296 §2.19), MOBIKE address updates (RFC 4555) and
childless IKE SAs (RFC 6023).

Their scenarios follow engine_scenarios' own (``CORE_SCENARIOS``): the order is part of the
input format, so new ones are appended at the end of :func:`extra_scenarios`.  Petrel neither
initiates MOBIKE nor sends a childless IKE_AUTH to a ``childless = never`` responder, so those
messages are made here as the peer would send them: the payloads edited or written by hand and
sealed with the sending IKE SA's own keys.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Snapshot
from engine_scenarios import (
    ATOMIC,
    FAR,
    LEFT,
    NAT_T,
    RIGHT,
    Scenario,
    World,
    _capture,
    _exchange_scenarios,
    _half_way,
    _pump,
    deliver,
    strip_marker,
)

from petrel.crypto.nat import nat_detection_hash
from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine
from petrel.ike.protect import build_protected, open_protected
from petrel.ike.sa import IkeSa
from petrel.wire.codec import decode_message
from petrel.wire.payloads import FLAG_INITIATOR, SA, IkeHeader, Notify, Payload, TSi, TSr
from petrel.wire.registry import ExchangeType, NotifyType

POOL = "10.3.0.0/28"  # the gateway's (right's) virtual IP pool: 10.3.0.1 .. 10.3.0.14
POOL_DNS = "192.0.2.53"
MOVED = ("192.0.2.3", NAT_T)  # where the MOBIKE client (left) moves to
RIGHT_NATT = (RIGHT[0], NAT_T)
COOKIE2 = bytes(range(0x20, 0x30))


# ---------------------------------------------------------------------------- the worlds


def _in_c(text: str, line: str) -> str:
    """``line`` added to connection ``c`` (the only one with a ``dpd_delay``)."""
    anchor = "    dpd_delay = 30s\n"
    assert text.count(anchor) == 1, "connection c changed: find another anchor"
    return text.replace(anchor, f"{anchor}    {line}\n")


def _swap(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not in the configuration once"
    return text.replace(old, new)


def vip_tweak(side: str, text: str) -> str:
    """Left a remote-access client asking for any IPv4 address (its Child SA ``net`` local
    selector ``dynamic``: that address once known), right a gateway handing them out of
    ``pools.p`` (``net``'s remote selector ``dynamic``: the address it gave)."""
    if side == "left":
        text = _in_c(text, "vips = 0.0.0.0")
        return _swap(text, "local_ts = 198.51.100.0/28", "local_ts = dynamic")
    text = _in_c(text, "pools = p")
    text = _swap(text, "remote_ts = 198.51.100.0/28", "remote_ts = dynamic")
    return text + f"pools {{\n  p {{\n    addrs = {POOL}\n    dns = {POOL_DNS}\n  }}\n}}\n"


def childless_force(side: str, text: str) -> str:
    """Both sides initiate and accept only childless IKE SAs."""
    return _in_c(text, "childless = force")


def childless_never(side: str, text: str) -> str:
    """Right refuses childless IKE SAs (and does not announce them); left allows them."""
    return _in_c(text, "childless = never") if side == "right" else text


def _rewritten(
    sender: IkeSa, receiver: IkeSa, datagram: ev.Datagram, payloads: list[Payload]
) -> ev.Datagram:
    """``datagram`` with its protected payloads replaced by ``payloads``, under the same
    header, sealed with the sender's own keys (the peer's message, as that peer sends it)."""
    assert sender.sk_out is not None and receiver.sk_in is not None
    message = strip_marker(datagram)
    marker = datagram.data[: len(datagram.data) - len(message)]  # on port 4500
    data = build_protected(decode_message(message).header, payloads, sender.sk_out)
    return ev.Datagram(marker + data, datagram.local, datagram.remote)


def _opened(receiver: IkeSa, datagram: ev.Datagram) -> list[Payload]:
    assert receiver.sk_in is not None
    data = strip_marker(datagram)
    return list(open_protected(data, decode_message(data), receiver.sk_in))


def _the_sa(engine: IkeEngine) -> IkeSa:
    return next(s for s in engine.ike_sas() if s.name == "c")


def _create_net(w: World, now: float) -> IkeEngine:
    """Left adds a second ``net``: its "dynamic" now means its virtual IP."""
    assert w.left.create_child(w.sa(w.left).ike_id, "net", now)
    return w.left


def _rekey_ike(w: World, now: float) -> IkeEngine:
    """Left rekeys the IKE SA: the gateway moves the lease to the new one."""
    assert w.left.rekey_ike(w.sa(w.left).ike_id, now)
    return w.left


def _vip_scenarios(out: list[Scenario]) -> None:
    w = World("gcm", tweak=vip_tweak)
    auth = _half_way(w)
    out.append(_capture("vip/auth-request", w.left, w.right, w.now, auth))
    deliver(w.right, auth, w.now)
    response = w.right.take_datagrams()
    out.append(_capture("vip/auth-response", w.right, w.left, w.now, response))
    deliver(w.left, response, w.now)
    _pump(w.left, w.right, w.now)
    for engine in (w.left, w.right):
        engine.take_events()
        assert len(engine.child_sas()) == 2, "virtual IP world not established"
    assert w.sa(w.left).local_vips == ("10.3.0.1",), "no virtual IP assigned"
    world = Snapshot(w, ATOMIC)
    _exchange_scenarios(out, "vip/create-child", world, _create_net)
    _exchange_scenarios(out, "vip/rekey-ike", world, _rekey_ike)


def _nat_d(sa: IkeSa, kind: NotifyType, endpoint: tuple[str, int]) -> Notify:
    address = ipaddress.ip_address(endpoint[0]).packed
    return Notify(kind, nat_detection_hash(sa.spi_i, sa.spi_r, address, endpoint[1]))


def _no_nats(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """NO_NATS_ALLOWED data (RFC 4555 §4.2.9): the addresses and ports as sent."""
    addresses = ipaddress.ip_address(source[0]).packed + ipaddress.ip_address(destination[0]).packed
    return addresses + source[1].to_bytes(2, "big") + destination[1].to_bytes(2, "big")


def _mobike_words(sa: IkeSa) -> tuple[bytes, ...]:
    """NAT-D hashes of the endpoints a packet may come from or go to, NO_NATS_ALLOWED data
    for the paths, and the addresses (ADDITIONAL_IP*_ADDRESS)."""
    endpoints = (LEFT, MOVED, RIGHT, RIGHT_NATT, (LEFT[0], NAT_T), ("192.0.2.77", NAT_T), FAR)
    words = [_nat_d(sa, NotifyType.NAT_DETECTION_SOURCE_IP, e).data for e in endpoints]
    words += [_no_nats(MOVED, RIGHT_NATT), _no_nats(LEFT, RIGHT), _no_nats(MOVED, RIGHT)]
    words += [ipaddress.ip_address(e[0]).packed for e in (MOVED, ("2001:db8::3", 0))]
    return (*words, COOKIE2)


def _mobike_scenarios(out: list[Scenario]) -> None:
    """Left (standing in for a MOBIKE client such as charon) announces MOBIKE_SUPPORTED in its
    IKE_AUTH, then moves to 192.0.2.3:4500 and sends UPDATE_SA_ADDRESSES from there (Petrel
    only answers MOBIKE: the update is made here, sealed with left's IKE SA keys)."""
    w = World("gcm")
    (auth,) = _half_way(w)
    left_sa, right_sa = _the_sa(w.left), _the_sa(w.right)
    payloads = _opened(right_sa, auth)
    if Notify(NotifyType.MOBIKE_SUPPORTED) not in payloads:  # (if Petrel does not send it)
        at = next(i for i, p in enumerate(payloads) if isinstance(p, SA))
        payloads.insert(at, Notify(NotifyType.MOBIKE_SUPPORTED))
    auth = _rewritten(left_sa, right_sa, auth, payloads)
    out.append(_capture("mobike/auth-request", w.left, w.right, w.now, [auth]))
    deliver(w.right, [auth], w.now)
    _pump(w.left, w.right, w.now)
    for engine in (w.left, w.right):
        engine.take_events()
        assert len(engine.child_sas()) == 2, "MOBIKE world not established"
    left_sa, right_sa = w.sa(w.left), w.sa(w.right)
    assert right_sa.mobike, "MOBIKE not agreed"
    update: list[Payload] = [
        Notify(NotifyType.UPDATE_SA_ADDRESSES),
        _nat_d(left_sa, NotifyType.NAT_DETECTION_SOURCE_IP, MOVED),
        _nat_d(left_sa, NotifyType.NAT_DETECTION_DESTINATION_IP, RIGHT_NATT),
        Notify(NotifyType.COOKIE2, COOKIE2),
    ]
    header = IkeHeader(
        left_sa.spi_i,
        left_sa.spi_r,
        0,
        ExchangeType.INFORMATIONAL,
        left_sa.next_request_id,
        FLAG_INITIATOR,
    )
    left_sa.next_request_id += 1  # as the client that sent it counts
    assert left_sa.sk_out is not None
    data = bytes(4) + build_protected(header, update, left_sa.sk_out)  # non-ESP marker: 4500
    now = w.now + 1.0
    sent = [ev.Datagram(data, MOVED, RIGHT_NATT)]
    scenario = _capture("mobike/update-request", w.left, w.right, now, sent)
    out.append(dataclasses.replace(scenario, words=_mobike_words(left_sa)))


def _childless_scenarios(out: list[Scenario]) -> None:
    w = World("gcm", tweak=childless_force)
    auth = _half_way(w)  # no SA, TSi, TSr: the Child SA follows in CREATE_CHILD_SA
    out.append(_capture("childless/auth-request", w.left, w.right, w.now, auth))
    deliver(w.right, auth, w.now)
    response = w.right.take_datagrams()
    out.append(_capture("childless/auth-response", w.right, w.left, w.now, response))
    deliver(w.left, response, w.now)
    create = w.left.take_datagrams()
    out.append(_capture("childless/create-child-request", w.left, w.right, w.now, create))
    deliver(w.right, create, w.now)
    out.append(_capture("childless/create-child-response", w.right, w.left, w.now))

    # A childless IKE_AUTH to a responder that refuses them (and did not announce support):
    # left's request without its SA, TSi and TSr (AUTH does not cover them).
    w = World("gcm", tweak=childless_never)
    (auth,) = _half_way(w)
    left_sa, right_sa = _the_sa(w.left), _the_sa(w.right)
    payloads = [p for p in _opened(right_sa, auth) if not isinstance(p, SA | TSi | TSr)]
    auth = _rewritten(left_sa, right_sa, auth, payloads)
    out.append(_capture("childless-never/auth-request", w.left, w.right, w.now, [auth]))


def extra_scenarios(out: list[Scenario]) -> None:
    """Append the scenarios of the newer features to ``out`` (new ones at the end)."""
    _vip_scenarios(out)
    _mobike_scenarios(out)
    _childless_scenarios(out)
