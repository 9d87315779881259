"""The connection and credential model the IKE engine consumes (swanctl.conf's shape).

Built by :mod:`petrel.config.swanctl` from a file, and by the VICI ``load-conn`` and
``load-shared`` commands at run time: both paths produce these same frozen objects.
Defaults and lifetime arithmetic follow strongSwan's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from petrel.credentials.store import CredentialStore
from petrel.crypto.keys import PublicKey
from petrel.crypto.proposals import parse_proposals
from petrel.crypto.x509 import Certificate
from petrel.wire.payloads import Proposal
from petrel.wire.registry import ProtocolId

from .identity import Identity
from .pools import PoolConfig
from .selectors import Selector

__all__ = [
    "AuthConfig",
    "ChildConfig",
    "Connection",
    "SharedSecret",
    "SwanctlConfig",
    "best_psk",
]


def _default_ike() -> tuple[Proposal, ...]:
    return parse_proposals("default", ProtocolId.IKE)


def _default_esp() -> tuple[Proposal, ...]:
    return parse_proposals("default", ProtocolId.ESP)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    """A ``local``/``remote`` section (one authentication round).

    ``auth`` is swanctl's value as written: ``psk``, ``null`` (RFC 7619), or a public-key
    constraint (``pubkey``, ``rsa-3072``, ``ecdsa-sha384``, ``ed25519``, ``rsa/pss``, …);
    ``id`` None means the default (the local address or certificate subject; any remote).
    ``certs``/``cacerts``/``pubkeys`` are the certificates, CAs and raw public keys named by
    the section, loaded; ``revocation`` is strongSwan's strict/ifuri/relaxed."""

    auth: str = "pubkey"
    id: Identity | None = None
    certs: tuple[Certificate, ...] = ()
    cacerts: tuple[Certificate, ...] = ()
    pubkeys: tuple[PublicKey, ...] = ()
    revocation: str = "relaxed"

    @property
    def method(self) -> str:
        """``psk``, ``null`` or ``pubkey``: which authenticator handles this round."""
        value = self.auth.lower()
        return value if value in ("psk", "null") else "pubkey"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildConfig:
    """``connections.<conn>.children.<child>``.  Times in seconds; 0 disables a limit."""

    name: str
    local_ts: tuple[Selector, ...] = (Selector.dynamic_marker(),)
    remote_ts: tuple[Selector, ...] = (Selector.dynamic_marker(),)
    esp_proposals: tuple[Proposal, ...] = field(default_factory=_default_esp)
    mode: str = "tunnel"
    start_action: str = "none"
    close_action: str = "none"
    dpd_action: str = "clear"
    replay_window: int = 32
    rekey_time: float = 3600.0
    life_time: float = 3960.0
    rand_time: float = 360.0
    rekey_bytes: int = 0
    life_bytes: int = 0
    rand_bytes: int = 0
    rekey_packets: int = 0
    life_packets: int = 0
    rand_packets: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """``connections.<conn>``.  ``version`` 0 means "any" (Petrel speaks IKEv2 only)."""

    name: str
    version: int = 0
    local_addrs: tuple[str, ...] = ("%any",)
    remote_addrs: tuple[str, ...] = ("%any",)
    local_port: int = 500
    remote_port: int = 500
    proposals: tuple[Proposal, ...] = field(default_factory=_default_ike)
    encap: bool = False
    keyingtries: int = 1
    local: AuthConfig = field(default_factory=AuthConfig)
    remote: AuthConfig = field(default_factory=AuthConfig)
    children: dict[str, ChildConfig] = field(default_factory=dict)
    dpd_delay: float = 0.0
    dpd_timeout: float = 0.0
    rekey_time: float = 14400.0
    reauth_time: float = 0.0
    over_time: float = 1440.0
    rand_time: float = 1440.0
    fragmentation: str = "yes"
    childless: str = "allow"  # RFC 6023: allow | prefer | force | never (strongSwan's values)
    pools: tuple[str, ...] = ()  # virtual IP pools handed out as responder (swanctl ``pools``)
    vips: tuple[str, ...] = ()  # virtual IPs asked for as initiator (0.0.0.0 / :: = any)
    mobike: bool = True
    unique: str = "no"
    send_cert: str = "ifasked"
    send_certreq: bool = True


@dataclass(frozen=True, slots=True)
class SharedSecret:
    """An ``ike*`` secret and the identities it belongs to (none: any)."""

    ids: tuple[Identity, ...]
    secret: bytes = field(repr=False)

    def score(self, me: Identity | None, peer: Identity | None) -> int:
        """How well this secret fits a pair of identities: 0 no, 1 wildcard (no ids),
        2 ours only, 3 the peer's only, 4 both."""
        if not self.ids:
            return 1
        mine = me is not None and any(i.matches(me) for i in self.ids)
        theirs = peer is not None and any(i.matches(peer) for i in self.ids)
        if not (mine or theirs):
            return 0
        return 1 + int(mine) + 2 * int(theirs)


@dataclass(frozen=True, slots=True)
class SwanctlConfig:
    connections: dict[str, Connection]
    secrets: tuple[SharedSecret, ...] = ()
    credentials: CredentialStore = field(default_factory=CredentialStore, compare=False)
    """Certificates, CAs, CRLs, private and public keys (swanctl's folders beside the file)."""
    pools: dict[str, PoolConfig] = field(default_factory=dict)
    """Virtual IP pools (``pools``), by name."""

    def find_psk(self, me: Identity | None, peer: Identity | None) -> bytes | None:
        """The best-fitting shared secret for ``me`` and ``peer`` (first of equals), or None."""
        return best_psk(self.secrets, me, peer)


def best_psk(
    secrets: Iterable[SharedSecret], me: Identity | None, peer: Identity | None
) -> bytes | None:
    """The shared secret whose owner ids fit ``me`` and ``peer`` best (first of equals)."""
    best, best_score = None, 0
    for secret in secrets:
        score = secret.score(me, peer)
        if score > best_score:
            best, best_score = secret.secret, score
    return best
