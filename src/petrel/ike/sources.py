"""The source a DoS limit counts an IKE_SA_INIT under (RFC 7296 §2.6, RFC 8019 §4).

An IPv4 peer is its address.  An IPv6 peer is its /N network (``ipv6_source_prefix``, 64 by
default): one customer usually holds a whole /64 (RFC 6177) and can send from any of its 2^64
addresses, so per-address half-open limits, blocks and rates would bind no one.  128 counts
each IPv6 address alone, as charon does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceKey:
    """``SourceKey(64)("2001:db8:1:2::7") == "2001:db8:1:2::/64"``; IPv4 comes back as given."""

    ipv6_prefix: int = 64

    def __post_init__(self) -> None:
        if not 1 <= self.ipv6_prefix <= 128:
            raise ValueError(f"IPv6 source prefix /{self.ipv6_prefix} outside 1..128")

    def __call__(self, host: str) -> str:
        if ":" not in host:
            return host
        try:  # socket's own parser: a few µs, this runs for every IKE_SA_INIT of a flood
            packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        except OSError:  # not an address (cannot come from a socket): counted as given
            return host
        shift = 128 - self.ipv6_prefix
        network = (int.from_bytes(packed, "big") >> shift << shift).to_bytes(16, "big")
        return f"{socket.inet_ntop(socket.AF_INET6, network)}/{self.ipv6_prefix}"
