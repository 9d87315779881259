"""Network-namespace lab: hosts, links, NAT, loss, captures, strongSwan and Petrel peers.

Used by the end-to-end tests, the benchmarks and ``petrel demo``. Needs root.
"""

from .netns import Capture, Host, Lab
from .petrel_peer import PetrelPeer
from .prerequisites import CHARON, strongswan_available
from .probes import ping, tcp_transfer
from .process import PYTHON, CommandFailed, run_in, stop_process, wait_for
from .strongswan import DEFAULT_PSK, StrongSwan, strongswan_pair_confs, swanctl_psk_conf

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
