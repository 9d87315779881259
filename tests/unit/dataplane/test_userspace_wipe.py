"""The data plane zeroes a Child SA's ESP keys once it forgets the SA (issue 9 §4): at
once after a delete, or when a rekeyed SA's inbound half stops lingering."""

from __future__ import annotations

from collections.abc import Callable

from dataplane_helpers import child_up

from petrel.dataplane.tun import TunDevice
from petrel.dataplane.userspace import UserspaceDataplane
from petrel.ike.events import ChildSaDown


def dataplane(later: list[Callable[[], None]]) -> UserspaceDataplane:
    return UserspaceDataplane(
        tun=TunDevice(-1, "unused0"),
        udp={},
        raw_esp={},
        mtu=1400,
        run_netlink=lambda *_args: None,
        call_later=lambda _delay, fn: later.append(fn),
    )


def test_esp_keys_zeroed_when_the_sa_is_removed() -> None:
    later: list[Callable[[], None]] = []
    plane = dataplane(later)
    up = child_up(1, 0x1001, 0x2001, ("127.0.0.1", 4500))
    assert plane.install(up, 0.0)
    plane.remove(ChildSaDown(1, 1, "net", 0x1001, 0x2001, "deleted"), 1.0)
    assert not any(up.inbound.encr_key) and not any(up.outbound.encr_key)


def test_esp_keys_of_a_lingering_sa_zeroed_only_when_it_is_forgotten() -> None:
    later: list[Callable[[], None]] = []
    plane = dataplane(later)
    up = child_up(1, 0x1001, 0x2001, ("127.0.0.1", 4500))
    assert plane.install(up, 0.0)
    plane.remove(ChildSaDown(1, 1, "net", 0x1001, 0x2001, "rekeyed", linger=5.0), 1.0)
    assert any(up.inbound.encr_key)  # still receiving during the linger
    assert plane.by_spi[0x1001].inbound is not None
    (forget,) = later
    forget()
    assert not any(up.inbound.encr_key) and not any(up.outbound.encr_key)
    assert 0x1001 not in plane.by_spi
