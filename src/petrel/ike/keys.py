"""Keying of IKE SAs (§2.14, §2.18) and Child SAs (§2.17); NAT detection payloads (§2.23)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable

from ..crypto.kdf import child_keymat, derive_ike_keys, skeyseed, split_child_keymat
from ..crypto.nat import nat_detection_hash
from ..crypto.secrets import zeroize
from ..crypto.sk import SkCipher
from ..wire.payloads import Message, Notify, Payload
from ..wire.registry import NotifyType
from . import events as ev
from .sa import ChildSa, IkeSa


def packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def derive_keys(sa: IkeSa, shared: bytes, random: Callable[[int], bytes]) -> None:
    """SKEYSEED of a new IKE SA from IKE_SA_INIT's shared secret, then its keys; ``random``
    feeds the SK payloads' IVs."""
    alg = sa.algorithms
    assert alg is not None and alg.prf is not None
    key_ike_sa(sa, skeyseed(alg.prf, sa.ni, sa.nr, shared), random)


def key_ike_sa(sa: IkeSa, seed: bytes, random: Callable[[int], bytes]) -> None:
    """SK_d, SK_a, SK_e, SK_p from SKEYSEED (§2.14) and the SK payload ciphers, whose IVs
    come from ``random``."""
    alg = sa.algorithms
    assert alg is not None and alg.prf is not None
    integ_size = alg.integ.key_size if alg.integ else 0
    keys = derive_ike_keys(
        alg.prf, seed, sa.ni, sa.nr, sa.spi_i, sa.spi_r, alg.encr.key_size, integ_size
    )
    sa.keys = keys
    sk_i = SkCipher(alg.encr, keys.sk_ei, alg.integ, keys.sk_ai, random)
    sk_r = SkCipher(alg.encr, keys.sk_er, alg.integ, keys.sk_ar, random)
    sa.sk_out, sa.sk_in = (sk_i, sk_r) if sa.initiator else (sk_r, sk_i)


def child_sa_up(sa: IkeSa, child: ChildSa) -> ev.ChildSaUp:
    """Derive the Child SA keys (§2.17) into the event that installs it; wipes the PFS secret."""
    assert sa.keys is not None and sa.algorithms is not None and sa.algorithms.prf
    alg = child.algorithms
    integ_size = alg.integ.key_size if alg.integ else 0
    keymat = bytearray(
        child_keymat(
            sa.algorithms.prf,
            sa.keys.sk_d,
            child.ni,
            child.nr,
            2 * (alg.encr.key_size + integ_size),
            child.shared,
        )
    )
    zeroize(child.shared)
    child.shared = b""
    # Slices of a bytearray are bytearrays of their own: the data plane zeroes them when the
    # SA is gone (ChildKeys.wipe).
    encr_i, integ_i, encr_r, integ_r = split_child_keymat(keymat, alg.encr.key_size, integ_size)
    zeroize(keymat)
    to_responder = (encr_i, integ_i)
    to_initiator = (encr_r, integ_r)
    # "Initiator" is the initiator of the exchange that created this Child SA (§2.17).
    out_keys, in_keys = (
        (to_responder, to_initiator) if child.we_initiated else (to_initiator, to_responder)
    )
    inbound = ev.ChildKeys(child.spi_in, alg.encr, in_keys[0], alg.integ, in_keys[1])
    outbound = ev.ChildKeys(child.spi_out, alg.encr, out_keys[0], alg.integ, out_keys[1])
    return ev.ChildSaUp(
        sa.ike_id,
        child.child_id,
        child.config.name,
        inbound,
        outbound,
        alg.esn,
        child.config.replay_window,
        child.local_ts,
        child.remote_ts,
        sa.local,
        sa.remote,
        sa.encap,
        child.config.mode,
        child.outbound_active,
        child.config.rekey_bytes,
        child.config.rekey_packets,
        child.config.life_bytes,
        child.config.life_packets,
        sa.name,
    )


def nat_notifies(
    random: Callable[[int], bytes],
    spi_i: bytes,
    spi_r: bytes,
    local: ev.Address,
    remote: ev.Address,
    fake: bool,
) -> list[Notify]:
    src = random(20) if fake else nat_detection_hash(spi_i, spi_r, packed(local[0]), local[1])
    dst = nat_detection_hash(spi_i, spi_r, packed(remote[0]), remote[1])
    return [
        Notify(NotifyType.NAT_DETECTION_SOURCE_IP, src),
        Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, dst),
    ]


def check_nat(sa: IkeSa, message: Message, spi_r: bytes) -> None:
    """NAT detection from the NAT_DETECTION_* notifies of an IKE_SA_INIT message (§2.23)."""
    seen = nat_seen(sa, message.notifies(), spi_r, sa.local, sa.remote)
    if seen is not None:
        sa.nat_local, sa.nat_remote = seen


def reported_address_hash(payloads: Iterable[Payload]) -> bytes:
    """The NAT_DETECTION_DESTINATION_IP a peer sent: the hash of where it saw us, b"" if none."""
    return next(
        (
            p.data
            for p in payloads
            if isinstance(p, Notify) and p.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP
        ),
        b"",
    )


def redo_nat_detection(
    sa: IkeSa, notifies: Iterable[Notify], local: ev.Address, remote: ev.Address
) -> None:
    """NAT detection redone on a MOBIKE path (RFC 4555 §3.5): a NAT found turns UDP
    encapsulation on; once on, it stays on (the section allows either)."""
    seen = nat_seen(sa, notifies, sa.spi_r, local, remote)
    if seen is not None:
        sa.nat_local = sa.nat_local or seen[0]
        sa.nat_remote = sa.nat_remote or seen[1]


def nat_seen(
    sa: IkeSa,
    notifies: Iterable[Notify],
    spi_r: bytes,
    local: ev.Address,
    remote: ev.Address,
) -> tuple[bool, bool] | None:
    """(a NAT in front of us, a NAT in front of the peer) by the NAT_DETECTION_* notifies of
    a message that came from ``remote`` to ``local``; None when it carries none."""
    sources, dests = [], []
    for n in notifies:
        if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP:
            sources.append(n.data)
        elif n.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP:
            dests.append(n.data)
    if not sources and not dests:
        return None
    expect_src = nat_detection_hash(sa.spi_i, spi_r, packed(remote[0]), remote[1])
    expect_dst = nat_detection_hash(sa.spi_i, spi_r, packed(local[0]), local[1])
    nat_remote = bool(sources) and not any(hmac.compare_digest(s, expect_src) for s in sources)
    nat_local = bool(dests) and not any(hmac.compare_digest(d, expect_dst) for d in dests)
    return nat_local, nat_remote
