"""ike-updown, child-updown, ike-rekey, child-rekey and ike-update events, shaped as charon's
vici_query.c raises them: the IKE SA's section (list_ike) and, for Child SAs, a ``child-sas``
section (``<name>-<uniqueid>`` for updown; ``<name>`` holding ``old`` and ``new`` for a rekey);
``ike-update`` puts the new addresses first (its IKE SA section already shows them, where
charon's still shows the old ones).  ``alert`` names what went wrong with charon's alert
names (authentication, proposals, selectors, a peer not responding, a replaced SA) and the
IKE SA in an ``ike-sa`` section.

A down or rekey event reports an SA the engine has already forgotten: the last snapshot taken
of it is kept here (with its traffic counters read once more while the data plane still holds
it), so those events carry the full SA details too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ..ike import events as ev
from ..wire.registry import NotifyType
from .api import ChildSaSnapshot, ControlHost, IkeSaSnapshot
from .format import child_info, ike_info

__all__ = ["SaEvents"]

Broadcast = Callable[[str, Mapping[str, Any]], None]

_ALERT_ON_DOWN = {
    "peer not responding": "retransmit-send-timeout",
    "replaced after INITIAL_CONTACT": "unique-replace",
    "replaced (unique = replace)": "unique-replace",
}


class SaEvents:
    """Turns the engine's events into VICI events for every registered client."""

    def __init__(self, host: ControlHost, broadcast: Broadcast) -> None:
        self.host = host
        self._broadcast = broadcast
        self._ikes: dict[int, IkeSaSnapshot] = {}
        self._children: dict[int, tuple[int, ChildSaSnapshot]] = {}  # child id → (IKE id, …)

    def ike_name(self, ike_id: int) -> str | None:
        """Name of a live or recently seen IKE SA."""
        cached = self._ikes.get(ike_id)
        return cached.name if cached is not None else self.host.ike_name(ike_id)

    def child_owner(self, child_id: int) -> int | None:
        """The IKE SA of a live or recently seen Child SA."""
        cached = self._children.get(child_id)
        return cached[0] if cached is not None else self.host.child_owner(child_id)

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.IkeSaUp):
            ike = self._ike(event.ike_id)
            if ike is not None:
                self._broadcast("ike-updown", {"up": "yes", ike.name: ike_info(ike, False)})
        elif isinstance(event, ev.ChildSaUp):
            self._child_up(event)
        elif isinstance(event, ev.ChildSaRekeyed):
            self._child_rekeyed(event)
        elif isinstance(event, ev.ChildSaDown):
            self._child_down(event)
        elif isinstance(event, ev.IkeSaRekeyed):
            self._ike_rekeyed(event)
        elif isinstance(event, ev.IkeSaUpdated):
            self._ike_updated(event)
        elif isinstance(event, ev.NegotiationFailed):
            ike = self._ike(event.ike_id) or self._ikes.get(event.ike_id)
            self._alert(_failure_alert(event, ike), ike)
        elif isinstance(event, ev.IkeSaDown):
            ike = self._ike(event.ike_id) or self._ikes.get(event.ike_id)
            self._alert(_ALERT_ON_DOWN.get(event.reason), ike)
            self._ikes.pop(event.ike_id, None)
            self._children = {k: v for k, v in self._children.items() if v[0] != event.ike_id}
            if ike is not None:
                ike = dataclasses.replace(ike, state="DELETING", children=())
                self._broadcast("ike-updown", {ike.name: ike_info(ike, False)})

    # ---------------------------------------------------------------- internals

    def _ike(self, ike_id: int) -> IkeSaSnapshot | None:
        """A fresh snapshot (cached with its children), or None once the engine forgot it."""
        ike = self.host.ike_sa(ike_id)
        if ike is not None:
            self._ikes[ike_id] = ike
            for child in ike.children:
                self._children[child.child_id] = (ike_id, child)
        return ike

    def _last_child(self, child_id: int, state: str) -> ChildSaSnapshot | None:
        cached = self._children.get(child_id)
        if cached is None:
            return None
        traffic = self.host.child_traffic(child_id) or cached[1].traffic
        return dataclasses.replace(cached[1], state=state, traffic=traffic)

    def _child_up(self, event: ev.ChildSaUp) -> None:
        ike = self._ike(event.ike_id)
        child = self._children.get(event.child_id)
        if ike is None or child is None:
            return
        sas = {f"{child[1].name}-{child[1].child_id}": child_info(child[1])}
        section = {**ike_info(ike, False), "child-sas": sas}
        self._broadcast("child-updown", {"up": "yes", ike.name: section})

    def _child_rekeyed(self, event: ev.ChildSaRekeyed) -> None:
        old = self._last_child(event.old_child_id, "REKEYED")
        ike = self._ike(event.ike_id) or self._ikes.get(event.ike_id)
        new = self._children.get(event.new_child_id)
        if ike is None or old is None or new is None:
            return
        pair = {"old": child_info(old), "new": child_info(new[1])}
        section = {**ike_info(ike, False), "child-sas": {old.name: pair}}
        self._broadcast("child-rekey", {ike.name: section})

    def _child_down(self, event: ev.ChildSaDown) -> None:
        old = self._last_child(event.child_id, "DELETED")
        self._children.pop(event.child_id, None)
        if event.reason == "rekeyed" or old is None:
            return  # a rekeyed Child SA is reported by child-rekey only, as charon does
        ike = self._ike(event.ike_id) or self._ikes.get(event.ike_id)
        if ike is None:
            return
        sas = {f"{old.name}-{old.child_id}": child_info(old)}
        section = {**ike_info(ike, False), "child-sas": sas}
        self._broadcast("child-updown", {ike.name: section})

    def _ike_rekeyed(self, event: ev.IkeSaRekeyed) -> None:
        old = self._ike(event.old_ike_id) or self._ikes.get(event.old_ike_id)
        new = self._ike(event.new_ike_id)
        self._ikes.pop(event.old_ike_id, None)
        if old is None or new is None:
            return
        self._broadcast(
            "ike-rekey",
            {old.name: {"old": ike_info(old, False), "new": ike_info(new, False)}},
        )

    def _ike_updated(self, event: ev.IkeSaUpdated) -> None:
        ike = self._ike(event.ike_id)
        if ike is None:
            return
        self._broadcast(
            "ike-update",
            {
                "local-host": event.local[0],
                "local-port": str(event.local[1]),
                "remote-host": event.remote[0],
                "remote-port": str(event.remote[1]),
                ike.name: ike_info(ike, False),
            },
        )

    def _alert(self, kind: str | None, ike: IkeSaSnapshot | None) -> None:
        if kind is None:
            return
        message: dict[str, Any] = {"type": kind}
        if ike is not None:
            message["ike-sa"] = {ike.name: ike_info(ike, False)}
        self._broadcast("alert", message)


def _failure_alert(event: ev.NegotiationFailed, ike: IkeSaSnapshot | None) -> str | None:
    """charon's alert for an error notify sent (``received`` False) or received."""
    notify = int(event.notify)
    if notify == NotifyType.AUTHENTICATION_FAILED:
        return "local-auth-failed" if event.received else "peer-auth-failed"
    if notify == NotifyType.NO_PROPOSAL_CHOSEN:
        established = ike is not None and ike.established is not None
        return "proposal-mismatch-child" if established else "proposal-mismatch-ike"
    if notify == NotifyType.TS_UNACCEPTABLE:
        return "ts-mismatch"
    return None
