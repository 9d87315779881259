"""Network-namespace lab: hosts, links, NAT, loss, captures, strongSwan and Petrel peers.

Used by the end-to-end tests, the benchmarks and ``petrel demo``. Needs root.
"""

from .netns import (
    CHARON,
    DEFAULT_PSK,
    PYTHON,
    Capture,
    CommandFailed,
    Host,
    Lab,
    StrongSwan,
    ping,
    run_in,
    stop_process,
    strongswan_available,
    strongswan_pair_confs,
    swanctl_psk_conf,
    tcp_transfer,
    wait_for,
)
from .petrel_peer import PetrelPeer

__all__ = [
    "CHARON",
    "DEFAULT_PSK",
    "PYTHON",
    "Capture",
    "CommandFailed",
    "Host",
    "Lab",
    "PetrelPeer",
    "StrongSwan",
    "ping",
    "run_in",
    "stop_process",
    "strongswan_available",
    "strongswan_pair_confs",
    "swanctl_psk_conf",
    "tcp_transfer",
    "wait_for",
]
