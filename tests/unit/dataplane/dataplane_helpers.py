"""Shared pieces of the data-plane unit tests: a Child SA event and a plaintext packet."""

from __future__ import annotations

import os
import socket
import struct

from petrel.crypto.encr import encr_spec
from petrel.ike.events import ChildKeys, ChildSaUp
from petrel.policy.selectors import Selector
from petrel.wire.registry import EncrId

LOCAL_TS = (Selector.from_cidr("198.51.100.1/32"),)
REMOTE_TS = (Selector.from_cidr("203.0.113.1/32"),)


def child_up(child_id: int, spi_in: int, spi_out: int, peer: tuple[str, int]) -> ChildSaUp:
    gcm = encr_spec(EncrId.AES_GCM_16, 128)
    return ChildSaUp(
        ike_id=1,
        child_id=child_id,
        name="net",
        inbound=ChildKeys(spi_in, gcm, bytearray(os.urandom(20)), None, b""),
        outbound=ChildKeys(spi_out, gcm, bytearray(os.urandom(20)), None, b""),
        esn=False,
        replay_window=32,
        local_ts=LOCAL_TS,
        remote_ts=REMOTE_TS,
        local=("127.0.0.1", 0),
        remote=peer,
        encap=True,
        connection="c",
    )


def ping_packet() -> bytes:
    """An IPv4 ICMP echo request from the protected local address to the remote one."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        28,
        1,
        0,
        64,
        1,
        0,
        socket.inet_aton("198.51.100.1"),
        socket.inet_aton("203.0.113.1"),
    )
    return header + bytes([8, 0, 0, 0, 0, 1, 0, 1])
