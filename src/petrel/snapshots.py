"""Frozen snapshots of the engine's SAs and the data plane's counters for the control socket.

The daemon side of the seam in :mod:`petrel.control.api`: the only place that reads
:class:`~petrel.ike.sa.IkeSa` and the data plane on behalf of VICI handlers.
"""

from __future__ import annotations

import re

from .control.api import ChildSaSnapshot, IkeSaSnapshot, TrafficSnapshot
from .dataplane.userspace import InstalledChild
from .ike.sa import ChildSa, IkeSa
from .ike.task import Task
from .ike.timers import REAUTH, REKEY_IKE, TimerKey

__all__ = ["child_snapshot", "ike_snapshot", "traffic_snapshot"]

# charon's task names (task.c task_type_names) for the tasks Petrel runs
_TASK_NAMES = {
    "IkeInit": "IKE_INIT",
    "IkeAuth": "IKE_AUTH",
    "ChildCreate": "CHILD_CREATE",
    "ChildDelete": "CHILD_DELETE",
    "IkeRekey": "IKE_REKEY",
    "IkeDelete": "IKE_DELETE",
    "Liveness": "IKE_DPD",
    "Notification": "IKE_INFORMATIONAL",
}


def _task_name(task: Task) -> str:
    name = type(task).__name__
    return _TASK_NAMES.get(name) or re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _until(deadline: float | None, now: float) -> int | None:
    return None if deadline is None else max(int(deadline - now), 0)


def traffic_snapshot(installed: InstalledChild, now: float) -> TrafficSnapshot:
    """Bytes and packets of an installed Child SA (inner octets, as kernel SAs count)."""
    inbound, outbound = installed.inbound.counters, installed.outbound.counters
    return TrafficSnapshot(
        bytes_in=inbound.octets,
        packets_in=inbound.packets,
        bytes_out=outbound.octets,
        packets_out=outbound.packets,
        dropped_in=installed.inbound.drops.total + installed.policy_drops,
        use_in=int(now - inbound.last_use) if inbound.last_use else None,
        use_out=int(now - outbound.last_use) if outbound.last_use else None,
    )


def child_snapshot(
    sa: IkeSa, child: ChildSa, installed: InstalledChild | None, now: float
) -> ChildSaSnapshot:
    """A Child SA; INSTALLING while negotiated but not (yet) carried by the data plane."""
    state = str(child.state)
    if installed is None and state != "DELETING":
        state = "INSTALLING"
    return ChildSaSnapshot(
        name=child.config.name,
        child_id=child.child_id,
        state=state,
        mode=child.config.mode.upper(),
        spi_in=child.spi_in,
        spi_out=child.spi_out,
        encap=sa.encap,
        algorithms=child.algorithms,
        local_ts=tuple(child.local_ts),
        remote_ts=tuple(child.remote_ts),
        install_time=int(now - child.installed_at),
        rekey_time=_until(sa.timers.get(TimerKey.rekey_child(child.child_id)), now),
        life_time=_until(sa.timers.get(TimerKey.expire_child(child.child_id)), now),
        traffic=traffic_snapshot(installed, now) if installed is not None else None,
    )


def ike_snapshot(
    sa: IkeSa, installed: dict[int, InstalledChild] | None, now: float
) -> IkeSaSnapshot:
    """An IKE SA with its Child SAs (``installed``: the data plane's children by id)."""
    installed = installed or {}
    active = sa.outstanding.task if sa.outstanding is not None else None
    return IkeSaSnapshot(
        name=sa.name,
        ike_id=sa.ike_id,
        state=sa.state.label,
        local=sa.local,
        remote=sa.remote,
        local_id=sa.local_id,
        remote_id=sa.remote_id,
        initiator=sa.initiator,
        spi_i=sa.spi_i,
        spi_r=sa.spi_r,
        nat_local=sa.nat_local,
        nat_remote=sa.nat_remote,
        nat_fake=sa.nat_fake,
        encap=sa.encap,
        algorithms=sa.algorithms,
        established=int(now - sa.established_at) if sa.established_at is not None else None,
        rekey_time=_until(sa.timers.get(REKEY_IKE), now),
        reauth_time=_until(sa.timers.get(REAUTH), now),
        tasks_queued=tuple(_task_name(t) for t in sa.tasks),
        tasks_active=(_task_name(active),) if active is not None else (),
        remote_vips=tuple(address for _, address in sa.remote_vips),
        children=tuple(
            child_snapshot(sa, child, installed.get(child.child_id), now)
            for child in sa.children.values()
        ),
    )
