"""Virtual IP address pools (swanctl.conf ``pools``), leased to peers by identity.

As charon's in-memory pools: a peer (its IKE identity) gets the address it had before, even
while its previous IKE SA still holds it (reauthentication, a second SA); a released address
stays reserved for its owner ("offline") and goes to someone else only once every address has
been leased; then the oldest offline lease is reassigned first.  A CIDR pool leaves out its
network and broadcast addresses (IPv4, prefixes up to /30).  Memory is bounded by the pool size.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """``pools.<name>``: ``addrs`` (a CIDR subnet, a ``first-last`` range or one address) and
    the attributes handed out with an address (``dns``)."""

    name: str
    first: IpAddress
    last: IpAddress
    dns: tuple[IpAddress, ...] = ()

    @classmethod
    def parse(cls, name: str, addrs: str, dns: tuple[str, ...] = ()) -> PoolConfig:
        """ValueError for anything but one subnet, range or address."""
        text = addrs.strip()
        if "-" in text:
            first_text, _, last_text = text.partition("-")
            first = ipaddress.ip_address(first_text.strip())
            last = ipaddress.ip_address(last_text.strip())
            if first.version != last.version or int(first) > int(last):
                raise ValueError(f"pool range {text!r} is empty or mixes families")
        elif "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            first, last = net[0], net[-1]
            if net.version == 4 and net.prefixlen <= 30:  # no network, no broadcast address
                first, last = net[1], net[-2]
        else:
            first = last = ipaddress.ip_address(text)
        servers = tuple(ipaddress.ip_address(d.strip()) for d in dns if d.strip())
        return cls(name, first, last, servers)

    @property
    def family(self) -> int:
        return self.first.version

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1


@dataclass
class AddressPool:
    """The leases of one pool; pure (no I/O)."""

    config: PoolConfig
    online: dict[str, tuple[int, int]] = field(default_factory=dict)  # owner -> (offset, refs)
    offline: OrderedDict[str, int] = field(default_factory=OrderedDict)  # owner -> offset
    next_unused: int = 0

    def acquire(self, owner: str) -> IpAddress | None:
        """An address for ``owner`` (its own again if it has one), or None when every address
        is leased to someone online."""
        if owner in self.online:
            offset, refs = self.online[owner]
            self.online[owner] = (offset, refs + 1)
            return self._address(offset)
        offset = self.offline.pop(owner, None)
        if offset is None and self.next_unused < self.config.size:
            offset = self.next_unused
            self.next_unused += 1
        if offset is None and self.offline:
            _, offset = self.offline.popitem(last=False)  # the oldest offline lease
        if offset is None:
            return None
        self.online[owner] = (offset, 1)
        return self._address(offset)

    def release(self, owner: str, address: IpAddress) -> None:
        """``owner``'s IKE SA holding ``address`` is gone."""
        held = self.online.get(owner)
        if held is None or self._address(held[0]) != address:
            return
        offset, refs = held
        if refs > 1:
            self.online[owner] = (offset, refs - 1)
            return
        del self.online[owner]
        self.offline[owner] = offset

    def leases(self) -> list[tuple[IpAddress, str, bool]]:
        """(address, owner, online) of every lease, in address order."""
        out = [(self._address(o), owner, True) for owner, (o, _) in self.online.items()]
        out += [(self._address(o), owner, False) for owner, o in self.offline.items()]
        return sorted(out, key=lambda lease: int(lease[0]))

    def owns(self, address: IpAddress) -> bool:
        return address.version == self.config.family and (
            int(self.config.first) <= int(address) <= int(self.config.last)
        )

    def _address(self, offset: int) -> IpAddress:
        return ipaddress.ip_address(int(self.config.first) + offset)
