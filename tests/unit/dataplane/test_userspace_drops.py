"""The userspace data plane's drop statistics survive the Child SAs they were counted on."""

from __future__ import annotations

import os

from petrel.crypto.encr import encr_spec
from petrel.dataplane.tun import TunDevice
from petrel.dataplane.userspace import UserspaceDataplane
from petrel.ike.events import ChildKeys, ChildSaDown, ChildSaUp
from petrel.policy.selectors import Selector
from petrel.wire.registry import EncrId

SPI_IN, SPI_OUT = 0xC0FFEE01, 0xC0FFEE02


def child_up() -> ChildSaUp:
    gcm = encr_spec(EncrId.AES_GCM_16, 128)
    keys = {spi: ChildKeys(spi, gcm, os.urandom(20), None, b"") for spi in (SPI_IN, SPI_OUT)}
    return ChildSaUp(
        ike_id=1,
        child_id=7,
        name="net",
        inbound=keys[SPI_IN],
        outbound=keys[SPI_OUT],
        esn=False,
        replay_window=32,
        local_ts=(Selector.from_cidr("198.51.100.0/24"),),
        remote_ts=(Selector.from_cidr("203.0.113.0/24"),),
        local=("192.0.2.1", 4500),
        remote=("192.0.2.2", 4500),
        encap=True,
    )


def test_drops_on_a_removed_child_sa_stay_counted() -> None:
    later: list = []
    dataplane = UserspaceDataplane(
        tun=TunDevice(-1, "unused0"),  # never opened: every packet is forged
        udp={},
        raw_esp={},
        mtu=1400,
        run_netlink=lambda *_args: None,
        call_later=lambda _delay, fn: later.append(fn),
    )
    dataplane.install(child_up(), 0.0)
    forged = SPI_IN.to_bytes(4, "big") + (1).to_bytes(4, "big") + os.urandom(60)
    dataplane.receive_esp(forged, 1.0)
    dataplane.receive_esp(b"\x00\x00\x00\x09" + bytes(60), 1.0)  # nobody's SPI
    before = dataplane.drop_counts()
    assert before["integrity"] == 1 and sum(before.values()) >= 2

    down = ChildSaDown(1, 7, "net", SPI_IN, SPI_OUT, "rekeyed", linger=5.0)
    dataplane.remove(down, 0.0)
    dataplane.receive_esp(forged[:4] + (2).to_bytes(4, "big") + forged[8:], 2.0)  # lingering
    dataplane.remove(down, 0.0)  # removed again while it lingers: counted once all the same
    for forget in later:
        forget()
    assert not dataplane.children
    after = dataplane.drop_counts()
    assert after["integrity"] == 2
    assert all(after[reason] >= count for reason, count in before.items())
