"""Snapshots as VICI sections, with charon's keys (vici_query.c list_ike/list_child)."""

from __future__ import annotations

from typing import Any

from ..ike.negotiation import Algorithms
from ..wire.registry import EncrId, IntegId, KeId, PrfId, name_of
from .api import ChildSaSnapshot, IkeSaSnapshot

__all__ = ["algorithm_fields", "child_info", "ike_info", "yes"]

# strongSwan spells some algorithm names differently from the IANA registry.
_KE_NAMES = {KeId.CURVE25519: "CURVE_25519", KeId.CURVE448: "CURVE_448"}
_ENCR_NAMES = {EncrId.NULL_AUTH_AES_GMAC: "NULL_AES_GMAC"}


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def algorithm_fields(alg: Algorithms) -> dict[str, str]:
    """encr-alg, encr-keysize, integ-alg, prf-alg, dh-group as strongSwan reports them."""
    encr = EncrId(alg.encr.id) if alg.encr.id in EncrId._value2member_map_ else alg.encr.id
    out = {"encr-alg": _ENCR_NAMES.get(encr, name_of(alg.encr.id, EncrId))}  # type: ignore[call-overload]
    if alg.encr.key_bits:
        out["encr-keysize"] = str(alg.encr.key_bits)
    if alg.integ is not None:
        out["integ-alg"] = name_of(alg.integ.id, IntegId)
    if alg.prf is not None:
        out["prf-alg"] = "PRF_" + name_of(alg.prf.id, PrfId)
    if alg.ke is not None:
        out["dh-group"] = _KE_NAMES.get(alg.ke, alg.ke.name)
    return out


def ike_info(sa: IkeSaSnapshot, children: bool = True) -> dict[str, Any]:
    """An IKE SA's section; with ``children`` its ``child-sas`` (list-sas, not updown)."""
    info: dict[str, Any] = {
        "uniqueid": str(sa.ike_id),
        "version": "2",
        "state": sa.state,
        "local-host": sa.local[0],
        "local-port": str(sa.local[1]),
        "local-id": sa.local_id,
        "remote-host": sa.remote[0],
        "remote-port": str(sa.remote[1]),
        "remote-id": sa.remote_id,
        "initiator": yes(sa.initiator),
        "initiator-spi": sa.spi_i.hex(),
        "responder-spi": sa.spi_r.hex(),
        "nat-local": yes(sa.nat_local),
        "nat-remote": yes(sa.nat_remote),
        "nat-fake": yes(sa.nat_fake),
        "nat-any": yes(sa.encap),
    }
    if sa.algorithms is not None:
        info.update(algorithm_fields(sa.algorithms))
    if sa.established is not None:
        info["established"] = str(sa.established)
    if sa.rekey_time is not None:
        info["rekey-time"] = str(sa.rekey_time)
    if sa.reauth_time is not None:
        info["reauth-time"] = str(sa.reauth_time)
    if sa.remote_vips:
        info["remote-vips"] = list(sa.remote_vips)
    if sa.tasks_queued:
        info["tasks-queued"] = list(sa.tasks_queued)
    if sa.tasks_active:
        info["tasks-active"] = list(sa.tasks_active)
    if children:
        info["child-sas"] = {f"{c.name}-{c.child_id}": child_info(c) for c in sa.children}
    return info


def child_info(child: ChildSaSnapshot) -> dict[str, Any]:
    """A Child SA's section (state, SPIs, algorithms, traffic, lifetimes, selectors)."""
    info: dict[str, Any] = {
        "name": child.name,
        "uniqueid": str(child.child_id),
        "reqid": str(child.child_id),
        "state": child.state,
        "mode": child.mode,
        "protocol": "ESP",
        "encap": yes(child.encap),
        "spi-in": f"{child.spi_in:08x}",
        "spi-out": f"{child.spi_out:08x}",
    }
    info.update(algorithm_fields(child.algorithms))
    info.pop("prf-alg", None)
    if child.algorithms.esn:
        info["esn"] = "1"  # charon sends the key only with ESN; swanctl tests presence
    traffic = child.traffic
    if traffic is not None:
        info["bytes-in"] = str(traffic.bytes_in)
        info["packets-in"] = str(traffic.packets_in)
        if traffic.use_in is not None:
            info["use-in"] = str(traffic.use_in)
        info["bytes-out"] = str(traffic.bytes_out)
        info["packets-out"] = str(traffic.packets_out)
        if traffic.use_out is not None:
            info["use-out"] = str(traffic.use_out)
        info["dropped-in"] = str(traffic.dropped_in)
    if child.rekey_time is not None:
        info["rekey-time"] = str(child.rekey_time)
    if child.life_time is not None:
        info["life-time"] = str(child.life_time)
    info["install-time"] = str(child.install_time)
    info["local-ts"] = [str(s) for s in child.local_ts]
    info["remote-ts"] = [str(s) for s in child.remote_ts]
    return info
