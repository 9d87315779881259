"""The narrow seam between the VICI handlers and the daemon (DESIGN.md, "a new control command").

Handlers read frozen snapshots — IKE SA, Child SA, traffic, counters — and issue commands
through :class:`ControlHost`; they never see the engine's or the data plane's objects.  The
daemon implements the protocol; ``petrel.control`` never imports ``petrel.daemon``, the engine
(``petrel.ike.engine``/``sa``/``services``) or ``petrel.dataplane``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..credentials.store import CredentialStore
from ..ike.negotiation import Algorithms
from ..policy.connection import Connection, SharedSecret
from ..policy.pools import PoolConfig
from ..policy.selectors import Selector

__all__ = [
    "ChildSaSnapshot",
    "ControlHost",
    "IkeSaSnapshot",
    "TrafficSnapshot",
    "TrapPolicy",
]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TrafficSnapshot:
    """Data-plane counters of one Child SA; ``use_*`` are seconds since the last packet."""

    bytes_in: int = 0
    packets_in: int = 0
    bytes_out: int = 0
    packets_out: int = 0
    dropped_in: int = 0
    use_in: int | None = None
    use_out: int | None = None


@dataclass(frozen=True, slots=True)
class ChildSaSnapshot:
    """One Child SA as list-sas and the child-updown/child-rekey events show it (RFC 4301
    §4.4.2 SAD entry fields).  ``traffic`` is None while the data plane does not carry it."""

    name: str
    child_id: int
    state: str
    mode: str
    spi_in: int
    spi_out: int
    encap: bool
    algorithms: Algorithms
    local_ts: tuple[Selector, ...]
    remote_ts: tuple[Selector, ...]
    install_time: int
    rekey_time: int | None = None
    life_time: int | None = None
    traffic: TrafficSnapshot | None = None


@dataclass(frozen=True, slots=True)
class IkeSaSnapshot:
    """One IKE SA (RFC 7296 §2) with its Child SAs; times are seconds (elapsed or to come)."""

    name: str
    ike_id: int
    state: str
    local: Address
    remote: Address
    local_id: str
    remote_id: str
    initiator: bool
    spi_i: bytes
    spi_r: bytes
    nat_local: bool
    nat_remote: bool
    nat_fake: bool
    encap: bool
    algorithms: Algorithms | None
    established: int | None = None
    rekey_time: int | None = None
    reauth_time: int | None = None
    tasks_queued: tuple[str, ...] = ()
    tasks_active: tuple[str, ...] = ()
    children: tuple[ChildSaSnapshot, ...] = field(default=())
    remote_vips: tuple[str, ...] = ()  # virtual IPs we leased to the peer


@dataclass(frozen=True, slots=True)
class TrapPolicy:
    """An installed trap policy (``start_action = trap`` or ``install``)."""

    connection: str
    child: str
    local_ts: tuple[Selector, ...]
    remote_ts: tuple[Selector, ...]


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """A virtual IP pool (``get-pools``): its first address, size and leases."""

    name: str
    base: str
    size: int
    leases: tuple[tuple[str, str, bool], ...] = ()  # (address, owner identity, online)

    @property
    def online(self) -> int:
        return sum(1 for lease in self.leases if lease[2])

    @property
    def offline(self) -> int:
        return len(self.leases) - self.online


class ControlHost(Protocol):
    """What the VICI handlers may read and do; implemented by the daemon."""

    # ---- queries (snapshots)
    def now(self) -> float: ...
    def uptime(self) -> float: ...
    def has_timers(self) -> bool: ...
    def ike_sas(self) -> list[IkeSaSnapshot]: ...
    def ike_sa(self, ike_id: int) -> IkeSaSnapshot | None: ...
    def ike_name(self, ike_id: int) -> str | None: ...
    def child_owner(self, child_id: int) -> int | None: ...
    def child_traffic(self, child_id: int) -> TrafficSnapshot | None: ...
    def connections(self) -> Mapping[str, Connection]: ...
    def ike_drops(self) -> Mapping[str, int]: ...
    def esp_drops(self) -> Mapping[str, int]: ...
    def message_counts(self) -> Mapping[str | None, Mapping[str, int]]: ...
    def trap_policies(self) -> list[TrapPolicy]: ...
    def config_credentials(self) -> tuple[CredentialStore, tuple[SharedSecret, ...]]: ...
    def credential_store(self) -> CredentialStore: ...

    # ---- commands
    def initiate(self, conn_name: str, child_name: str | None) -> int: ...
    def initiate_child(self, child_name: str) -> int: ...
    def terminate(self, ike_ids: Iterable[int]) -> int: ...
    def delete_child(self, ike_id: int, child_id: int) -> bool: ...
    def rekey_child(self, ike_id: int, child_id: int) -> bool: ...
    def rekey_ike(self, ike_id: int, reauth: bool) -> bool: ...
    def load_connection(self, conn: Connection) -> str: ...
    def pools(self) -> list[PoolSnapshot]: ...
    def load_pool(self, pool: PoolConfig) -> str | None: ...
    def unload_pool(self, name: str) -> str | None: ...
    def unload_connection(self, name: str) -> bool: ...
    def set_credentials(self, store: CredentialStore, secrets: Sequence[SharedSecret]) -> None: ...
    def install_policy(self, child_name: str, conn_name: str | None = None) -> str | None: ...
    def uninstall_policy(self, child_name: str, conn_name: str | None = None) -> bool: ...
