"""The daemon's VICI commands (strongSwan's names and message shapes, see reference/vici.md).

version, stats, list-sas, list-conns, get-conns, initiate, terminate, rekey; events ike-updown
and child-updown are broadcast to registered clients.  Run-time configuration (load-conn,
credentials, trap policies, counters, …) is in :mod:`.runtime`.
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..ike import events as ev
from ..ike.negotiation import Algorithms
from ..ike.sa import ChildSa, IkeSa
from ..wire.registry import EncrId, IntegId, KeId, PrfId, name_of
from .runtime import RuntimeCommands, connection_info
from .server import Emitter, ViciServer

if TYPE_CHECKING:
    from ..daemon import Daemon

Message = Mapping[str, Any]

# strongSwan spells some algorithm names differently from the IANA registry.
_KE_NAMES = {KeId.CURVE25519: "CURVE_25519", KeId.CURVE448: "CURVE_448"}
_ENCR_NAMES = {EncrId.NULL_AUTH_AES_GMAC: "NULL_AES_GMAC"}


def _key(reason: str) -> str:
    return reason.replace(" ", "-").replace("'", "")


def _yes(flag: bool) -> str:
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


class ControlCommands:
    """Binds VICI command handlers to a running :class:`petrel.daemon.Daemon`."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.server: ViciServer | None = None
        self._waiters: list[tuple[int, str | None, asyncio.Future[str | None]]] = []
        self._down_waiters: dict[int, asyncio.Future[None]] = {}
        self.runtime = RuntimeCommands(daemon)

    async def start(self, path: str) -> ControlCommands:
        commands = {
            "version": self.version,
            "stats": self.stats,
            "list-sas": self.list_sas,
            "list-conns": self.list_conns,
            "get-conns": self.get_conns,
            "initiate": self.initiate,
            "terminate": self.terminate,
            "rekey": self.rekey,
            **self.runtime.commands(),
        }
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.server = ViciServer(path, commands)
        await self.server.start()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    # ---------------------------------------------------------------- engine events

    def on_event(self, event: ev.Event) -> None:
        """Complete waiting commands and broadcast up/down events."""
        self.runtime.on_event(event)
        if isinstance(event, ev.ChildSaUp):
            self._settle(event.ike_id, event.name, None)
            self._broadcast(
                "child-updown", {"up": "yes", event.name: {"uniqueid": str(event.child_id)}}
            )
        elif isinstance(event, ev.ChildSaDown):
            self._broadcast("child-updown", {event.name: {"uniqueid": str(event.child_id)}})
        elif isinstance(event, ev.IkeSaUp):
            self._settle(event.ike_id, None, None)
            self._broadcast(
                "ike-updown", {"up": "yes", event.name: {"uniqueid": str(event.ike_id)}}
            )
        elif isinstance(event, ev.IkeSaDown):
            self._settle(event.ike_id, "*", f"IKE SA down: {event.reason}")
            waiter = self._down_waiters.pop(event.ike_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            self._broadcast("ike-updown", {event.name: {"uniqueid": str(event.ike_id)}})
        elif isinstance(event, ev.NegotiationFailed):
            self._settle(event.ike_id, "*", f"{name_of(event.notify)}: {event.detail}")

    def _settle(self, ike_id: int, child: str | None, error: str | None) -> None:
        """Resolve initiate waiters for ``ike_id``: child None = IKE SA up, "*" = any failure."""
        for waiter in list(self._waiters):
            w_ike, w_child, future = waiter
            if w_ike != ike_id or future.done():
                continue
            if error is not None or child == w_child or (child is None and w_child is None):
                future.set_result(error)
                self._waiters.remove(waiter)

    def _broadcast(self, event: str, message: Message) -> None:
        if self.server is not None:
            self.server.broadcast(event, message)

    # ---------------------------------------------------------------- commands

    async def version(self, message: Message, emitter: Emitter) -> Message:
        uname = platform.uname()
        return {
            "daemon": "petrel",
            "version": __version__,
            "sysname": uname.system,
            "release": uname.release,
            "machine": uname.machine,
        }

    async def stats(self, message: Message, emitter: Emitter) -> Message:
        daemon = self.daemon
        sas = daemon.engine.ike_sas()
        running = int(daemon.now() - daemon.started_at)
        since = time.strftime("%b %d %H:%M:%S %Y", time.localtime(time.time() - running))
        return {
            "uptime": {"running": f"{running} seconds", "since": since},
            "workers": {
                "total": "1",
                "idle": "1",
                "active": {"critical": "0", "high": "0", "medium": "0", "low": "0"},
            },
            "queues": {"critical": "0", "high": "0", "medium": "0", "low": "0"},
            "scheduled": "1" if daemon.engine.next_timer() is not None else "0",
            "ikesas": {
                "total": str(len(sas)),
                "half-open": str(sum(1 for sa in sas if sa.established_at is None)),
            },
            "plugins": ["petrel-userspace-esp"],
            "drops": self._drops(),
        }

    def _drops(self) -> dict[str, Any]:
        """Dropped input by reason: IKE messages, and ESP/data-plane packets (Petrel extension)."""
        dataplane = self.daemon.dataplane
        esp = dataplane.drop_counts() if dataplane is not None else Counter()
        return {
            "ike": {_key(k): str(v) for k, v in self.daemon.engine.drops.counts.items()},
            "esp": {_key(k): str(v) for k, v in esp.items() if v},
        }

    async def list_sas(self, message: Message, emitter: Emitter) -> Message:
        wanted_ike = message.get("ike")
        wanted_id = message.get("ike-id")
        for sa in self.daemon.engine.ike_sas():
            if wanted_ike and sa.name != wanted_ike:
                continue
            if wanted_id and str(sa.ike_id) != str(wanted_id):
                continue
            await emitter.emit("list-sa", {sa.name: self._ike_sa_info(sa)})
        return {}

    def _ike_sa_info(self, sa: IkeSa) -> dict[str, Any]:
        now = self.daemon.now()
        info: dict[str, Any] = {
            "uniqueid": str(sa.ike_id),
            "version": "2",
            "state": sa.state.label,
            "local-host": sa.local[0],
            "local-port": str(sa.local[1]),
            "local-id": sa.local_id,
            "remote-host": sa.remote[0],
            "remote-port": str(sa.remote[1]),
            "remote-id": sa.remote_id,
            "initiator": _yes(sa.initiator),
            "initiator-spi": sa.spi_i.hex(),
            "responder-spi": sa.spi_r.hex(),
            "nat-local": _yes(sa.nat_local),
            "nat-remote": _yes(sa.nat_remote),
            "nat-fake": _yes(sa.nat_fake),
            "nat-any": _yes(sa.encap),
        }
        if sa.algorithms is not None:
            info.update(algorithm_fields(sa.algorithms))
        if sa.established_at is not None:
            info["established"] = str(int(now - sa.established_at))
        info["child-sas"] = {
            f"{child.config.name}-{child.child_id}": self._child_info(sa, child, now)
            for child in sa.children.values()
        }
        return info

    def _child_info(self, sa: IkeSa, child: ChildSa, now: float) -> dict[str, Any]:
        dataplane = self.daemon.dataplane
        installed = dataplane.children.get(child.child_id) if dataplane else None
        state = child.state
        if installed is None and state != "DELETING":
            state = "INSTALLING"  # negotiated, but the data plane does not carry it (yet)
        info: dict[str, Any] = {
            "name": child.config.name,
            "uniqueid": str(child.child_id),
            "reqid": str(child.child_id),
            "state": state,
            "mode": child.config.mode.upper(),
            "protocol": "ESP",
            "encap": _yes(sa.encap),
            "spi-in": f"{child.spi_in:08x}",
            "spi-out": f"{child.spi_out:08x}",
            "install-time": str(int(now - child.installed_at)),
            "local-ts": [str(s) for s in child.local_ts],
            "remote-ts": [str(s) for s in child.remote_ts],
        }
        info.update(algorithm_fields(child.algorithms))
        info.pop("prf-alg", None)
        if child.algorithms.esn:
            info["esn"] = "1"  # charon sends the key only with ESN; swanctl tests presence
        if installed is not None:
            inbound, outbound = installed.inbound.counters, installed.outbound.counters
            info.update(
                {
                    "bytes-in": str(inbound.octets),
                    "packets-in": str(inbound.packets),
                    "bytes-out": str(outbound.octets),
                    "packets-out": str(outbound.packets),
                    "dropped-in": str(installed.inbound.drops.total + installed.policy_drops),
                }
            )
            if inbound.last_use:
                info["use-in"] = str(int(now - inbound.last_use))
            if outbound.last_use:
                info["use-out"] = str(int(now - outbound.last_use))
        return info

    async def list_conns(self, message: Message, emitter: Emitter) -> Message:
        wanted = message.get("ike")
        for conn in list(self.daemon.config.connections.values()):
            if wanted and conn.name != wanted:
                continue
            await emitter.emit("list-conn", {conn.name: connection_info(conn)})
        return {}

    async def get_conns(self, message: Message, emitter: Emitter) -> Message:
        return {"conns": list(self.daemon.config.connections)}

    async def initiate(self, message: Message, emitter: Emitter) -> Message:
        child = message.get("child")
        ike = message.get("ike")
        timeout_ms = int(message.get("timeout", 0) or 0)
        try:
            if child:
                ike_id = self.daemon.initiate_child(str(child))
            elif ike:
                ike_id = self.daemon.initiate(str(ike), None)
            else:
                return {"success": "no", "errmsg": "missing configuration name"}
        except (KeyError, ValueError, OSError) as exc:
            return {"success": "no", "errmsg": str(exc).strip("'\"")}
        if timeout_ms < 0:
            return {"success": "yes"}
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ike_id, str(child) if child else None, future))
        try:
            error = await asyncio.wait_for(future, timeout_ms / 1000 if timeout_ms else None)
        except TimeoutError:
            return {"success": "no", "errmsg": "initiation timed out"}
        if error is not None:
            return {"success": "no", "errmsg": f"establishing CHILD_SA failed: {error}"}
        return {"success": "yes"}

    async def terminate(self, message: Message, emitter: Emitter) -> Message:
        ike = message.get("ike")
        child = message.get("child")
        ike_id = message.get("ike-id")
        targets = []
        for sa in self.daemon.engine.ike_sas():
            if ike_id and str(sa.ike_id) != str(ike_id):
                continue
            if ike and sa.name != ike:
                continue
            if child and not any(c.config.name == child for c in sa.children.values()):
                continue
            targets.append(sa.ike_id)
        if not targets:
            return {
                "success": "no",
                "matches": "0",
                "terminated": "0",
                "errmsg": "no matching SAs to terminate found",
            }
        loop = asyncio.get_running_loop()
        waiters = {i: loop.create_future() for i in targets}
        self._down_waiters.update(waiters)
        self.daemon.terminate(targets)
        timeout_ms = int(message.get("timeout", 0) or 0)
        done, _pending = await asyncio.wait(
            list(waiters.values()), timeout=timeout_ms / 1000 if timeout_ms > 0 else 10.0
        )
        return {"success": "yes", "matches": str(len(targets)), "terminated": str(len(done))}

    async def rekey(self, message: Message, emitter: Emitter) -> Message:
        """Rekey Child SAs (child/child-id) or IKE SAs (ike/ike-id); ``reauth`` for IKE."""
        engine = self.daemon.engine
        now = self.daemon.now()
        child = message.get("child")
        child_id = message.get("child-id")
        ike = message.get("ike")
        ike_id = message.get("ike-id")
        reauth = str(message.get("reauth", "no")).lower() in ("yes", "true", "1")
        matches = 0
        for sa in engine.ike_sas():
            if sa.rekeyed_to is not None:
                continue
            if child or child_id:
                for c in list(sa.children.values()):
                    if (child and c.config.name != child) or (
                        child_id and str(c.child_id) != str(child_id)
                    ):
                        continue
                    matches += engine.rekey_child(sa.ike_id, c.child_id, now)
            elif (ike and sa.name == ike) or (ike_id and str(sa.ike_id) == str(ike_id)):
                if reauth:
                    engine.reauthenticate(sa.ike_id, now)
                    matches += 1
                else:
                    matches += engine.rekey_ike(sa.ike_id, now)
        self.daemon.flush()
        if not matches:
            return {"success": "no", "matches": "0", "errmsg": "no matching SAs to rekey found"}
        return {"success": "yes", "matches": str(matches)}
