"""Fail closed: a Child SA whose routes the kernel refuses is not installed (issue 7.6)."""

from __future__ import annotations

import logging

import pytest
from dataplane_helpers import child_up, ping_packet

from petrel.dataplane.tun import TunDevice
from petrel.dataplane.userspace import UserspaceDataplane


def test_child_sa_without_its_route_is_not_installed(caplog: pytest.LogCaptureFixture) -> None:
    """Real netlink: the kernel has no such interface, so the route cannot be added."""
    dataplane = UserspaceDataplane(
        tun=TunDevice(-1, "petrel-none9"),  # never opened, and no such interface exists
        udp={},
        raw_esp={},
        mtu=1400,
    )
    with caplog.at_level(logging.ERROR, logger="petrel.esp"):
        assert not dataplane.install(child_up(1, 0x1001, 0x2001, ("192.0.2.2", 4500)), 0.0)
    assert "CHILD_SA net{1} not installed" in caplog.text
    assert "no interface 'petrel-none9'" in caplog.text
    assert not dataplane.children and not dataplane.by_spi and len(dataplane.spd) == 0
    dataplane.send_plaintext(ping_packet(), 1.0)
    assert dataplane.drop_counts()["outbound_no_policy"] == 1
