"""What the IKE engine reports to its host: datagrams to send and events (sans-I/O outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..crypto.encr import EncrSpec
from ..crypto.integ import IntegSpec
from ..crypto.secrets import zeroize
from ..policy.selectors import Selector
from ..wire.registry import NotifyType

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP datagram to send.  ``data`` already carries the non-ESP marker on port 4500."""

    data: bytes
    local: Address
    remote: Address


@dataclass(frozen=True, slots=True)
class ChildKeys:
    """One direction of a Child SA: SPI and keyed transforms (RFC 7296 §2.17).  The engine
    hands the keys over in buffers of their own, for the data plane to :meth:`wipe` once the
    SA is gone."""

    spi: int
    encr: EncrSpec
    encr_key: bytes | bytearray = field(repr=False)
    integ: IntegSpec | None
    integ_key: bytes | bytearray = field(repr=False)

    def wipe(self) -> None:
        zeroize(self.encr_key, self.integ_key)


@dataclass(frozen=True, slots=True)
class ChildSaUp:
    """A Child SA is negotiated: install it in the data plane."""

    ike_id: int
    child_id: int
    name: str
    inbound: ChildKeys
    outbound: ChildKeys
    esn: bool
    replay_window: int
    local_ts: tuple[Selector, ...]
    remote_ts: tuple[Selector, ...]
    local: Address
    remote: Address
    encap: bool
    mode: str = "tunnel"
    outbound_active: bool = True
    """False for a rekeyed SA's replacement on the responder: receive on it at once, send on it
    only after :class:`ChildSaActivated` (RFC 7296 §2.8, make-before-break)."""
    rekey_bytes: int = 0
    rekey_packets: int = 0
    life_bytes: int = 0
    life_packets: int = 0
    connection: str = ""


@dataclass(frozen=True, slots=True)
class ChildSaActivated:
    """Start sending on a Child SA installed with ``outbound_active=False``."""

    ike_id: int
    child_id: int


@dataclass(frozen=True, slots=True)
class ChildSaDown:
    """A Child SA is gone (deleted by either side or with its IKE SA): remove it.

    ``linger`` > 0 (after a rekey): stop sending on it now, keep receiving for that long so
    packets already in flight still arrive.  ``hold`` > 0 (the peer deleted it without a
    replacement, as strongSwan does before re-creating an expired SA): keep its selectors as
    a hold queue for that long, so that outbound packets wait for a new SA of the same child
    instead of being dropped; never sent without one.
    """

    ike_id: int
    child_id: int
    name: str
    spi_in: int
    spi_out: int
    reason: str
    linger: float = 0.0
    hold: float = 0.0


@dataclass(frozen=True, slots=True)
class ChildSaRekeyed:
    """Child SA ``old_child_id`` was replaced by ``new_child_id`` (RFC 7296 §2.8); its
    :class:`ChildSaDown` follows."""

    ike_id: int
    old_child_id: int
    new_child_id: int
    name: str


@dataclass(frozen=True, slots=True)
class IkeSaUp:
    ike_id: int
    name: str
    local: Address
    remote: Address
    local_id: str
    remote_id: str


@dataclass(frozen=True, slots=True)
class IkeSaDown:
    ike_id: int
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class IkeSaRekeyed:
    """The IKE SA ``old_ike_id`` was replaced by ``new_ike_id``; its Child SAs moved over."""

    old_ike_id: int
    new_ike_id: int
    name: str


@dataclass(frozen=True, slots=True)
class IkeSaUpdated:
    """The peer's address or port changed, or the SA moved to UDP 4500 (RFC 7296 §2.23)."""

    ike_id: int
    local: Address
    remote: Address
    encap: bool


@dataclass(frozen=True, slots=True)
class VirtualIpsAssigned:
    """The responder assigned us these virtual IPs (RFC 7296 §2.19): put them on our device
    before the Child SAs that use them are installed; they go with the IKE SA."""

    ike_id: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TrapRequested:
    """Install a trap policy for this child (dpd_action/close_action = trap)."""

    connection: str
    child: str


@dataclass(frozen=True, slots=True)
class NegotiationFailed:
    """An exchange failed: ``notify`` is the error notify sent or received."""

    ike_id: int
    name: str
    notify: NotifyType | int
    detail: str
    received: bool


@dataclass(frozen=True, slots=True)
class FetchCrl:
    """Fetch the CRL at ``uri`` (``http://`` or ``file://``) and answer with
    ``IkeEngine.crl_fetched`` whatever happens (bounded in time and size by the host)."""

    uri: str


Event = (
    ChildSaUp
    | ChildSaActivated
    | ChildSaDown
    | ChildSaRekeyed
    | IkeSaUp
    | IkeSaDown
    | IkeSaRekeyed
    | IkeSaUpdated
    | VirtualIpsAssigned
    | NegotiationFailed
    | TrapRequested
    | FetchCrl
)
