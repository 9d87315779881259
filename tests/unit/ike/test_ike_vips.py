"""Virtual IPs from pools as responder (RFC 7296 §2.19, §3.15), two engines in memory.

Petrel does not request virtual IPs as initiator, so left's IKE_AUTH request is rewritten
into a remote-access client's: CP(CFG_REQUEST) for an address, TSi 0.0.0.0/0.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from ike_pair import LEFT, RIGHT, conf, engine_of, opened, pump, rewrite, strip

from petrel.ike.engine import IkeEngine
from petrel.ike.sa import IkeSa
from petrel.wire.payloads import CP, ConfigAttribute, Notify, Payload, TrafficSelector, TSi
from petrel.wire.registry import CfgAttr, CfgType, NotifyType, TsType

POOL = """
pools {
  p {
    addrs = 198.51.100.128/30
    dns = 192.0.2.53
  }
}
"""
ANY4 = TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, bytes(4), b"\xff" * 4)


def gateway(pool: str = POOL) -> IkeEngine:
    text = conf(
        "192.0.2.2", "192.0.2.1", "right", "left", "203.0.113.1/32", "dynamic", extra="pools = p"
    )
    return engine_of(text + pool)


def client() -> IkeEngine:
    return engine_of(
        conf("192.0.2.1", "192.0.2.2", "left", "right", "198.51.100.1/32", "203.0.113.1/32")
    )


def _sa(engine: IkeEngine) -> IkeSa:
    (sa,) = engine.ike_sas()
    return sa


def as_vip_client(payloads: list[Payload]) -> list[Payload]:
    request = CP(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),))
    edited = [TSi((ANY4,)) if isinstance(p, TSi) else p for p in payloads]
    return [request, *edited]


def edited_auth(
    left: IkeEngine,
    right: IkeEngine,
    edit: Callable[[list[Payload]], list[Payload]],
    now: float = 0.0,
) -> list[bytes]:
    """IKE_SA_INIT both ways, then left's IKE_AUTH request with ``edit`` applied (sealed with
    left's keys) to right; returns right's answer."""
    left.initiate("c", "net", LEFT, RIGHT, now)
    for src, dst in ((left, right), (right, left)):
        for d in src.take_datagrams():
            dst.receive(strip(d.data), d.remote, d.local, now)
    left_sa = next(sa for sa in left.ike_sas() if sa.established_at is None)
    right_sa = next(sa for sa in right.ike_sas() if sa.established_at is None)
    (auth,) = [strip(d.data) for d in left.take_datagrams()]
    right.receive(rewrite(left_sa, right_sa, auth, edit), RIGHT, LEFT, now)
    return [strip(d.data) for d in right.take_datagrams()]


def connect(
    left: IkeEngine, right: IkeEngine, now: float = 0.0, deliver: bool = False
) -> list[Payload]:
    """IKE_SA_INIT, then left's IKE_AUTH as a VIP client's; returns right's answer, which
    left gets when ``deliver`` (it then refuses the Child SA: it proposed other selectors)."""
    (answer,) = edited_auth(left, right, as_vip_client, now)
    left_sa = next(sa for sa in left.ike_sas() if sa.established_at is None)
    _, payloads = opened(left_sa, answer)
    if deliver:
        left.receive(answer, LEFT, RIGHT, now)
        pump(left, right, now)
    return list(payloads)


def test_rfc7296_2_19_address_and_dns_from_the_pool_and_dynamic_ts_is_the_vip() -> None:
    right = gateway()
    answer = connect(client(), right)
    (cp,) = [p for p in answer if isinstance(p, CP)]
    assert cp.cfg_type == CfgType.CFG_REPLY
    values = {int(a.type): a.value for a in cp.attributes}
    assert values[CfgAttr.INTERNAL_IP4_ADDRESS] == ipaddress.ip_address("198.51.100.129").packed
    assert values[CfgAttr.INTERNAL_IP4_DNS] == ipaddress.ip_address("192.0.2.53").packed
    (tsi,) = [p for p in answer if isinstance(p, TSi)]
    assert [(t.start_addr, t.end_addr) for t in tsi.selectors] == [
        (bytes([198, 51, 100, 129]),) * 2
    ]
    sa = _sa(right)
    assert sa.remote_vips == (("p", "198.51.100.129"),)
    ((_, child),) = right.child_sas()
    assert [str(s) for s in child.remote_ts] == ["198.51.100.129/32"]


def test_a_returning_peer_gets_its_address_again_and_leases_are_released() -> None:
    right = gateway()
    connect(client(), right)
    sa = _sa(right)
    right.terminate(sa.ike_id, 1.0)
    pump(client(), right, 1.0)  # nothing to answer: the SA is gone on our side anyway
    assert right.ike_sas() == [] or all(s.remote_vips == () for s in right.ike_sas())
    connect(client(), right, 2.0)
    again = next(s for s in right.ike_sas() if s.established_at is not None)
    assert again.remote_vips == (("p", "198.51.100.129"),)


def test_an_exhausted_pool_answers_internal_address_failure_without_a_child() -> None:
    right = gateway(POOL.replace("198.51.100.128/30", "198.51.100.129"))
    right._ctx.pools["p"].acquire("someone else")  # the only address is online elsewhere
    answer = connect(client(), right)
    notifies = [int(p.notify_type) for p in answer if isinstance(p, Notify)]
    assert NotifyType.INTERNAL_ADDRESS_FAILURE in notifies
    assert not [p for p in answer if isinstance(p, CP | TSi)]
    assert right.child_sas() == [] and _sa(right).established_at is not None


def test_without_pools_the_request_is_not_answered_with_an_address() -> None:
    right = engine_of(
        conf("192.0.2.2", "192.0.2.1", "right", "left", "203.0.113.1/32", "0.0.0.0/0")
    )
    answer = connect(client(), right)
    assert not [p for p in answer if isinstance(p, CP)]
    assert right.child_sas()  # an ordinary Child SA for the selectors asked


def test_ike_sa_rekey_moves_the_leases() -> None:
    left, right = client(), gateway()
    connect(left, right, deliver=True)
    sa = _sa(right)
    right.rekey_ike(sa.ike_id, 5.0)
    pump(left, right, 5.0)
    new = _sa(right)
    assert new.ike_id != sa.ike_id
    assert new.remote_vips == (("p", "198.51.100.129"),)
    assert sa.remote_vips == ()


# ---------------------------------------------------------------------- as initiator (vips)


def vip_client(vips: str = "0.0.0.0") -> IkeEngine:
    text = conf(
        "192.0.2.1",
        "192.0.2.2",
        "left",
        "right",
        "dynamic",
        "203.0.113.1/32",
        extra=f"vips = {vips}",
    )
    return engine_of(text)


def test_rfc7296_2_19_petrel_client_asks_gets_and_uses_its_virtual_ip() -> None:
    left, right = vip_client(), gateway()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    for src, dst in ((left, right), (right, left)):
        for d in src.take_datagrams():
            dst.receive(strip(d.data), d.remote, d.local, 0.0)
    (auth,) = [strip(d.data) for d in left.take_datagrams()]
    _, request = opened(_sa(right), auth)
    (cp,) = [p for p in request if isinstance(p, CP)]
    assert cp.cfg_type == CfgType.CFG_REQUEST
    assert [(int(a.type), a.value) for a in cp.attributes] == [(CfgAttr.INTERNAL_IP4_ADDRESS, b"")]
    (tsi,) = [p for p in request if isinstance(p, TSi)]
    assert tsi.selectors == (ANY4,)  # the whole range while the address is unknown
    right.receive(auth, RIGHT, LEFT, 0.0)
    pump(left, right)
    sa = _sa(left)
    assert sa.local_vips == ("198.51.100.129",)
    events = left.take_events()
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("VirtualIpsAssigned") < kinds.index("ChildSaUp")  # address first
    (_, child) = left.child_sas()[0]
    assert [str(s) for s in child.local_ts] == ["198.51.100.129/32"]
    right.rekey_ike(_sa(right).ike_id, 5.0)
    pump(left, right, 5.0)
    new = _sa(left)
    assert new.ike_id != sa.ike_id and new.local_vips == ("198.51.100.129",)
    left.create_child(new.ike_id, "net", 6.0)  # a second Child SA: dynamic means the VIP now
    pump(left, right, 6.0)
    assert {str(c.local_ts[0]) for _, c in left.child_sas()} == {"198.51.100.129/32"}


def test_no_virtual_ip_in_the_answer_ends_the_ike_sa() -> None:
    right = engine_of(
        conf("192.0.2.2", "192.0.2.1", "right", "left", "203.0.113.1/32", "0.0.0.0/0")
    )  # no pools: answers without a CP
    left = vip_client()
    left.initiate("c", "net", LEFT, RIGHT, 0.0)
    pump(left, right)
    events = left.take_events()
    failed = [e for e in events if type(e).__name__ == "NegotiationFailed"]
    assert [int(e.notify) for e in failed] == [int(NotifyType.FAILED_CP_REQUIRED)]
    assert left.child_sas() == [] and left.ike_sas() == []


POOL6 = """
pools {
  p6 {
    addrs = 2001:db8:5::/126
  }
}
"""


def test_ipv6_virtual_ip_with_its_prefix_length() -> None:
    text = conf(
        "192.0.2.2", "192.0.2.1", "right", "left", "203.0.113.1/32", "dynamic", extra="pools = p6"
    )
    right = engine_of(text + POOL6)
    left = client()
    ask = CP(CfgType.CFG_REQUEST, (ConfigAttribute(CfgAttr.INTERNAL_IP6_ADDRESS),))
    (answer,) = edited_auth(left, right, lambda p: [ask, *p])
    left_sa, right_sa = _sa(left), _sa(right)
    _, payloads = opened(left_sa, answer)
    (cp,) = [p for p in payloads if isinstance(p, CP)]
    (attribute,) = cp.attributes
    assert attribute.type == CfgAttr.INTERNAL_IP6_ADDRESS
    assert attribute.value == ipaddress.ip_address("2001:db8:5::").packed + bytes((128,))
    assert right_sa.remote_vips == (("p6", "2001:db8:5::"),)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 0x7FFF), st.binary(max_size=24)), min_size=0, max_size=6),
    st.sampled_from([CfgType.CFG_REQUEST, CfgType.CFG_REPLY, CfgType.CFG_SET, 77]),
)
def test_hostile_configuration_payloads_never_break_the_gateway(
    attributes: list[tuple[int, bytes]], cfg_type: int
) -> None:
    right = gateway()
    hostile = CP(cfg_type, tuple(ConfigAttribute(t, v) for t, v in attributes))
    assert edited_auth(client(), right, lambda p: [hostile, *p])  # answered
    pool = right._ctx.pools["p"]
    assert len(pool.online) <= 1 and all(pool.owns(a) for a, _, _ in pool.leases())
