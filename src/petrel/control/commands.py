"""The daemon's VICI commands (strongSwan's names and message shapes, see reference/vici.md).

version, stats, list-sas, list-conns, get-conns, initiate, terminate, rekey; the ``log`` and
``control-log`` events (:mod:`.logstream`) and the SA events (:mod:`.events`).  Run-time
configuration (load-conn, credentials, trap policies, counters, …) is in :mod:`.runtime`.
Every handler reads and acts through :class:`~petrel.control.api.ControlHost` only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..ike import events as ev
from ..wire.registry import name_of
from .api import ControlHost
from .events import SaEvents
from .format import algorithm_fields, ike_info
from .logstream import LevelBoost, LogLine, RecordContext, ViciLogHandler
from .pools import PoolCommands
from .runtime import RuntimeCommands, connection_info
from .server import Emitter, ViciServer

__all__ = ["ControlCommands", "algorithm_fields"]

log = logging.getLogger("petrel.control")

Message = Mapping[str, Any]


def _key(reason: str) -> str:
    return reason.replace(" ", "-").replace("'", "")


def _int(value: Any, default: int) -> int:
    if not isinstance(value, str) or not value:
        return default
    try:
        return int(value)
    except ValueError:
        return default


def _name(message: Message, key: str) -> str | None:
    """A name-valued key: a string, or absent (a list or section there is no name)."""
    value = message.get(key)
    return value if isinstance(value, str) and value else None


def _bool(value: Any) -> bool:
    return str(value).lower() in ("yes", "true", "1", "enabled")


@dataclass
class _LogTap:
    """A command's control-log: lines of ``ike_ids`` up to ``level``, to ``emitter``.

    While the IKE SA is not known yet (the synchronous start of an initiation), lines are kept
    in ``pending`` and sent once it is."""

    emitter: Emitter
    level: int
    boost: int | None = None  # LevelBoost token while the daemon logs less than ``level``
    ike_ids: set[int] | None = None
    pending: list[LogLine] = field(default_factory=list)


_MAX_PENDING = 256


class ControlCommands:
    """Binds the VICI command handlers to a :class:`ControlHost` (the running daemon)."""

    def __init__(self, host: ControlHost) -> None:
        self.host = host
        self.server: ViciServer | None = None
        self._waiters: list[tuple[int, str | None, asyncio.Future[str | None]]] = []
        self._down_waiters: dict[tuple[int, int | None], asyncio.Future[None]] = {}
        self._taps: list[_LogTap] = []
        self._boost: LevelBoost | None = None
        self.runtime = RuntimeCommands(host)
        self.pools = PoolCommands(host)
        self.sa_events = SaEvents(host, self._broadcast)

    def commands(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stats": self.stats,
            "list-sas": self.list_sas,
            "list-conns": self.list_conns,
            "get-conns": self.get_conns,
            "initiate": self.initiate,
            "terminate": self.terminate,
            "rekey": self.rekey,
            **self.runtime.commands(),
            **self.pools.commands(),
        }

    async def start(self, path: str) -> ControlCommands:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.server = ViciServer(path, self.commands())
        await self.server.start()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def log_handler(self, context: RecordContext | None = None) -> ViciLogHandler:
        """The handler the daemon attaches to the ``petrel`` logger (``context``: its log
        set-up's reading of a record's group, level and IKE SA, if it has one)."""
        loop = asyncio.get_running_loop()
        handler = ViciLogHandler(
            self.on_log,
            self._log_wanted,
            loop.call_soon_threadsafe,
            context,
        )
        self._boost = LevelBoost(handler)
        return handler

    # ---------------------------------------------------------------- engine events

    def on_event(self, event: ev.Event) -> None:
        """Complete waiting commands, count, and raise the SA events."""
        self.runtime.on_event(event)
        self.sa_events.on_event(event)
        if isinstance(event, ev.ChildSaUp):
            self._settle(event.ike_id, event.name, None)
        elif isinstance(event, ev.ChildSaDown):
            self._down(event.ike_id, event.child_id)
        elif isinstance(event, ev.IkeSaUp):
            self._settle(event.ike_id, None, None)
        elif isinstance(event, ev.IkeSaDown):
            self._settle(event.ike_id, "*", f"IKE SA down: {event.reason}")
            self._down(event.ike_id, None)
            for (ike_id, child_id), _ in list(self._down_waiters.items()):
                if ike_id == event.ike_id:
                    self._down(ike_id, child_id)
        elif isinstance(event, ev.IkeSaRekeyed):
            for tap in self._taps:  # the initiation's log follows its IKE SA
                if tap.ike_ids is not None and event.old_ike_id in tap.ike_ids:
                    tap.ike_ids.add(event.new_ike_id)
        elif isinstance(event, ev.NegotiationFailed):
            self._settle(event.ike_id, "*", f"{name_of(event.notify)}: {event.detail}")

    def _down(self, ike_id: int, child_id: int | None) -> None:
        waiter = self._down_waiters.pop((ike_id, child_id), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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

    # ---------------------------------------------------------------- log events

    def _log_wanted(self) -> bool:
        return bool(self._taps) or (self.server is not None and self.server.listening("log"))

    def on_log(self, line: LogLine) -> None:
        """A log line: ``log`` to registered clients (charon's vici logger sends levels ≤ 1),
        ``control-log`` to the commands following its IKE SA."""
        name = self.sa_events.ike_name(line.ike_id) if line.ike_id is not None else None
        if line.level <= 1 and self.server is not None and self.server.listening("log"):
            message: dict[str, Any] = {
                "group": line.group,
                "level": str(line.level),
                "thread": str(line.thread),
            }
            if line.ike_id is not None:
                message["ikesa-name"] = name or ""
                message["ikesa-uniqueid"] = str(line.ike_id)
            message["msg"] = line.msg
            self.server.broadcast("log", message)
        for tap in self._taps:
            if line.ike_id is None or line.level > tap.level:
                continue
            if tap.ike_ids is None:
                if len(tap.pending) < _MAX_PENDING:
                    tap.pending.append(line)
            elif line.ike_id in tap.ike_ids:
                tap.emitter.emit_nowait("control-log", _control_log(line, name))

    def _tap(self, emitter: Emitter, message: Message) -> _LogTap | None:
        """charon logs to the client only when it waits (timeout ≥ 0) and registered."""
        if _int(message.get("timeout"), 0) < 0 or not emitter.registered("control-log"):
            return None
        tap = _LogTap(emitter, _int(message.get("loglevel"), 1))
        if self._boost is not None:
            tap.boost = self._boost.acquire(tap.level)
        self._taps.append(tap)
        return tap

    def _follow(self, tap: _LogTap | None, ike_ids: set[int]) -> None:
        if tap is None:
            return
        tap.ike_ids = ike_ids
        for line in tap.pending:
            if line.ike_id in ike_ids:
                name = self.sa_events.ike_name(line.ike_id) if line.ike_id is not None else None
                tap.emitter.emit_nowait("control-log", _control_log(line, name))
        tap.pending.clear()

    def _untap(self, tap: _LogTap | None) -> None:
        if tap is not None and tap in self._taps:
            self._taps.remove(tap)
            if tap.boost is not None and self._boost is not None:
                self._boost.release(tap.boost)

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
        host = self.host
        sas = host.ike_sas()
        running = int(host.uptime())
        since = time.strftime("%b %d %H:%M:%S %Y", time.localtime(time.time() - running))
        return {
            "uptime": {"running": f"{running} seconds", "since": since},
            "workers": {
                "total": "1",
                "idle": "1",
                "active": {"critical": "0", "high": "0", "medium": "0", "low": "0"},
            },
            "queues": {"critical": "0", "high": "0", "medium": "0", "low": "0"},
            "scheduled": "1" if host.has_timers() else "0",
            "ikesas": {
                "total": str(len(sas)),
                "half-open": str(sum(1 for sa in sas if sa.established is None)),
            },
            "plugins": ["petrel-userspace-esp"],
            "drops": {  # dropped input by reason (Petrel extension)
                "ike": {_key(k): str(v) for k, v in host.ike_drops().items()},
                "esp": {_key(k): str(v) for k, v in host.esp_drops().items() if v},
            },
        }

    async def list_sas(self, message: Message, emitter: Emitter) -> Message:
        """One ``list-sa`` per IKE SA matching ike/ike-id; child/child-id select which of
        its Child SAs are listed (vici_query.c list_sas)."""
        ike, child = _name(message, "ike"), _name(message, "child")
        ike_id, child_id = _int(message.get("ike-id"), 0), _int(message.get("child-id"), 0)
        for sa in self.host.ike_sas():
            if (ike and sa.name != ike) or (ike_id and sa.ike_id != ike_id):
                continue
            if child or child_id:
                kept = tuple(
                    c
                    for c in sa.children
                    if not (child and c.name != child) and not (child_id and c.child_id != child_id)
                )
                sa = dataclasses.replace(sa, children=kept)
            await emitter.emit("list-sa", {sa.name: ike_info(sa)})
        return {}

    async def list_conns(self, message: Message, emitter: Emitter) -> Message:
        wanted = _name(message, "ike")
        for conn in list(self.host.connections().values()):
            if wanted and conn.name != wanted:
                continue
            await emitter.emit("list-conn", {conn.name: connection_info(conn)})
        return {}

    async def get_conns(self, message: Message, emitter: Emitter) -> Message:
        return {"conns": list(self.host.connections())}

    async def initiate(self, message: Message, emitter: Emitter) -> Message:
        """charon's vici_control initiate: waits ``timeout`` ms (0 for ever, < 0 not at all),
        streaming the IKE SA's log lines up to ``loglevel`` as ``control-log`` meanwhile."""
        child = _name(message, "child")
        ike = _name(message, "ike")
        if not child and not ike:
            return {"success": "no", "errmsg": "missing configuration name"}
        kind, what = ("CHILD_SA", str(child)) if child else ("IKE_SA", str(ike))
        log.info("vici initiate %s '%s'", kind, what)
        timeout_ms = _int(message.get("timeout"), 0)
        tap = self._tap(emitter, message)
        try:
            try:
                conn = self.host.connections().get(str(ike)) if ike else None
                if ike and (conn is None or (child and child not in conn.children)):
                    return {"success": "no", "errmsg": f"{kind} config '{what}' not found"}
                if child:
                    ike_id = (
                        self.host.initiate(str(ike), what)
                        if ike
                        else self.host.initiate_child(what)
                    )
                else:
                    ike_id = self.host.initiate(what, None)
            except KeyError:
                return {"success": "no", "errmsg": f"{kind} config '{what}' not found"}
            except (ValueError, OSError) as exc:
                return {"success": "no", "errmsg": f"establishing {kind} '{what}' failed: {exc}"}
            if timeout_ms < 0:
                return {"success": "yes"}
            self._follow(tap, {ike_id})
            future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._waiters.append((ike_id, str(child) if child else None, future))
            try:
                error = await asyncio.wait_for(future, timeout_ms / 1000 if timeout_ms else None)
            except TimeoutError:
                return {
                    "success": "no",
                    "errmsg": f"{kind} '{what}' not established after {timeout_ms}ms",
                }
            finally:
                self._waiters = [w for w in self._waiters if w[2] is not future]
            if error is not None:
                return {"success": "no", "errmsg": f"establishing {kind} '{what}' failed"}
            return {"success": "yes"}
        finally:
            self._untap(tap)

    async def terminate(self, message: Message, emitter: Emitter) -> Message:
        """charon's terminate: IKE SAs by ike/ike-id, or Child SAs by child/child-id (of
        ike/ike-id); waits ``timeout`` ms (0 for ever, < 0 not at all) for each to go."""
        ike, child = _name(message, "ike"), _name(message, "child")
        ike_id, child_id = _int(message.get("ike-id"), 0), _int(message.get("child-id"), 0)
        if not (ike or child or ike_id or child_id):
            return {"success": "no", "errmsg": "missing terminate selector"}
        log.info("vici terminate %s", _selector(child, child_id, ike, ike_id))
        if _bool(message.get("force", "no")):
            return {"success": "no", "errmsg": "force (no Delete exchange) is not supported"}
        targets: list[tuple[int, int | None]] = []
        for sa in self.host.ike_sas():
            if child or child_id:
                if (ike and sa.name != ike) or (ike_id and sa.ike_id != ike_id):
                    continue
                targets.extend(
                    (sa.ike_id, c.child_id)
                    for c in sa.children
                    if not (child and c.name != child) and not (child_id and c.child_id != child_id)
                )
            elif (ike and sa.name == ike) or (ike_id and sa.ike_id == ike_id):
                targets.append((sa.ike_id, None))
        if not targets:
            return {
                "success": "no",
                "matches": "0",
                "terminated": "0",
                "errmsg": "no matching SAs to terminate found",
            }
        timeout_ms = _int(message.get("timeout"), 0)
        tap = self._tap(emitter, message)
        self._follow(tap, {i for i, _ in targets})
        loop = asyncio.get_running_loop()
        waiters = {target: loop.create_future() for target in targets}
        self._down_waiters.update(waiters)
        try:
            for ike_sa, child_sa in targets:
                if child_sa is None:
                    self.host.terminate([ike_sa])
                else:
                    self.host.delete_child(ike_sa, child_sa)
            if timeout_ms < 0:
                done = len(targets)
            else:
                finished, _ = await asyncio.wait(
                    list(waiters.values()), timeout=timeout_ms / 1000 if timeout_ms else None
                )
                done = len(finished)
        finally:
            self._untap(tap)
            for target in targets:
                self._down_waiters.pop(target, None)
        reply = {"success": "yes", "matches": str(len(targets)), "terminated": str(done)}
        if done < len(targets):
            reply["success"] = "no"
            reply["errmsg"] = (
                "terminating SA failed"
                if len(targets) == 1
                else "not all matching SAs could be terminated"
            )
        return reply

    async def rekey(self, message: Message, emitter: Emitter) -> Message:
        """Rekey Child SAs (child/child-id) or IKE SAs (ike/ike-id); ``reauth`` for IKE."""
        child, ike = _name(message, "child"), _name(message, "ike")
        child_id, ike_id = _int(message.get("child-id"), 0), _int(message.get("ike-id"), 0)
        if not (ike or child or ike_id or child_id):
            return {"success": "no", "errmsg": "missing rekey selector"}
        reauth = _bool(message.get("reauth", "no"))
        log.info("vici rekey %s", _selector(child, child_id, ike, ike_id))
        matches = 0
        for sa in self.host.ike_sas():
            if sa.state in ("DELETING", "DESTROYING"):
                continue  # being deleted, or replaced by a rekeyed IKE SA
            if child or child_id:
                if (ike and sa.name != ike) or (ike_id and sa.ike_id != ike_id):
                    continue
                for c in sa.children:
                    if (child and c.name != child) or (child_id and c.child_id != child_id):
                        continue
                    matches += self.host.rekey_child(sa.ike_id, c.child_id)
            elif (ike and sa.name == ike) or (ike_id and sa.ike_id == ike_id):
                matches += self.host.rekey_ike(sa.ike_id, reauth)
        if not matches:
            return {"success": "no", "matches": "0", "errmsg": "no matching SAs to rekey found"}
        return {"success": "yes", "matches": str(matches)}


def _selector(child: Any, child_id: int, ike: Any, ike_id: int) -> str:
    """charon's "CHILD_SA 'net' of IKE_SA 'c' #3" wording of a terminate/rekey selector."""

    def one(name: Any, number: int) -> str:
        return " ".join(
            p for p in (f"'{name}'" if name else "", f"#{number}" if number else "") if p
        )

    child_sel, ike_sel = one(child, child_id), one(ike, ike_id)
    parts = [f"CHILD_SA {child_sel}" if child_sel else "", f"IKE_SA {ike_sel}" if ike_sel else ""]
    return " of ".join(p for p in parts if p)


def _control_log(line: LogLine, name: str | None) -> dict[str, str]:
    """vici_control.c log_vici: group, level, ikesa-name, ikesa-uniqueid, msg."""
    out = {"group": line.group, "level": str(line.level)}
    if line.ike_id is not None:
        out["ikesa-name"] = name or ""
        out["ikesa-uniqueid"] = str(line.ike_id)
    out["msg"] = line.msg
    return out
