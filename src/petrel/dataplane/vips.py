"""Our virtual IPs on the data plane's TUN device (``vips``, RFC 7296 §2.19): added when the
responder assigns them, before the Child SAs whose routes prefer them as source; removed
when the last IKE SA holding one ends.  A rekeyed IKE SA hands them on."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from .tun import change_address

log = logging.getLogger("petrel.net")


class DeviceAddresses:
    """The virtual IPs on ``ifname``, by the IKE SA that brought them."""

    def __init__(self, ifname: str, run_netlink: Callable[..., object]) -> None:
        self.ifname = ifname
        self.run_netlink = run_netlink
        self.by_ike: dict[int, tuple[str, ...]] = {}
        self.held: Counter[str] = Counter()

    def assign(self, ike_id: int, addresses: tuple[str, ...]) -> None:
        self.released(ike_id)
        self.by_ike[ike_id] = addresses
        for address in addresses:
            if self.held[address] == 0:
                try:
                    self.run_netlink(change_address, "add", self.ifname, address)
                    log.info("virtual IP %s installed on %s", address, self.ifname)
                except Exception as exc:  # the kernel's reason; the SA still works from it
                    log.error("virtual IP %s not installed on %s: %s", address, self.ifname, exc)
            self.held[address] += 1

    def moved(self, old_ike_id: int, new_ike_id: int) -> None:
        if old_ike_id in self.by_ike:
            self.by_ike[new_ike_id] = self.by_ike.pop(old_ike_id)

    def released(self, ike_id: int) -> None:
        for address in self.by_ike.pop(ike_id, ()):
            self.held[address] -= 1
            if self.held[address] > 0:
                continue
            del self.held[address]
            try:
                self.run_netlink(change_address, "del", self.ifname, address)
                log.info("virtual IP %s removed from %s", address, self.ifname)
            except Exception as exc:
                log.warning("virtual IP %s not removed from %s: %s", address, self.ifname, exc)
