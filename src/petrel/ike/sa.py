"""IKE SA and Child SA state held by the engine (RFC 7296 §2)."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..crypto.kdf import IkeKeys
from ..crypto.sk import SkCipher
from ..policy.connection import ChildConfig, Connection
from ..policy.selectors import Selector
from .events import Address
from .fragment import Reassembler
from .negotiation import Algorithms
from .timers import TimerKey

if TYPE_CHECKING:
    from .crl_wait import AwaitingCrls
    from .task import Task


class IkeState(enum.Enum):
    INIT_SENT = "CONNECTING"  # initiator: IKE_SA_INIT request outstanding
    INIT_DONE = "CONNECTING "  # responder: IKE_SA_INIT answered, waiting for IKE_AUTH
    AUTH_SENT = "CONNECTING  "  # initiator: IKE_AUTH request outstanding
    ESTABLISHED = "ESTABLISHED"
    DELETING = "DELETING"
    DEAD = "DESTROYING"

    @property
    def label(self) -> str:
        return self.value.strip()


class ChildState(enum.StrEnum):
    INSTALLED = "INSTALLED"
    REKEYING = "REKEYING"  # a rekey of ours is queued or in flight
    REKEYED = "REKEYED"  # replaced; its Delete follows
    DELETING = "DELETING"  # our Delete is queued or in flight


@dataclass
class Outstanding:
    """Our request awaiting its response (window size 1, §2.3) and its retransmission state."""

    message_id: int
    data: tuple[bytes, ...]  # the datagrams: one message, or its RFC 7383 fragments
    task: Task  # the exchange's task: it processes the response
    sent_at: float
    next_send: float
    tries: int = 1
    give_up_at: float | None = None  # a liveness check gives up after dpd_timeout

    @property
    def deletes_ike(self) -> bool:
        """The Delete of this IKE SA (§1.4.1)."""
        return self.task.deletes_ike


@dataclass
class ChildSa:
    """A negotiated Child SA pair (one inbound and one outbound ESP SA)."""

    child_id: int
    config: ChildConfig
    spi_in: int
    spi_out: int
    algorithms: Algorithms
    local_ts: tuple[Selector, ...]
    remote_ts: tuple[Selector, ...]
    installed_at: float
    we_initiated: bool
    ni: bytes = field(default=b"", repr=False)
    nr: bytes = field(default=b"", repr=False)
    shared: bytes = field(default=b"", repr=False)  # PFS secret, wiped once keys are derived
    state: ChildState = ChildState.INSTALLED
    outbound_active: bool = True
    replacement: int | None = None  # child id of the SA that replaced this one
    peer_rekey: int | None = None  # child id the peer created to replace this one
    our_rekey: int | None = None  # child id we created to replace this one

    def lowest_nonce(self) -> bytes:
        """The lower of the nonces that created this SA (collision rule, RFC 7296 §2.8.1)."""
        return min(self.ni, self.nr)


@dataclass
class IkeSa:
    """One IKE SA.  Holds only state; the exchange tasks queued on it change it."""

    ike_id: int
    initiator: bool
    spi_i: bytes
    spi_r: bytes
    local: Address
    remote: Address
    state: IkeState
    created_at: float
    connection: Connection | None = None
    candidates: tuple[Connection, ...] = ()
    ni: bytes = b""
    nr: bytes = b""
    ke_group: int = 0
    algorithms: Algorithms | None = None
    keys: IkeKeys | None = field(default=None, repr=False)
    sk_out: SkCipher | None = field(default=None, repr=False)
    sk_in: SkCipher | None = field(default=None, repr=False)
    init_request: bytes = field(default=b"", repr=False)
    init_response: bytes = field(default=b"", repr=False)
    next_request_id: int = 0
    expected_peer_id: int = 0
    outstanding: Outstanding | None = None
    tasks: deque[Task] = field(default_factory=deque)  # waiting for the window (§2.3)
    last_response: tuple[int, tuple[bytes, ...]] | None = field(default=None, repr=False)
    fragmentation: bool = False  # both sides sent IKEV2_FRAGMENTATION_SUPPORTED
    peer_childless: bool = False  # the responder sent CHILDLESS_IKEV2_SUPPORTED (RFC 6023)
    mobike: bool = False  # both sent MOBIKE_SUPPORTED in IKE_AUTH (RFC 4555)
    remote_vips: tuple[tuple[str, str], ...] = ()  # (pool, address) leased to the peer
    local_vips: tuple[str, ...] = ()  # virtual IPs the responder assigned to us
    _reassembly: dict[bool, Reassembler] = field(default_factory=dict, repr=False)
    nat_local: bool = False
    nat_remote: bool = False
    nat_fake: bool = False
    original_initiator: bool = False  # we began the first IKE SA of this lineage (kept on rekey)
    nat_dest_hash: bytes = b""  # the peer's last NAT_DETECTION_DESTINATION_IP (RFC 4555 §3.8)
    request_path: tuple[Address, Address] | None = None  # (local, remote) of the request answered
    local_id: str = ""
    remote_id: str = ""
    established_at: float | None = None
    children: dict[int, ChildSa] = field(default_factory=dict)
    initial_child: str | None = None
    timers: dict[TimerKey, float] = field(default_factory=dict)
    last_peer_activity: float = 0.0
    reauth_of: int | None = None  # the IKE SA this one reauthenticates (make-before-break)
    rekeyed_to: int | None = None  # the IKE SA that replaced this one
    peer_ike_rekey: int | None = None  # IKE SA the peer created to replace this one
    our_ike_rekey: int | None = None
    attempt: int = 1  # keyingtries: which try this initiation is
    peer_hashes: tuple[int, ...] | None = None  # its SIGNATURE_HASH_ALGORITHMS (RFC 7427)
    peer_certreq: tuple[bytes, ...] | None = None  # CA key ids of its CERTREQ (§3.7)
    peer_raw_keys: bool = False  # it sent a CERTREQ for raw public keys (RFC 7670 §3)
    awaiting_crls: AwaitingCrls | None = None  # IKE_AUTH parked while CRLs are fetched
    crl_tried: frozenset[str] = frozenset()  # distribution points fetched for its IKE_AUTH

    def reassembly(self, responses: bool) -> Reassembler:
        """Fragment reassembly state for the peer's requests or for its responses."""
        if responses not in self._reassembly:
            self._reassembly[responses] = Reassembler()
        return self._reassembly[responses]

    @property
    def rekeying_ike(self) -> bool:
        """A rekey of this IKE SA by us is queued or in flight."""
        active = self.outstanding.task if self.outstanding is not None else None
        return any(t.rekeys_ike for t in (active, *self.tasks) if t is not None)

    @property
    def local_ts_address(self) -> str:
        """What our "dynamic" traffic selector means: our virtual IP, else our address."""
        return self.local_vips[0] if self.local_vips else self.local[0]

    @property
    def remote_ts_address(self) -> str:
        """What the peer's "dynamic" traffic selector means: its virtual IP, else its address."""
        return self.remote_vips[0][1] if self.remote_vips else self.remote[0]

    @property
    def encap(self) -> bool:
        """UDP encapsulation in use: a NAT was seen (or faked), or we float to port 4500."""
        return self.nat_local or self.nat_remote or self.nat_fake

    @property
    def name(self) -> str:
        return self.connection.name if self.connection else "(unknown)"
