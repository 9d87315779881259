"""Crashes fuzz/fuzz_engine.py found, each as a small reproducer.

Every case is an *authentic* message (sealed with the IKE SA's own keys, as the peer would)
carrying something a peer must not get away with.  A new case is marked
``xfail(strict=True)`` while its bug is open (with a matching ``KNOWN_BUGS`` entry in
fuzz/fuzz_engine.py); both go when the fix lands.  Fixed: an inverted traffic selector in an
IKE_AUTH response, reserved ESP SPIs (0-255, RFC 4303 §2.1) in either role, and a responder
that drops the INTEG transform we offered.
"""

from __future__ import annotations

import dataclasses

import pytest
from ike_pair import conf, strip

from petrel.config.swanctl import parse_swanctl
from petrel.ike import events as ev
from petrel.ike.engine import IkeEngine
from petrel.ike.protect import build_protected, open_protected
from petrel.wire.codec import decode_message
from petrel.wire.payloads import SA, Payload, TrafficSelector, TSi
from petrel.wire.registry import TransformType, TsType

LEFT = ("192.0.2.1", 500)
RIGHT = ("192.0.2.2", 500)


def _engines(esp: str = "aes256gcm16") -> tuple[IkeEngine, IkeEngine]:
    left = parse_swanctl(
        conf(LEFT[0], RIGHT[0], "left", "right", "198.51.100.0/24", "203.0.113.0/24", esp=esp)
    )
    right = parse_swanctl(
        conf(RIGHT[0], LEFT[0], "right", "left", "203.0.113.0/24", "198.51.100.0/24", esp=esp)
    )
    return (
        IkeEngine(left.connections, left.secrets),
        IkeEngine(right.connections, right.secrets),
    )


def _deliver(dst: IkeEngine, src: IkeEngine, now: float) -> None:
    for d in src.take_datagrams():
        dst.receive(strip(d.data), d.remote, d.local, now)


def _established() -> tuple[IkeEngine, IkeEngine]:
    left, right = _engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    for _ in range(4):
        _deliver(right, left, 0.0)
        _deliver(left, right, 0.0)
    assert len(left.child_sas()) == 1 and len(right.child_sas()) == 1
    left.take_events()
    right.take_events()
    return left, right


def _reseal(data: bytes, receiver: IkeEngine, edit) -> bytes:
    """``data`` (one SK message to ``receiver``) with its inner payloads edited, sealed again
    with the keys of the receiver's IKE SA, so that it still authenticates."""
    data = strip(data)
    message = decode_message(data)
    header = message.header
    (sa,) = [s for s in receiver.ike_sas() if (s.spi_i, s.spi_r) == (header.spi_i, header.spi_r)]
    assert sa.sk_in is not None
    payloads = list(open_protected(data, message, sa.sk_in))
    return build_protected(header, edit(payloads), sa.sk_in)


def _with_spi(payloads: list[Payload], spi: bytes) -> list[Payload]:
    out: list[Payload] = []
    for payload in payloads:
        if isinstance(payload, SA):
            proposals = tuple(dataclasses.replace(p, spi=spi) for p in payload.proposals)
            payload = SA(proposals)
        out.append(payload)
    return out


def test_auth_response_with_inverted_ts() -> None:
    """IKE_AUTH response whose TSi has start address > end address (fuzz_engine, scenario
    gcm/auth-response): the initiator must refuse the Child SA, not raise."""
    left, right = _engines()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    _deliver(right, left, 0.0)  # IKE_SA_INIT request
    _deliver(left, right, 0.0)  # IKE_SA_INIT response; left sends IKE_AUTH
    _deliver(right, left, 0.0)  # IKE_AUTH request; right answers
    (response,) = right.take_datagrams()
    inverted = TrafficSelector(
        TsType.IPV4_ADDR_RANGE, 0, 0, 65535, bytes((198, 51, 100, 200)), bytes((198, 51, 100, 1))
    )

    def invert(payloads: list[Payload]) -> list[Payload]:
        return [TSi((inverted,)) if isinstance(p, TSi) else p for p in payloads]

    left.receive(_reseal(response.data, left, invert), response.remote, response.local, 0.0)
    events = left.take_events()
    assert not [e for e in events if isinstance(e, ev.ChildSaUp)]
    assert [e for e in events if isinstance(e, ev.NegotiationFailed)]


@pytest.mark.parametrize("spi", [0, 1, 255])
@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_reserved_child_spi_is_refused(side: str, spi: int) -> None:
    """CREATE_CHILD_SA whose SA payload names an SPI below 256 (fuzz_engine, scenario
    gcm/create-child-response): no Child SA may be announced with it."""
    left, right = _established()
    (sa,) = left.ike_sas()
    assert left.create_child(sa.ike_id, "net", 1.0)
    (request,) = left.take_datagrams()
    low = spi.to_bytes(4, "big")
    if side == "responder":
        data = _reseal(request.data, right, lambda p: _with_spi(p, low))
        right.receive(data, request.remote, request.local, 1.0)
        announced = right.take_events()
    else:
        right.receive(strip(request.data), request.remote, request.local, 1.0)
        (response,) = right.take_datagrams()
        data = _reseal(response.data, left, lambda p: _with_spi(p, low))
        left.receive(data, response.remote, response.local, 1.0)
        announced = left.take_events()
    ups = [e for e in announced if isinstance(e, ev.ChildSaUp)]
    assert all(up.outbound.spi >= 256 and up.inbound.spi >= 256 for up in ups), ups


def _without_integrity(payloads: list[Payload]) -> list[Payload]:
    out: list[Payload] = []
    for payload in payloads:
        if isinstance(payload, SA):
            proposals = []
            for p in payload.proposals:
                kept = tuple(t for t in p.transforms if t.type != TransformType.INTEG)
                proposals.append(dataclasses.replace(p, transforms=kept))
            payload = SA(tuple(proposals))
        out.append(payload)
    return out


@pytest.mark.parametrize("exchange", ["IKE_AUTH", "CREATE_CHILD_SA"])
def test_chosen_proposal_without_integrity(exchange: str) -> None:
    """A responder answers with ENCR AES-CBC alone (fuzz_engine, scenario
    cbc/rekey-child-by-right-response): the initiator must refuse the Child SA."""
    left, right = _engines(esp="aes128-sha256")
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    _deliver(right, left, 0.0)  # IKE_SA_INIT
    _deliver(left, right, 0.0)
    _deliver(right, left, 0.0)  # IKE_AUTH request
    if exchange == "CREATE_CHILD_SA":
        _deliver(left, right, 0.0)
        left.take_events()
        (sa,) = left.ike_sas()
        assert left.create_child(sa.ike_id, "net", 1.0)
        _deliver(right, left, 1.0)
    (response,) = right.take_datagrams()
    data = _reseal(response.data, left, _without_integrity)
    left.receive(data, response.remote, response.local, 1.0)
    ups = [e for e in left.take_events() if isinstance(e, ev.ChildSaUp)]
    assert all(up.outbound.encr.aead or up.outbound.integ is not None for up in ups), ups
