"""A Child SA the peer deleted without a replacement holds its outbound traffic for a while:
a peer that deletes an expired SA and re-creates it at once (strongSwan's hard expiry) then
loses nothing on our side, and nothing leaves without an SA meanwhile.

Real loopback UDP sockets carry the ESP; a second socket stands in for the peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dataplane_helpers import child_up, ping_packet

from petrel.dataplane.sockets import DatagramEndpoint, open_udp
from petrel.dataplane.tun import TunDevice
from petrel.dataplane.userspace import UserspaceDataplane
from petrel.ike.events import ChildSaDown


@pytest.fixture
def lanes() -> Iterator[tuple[UserspaceDataplane, DatagramEndpoint]]:
    ours, peer = open_udp("127.0.0.1", 0), open_udp("127.0.0.1", 0)
    dataplane = UserspaceDataplane(
        tun=TunDevice(-1, "unused0"),  # never opened: nothing is written back here
        udp={("127.0.0.1", 0): ours},
        raw_esp={},
        mtu=1400,
        run_netlink=lambda *_args: None,
        call_later=lambda _delay, fn: fn(),
    )
    yield dataplane, peer
    ours.close()
    peer.close()


def spis_received(peer: DatagramEndpoint) -> list[int]:
    return [int.from_bytes(data[:4], "big") for data, _src, _dst in peer.recv_batch()]


def test_traffic_waits_for_the_peers_new_sa(lanes) -> None:  # type: ignore[no-untyped-def]
    dataplane, peer = lanes
    dataplane.install(child_up(1, 0x1001, 0x2001, peer.local), 0.0)
    dataplane.send_plaintext(ping_packet(), 1.0)
    assert spis_received(peer) == [0x2001]
    dataplane.remove(ChildSaDown(1, 1, "net", 0x1001, 0x2001, "deleted by peer", hold=2.0), 5.0)
    for _ in range(3):
        dataplane.send_plaintext(ping_packet(), 5.001)
    assert spis_received(peer) == []  # held: no SA, so nothing leaves
    dataplane.install(child_up(2, 0x1002, 0x2002, peer.local), 5.01)
    assert spis_received(peer) == [0x2002] * 3  # delivered on the new SA, in order
    dataplane.send_plaintext(ping_packet(), 5.02)
    assert spis_received(peer) == [0x2002]
    assert not dataplane.traps  # the hold is gone with the new SA
    assert dataplane.drop_counts()["outbound_no_policy"] == 0


def test_a_hold_expires_and_drops_what_it_held(lanes) -> None:  # type: ignore[no-untyped-def]
    dataplane, peer = lanes
    dataplane.install(child_up(1, 0x1001, 0x2001, peer.local), 0.0)
    dataplane.remove(ChildSaDown(1, 1, "net", 0x1001, 0x2001, "deleted by peer", hold=2.0), 5.0)
    dataplane.send_plaintext(ping_packet(), 6.0)
    dataplane.poll(6.9)
    assert dataplane.traps  # still within the hold
    dataplane.poll(7.1)
    assert not dataplane.traps
    dataplane.send_plaintext(ping_packet(), 9.2)
    counts = dataplane.drop_counts()
    assert counts["outbound_hold_expired"] == 1 and counts["outbound_no_policy"] == 1
    assert spis_received(peer) == []


def test_no_hold_after_a_rekey_or_our_own_delete(lanes) -> None:  # type: ignore[no-untyped-def]
    dataplane, peer = lanes
    dataplane.install(child_up(1, 0x1001, 0x2001, peer.local), 0.0)
    dataplane.remove(ChildSaDown(1, 1, "net", 0x1001, 0x2001, "deleted"), 1.0)
    dataplane.send_plaintext(ping_packet(), 1.5)
    assert not dataplane.traps
    assert dataplane.drop_counts()["outbound_no_policy"] == 1
    assert spis_received(peer) == []
