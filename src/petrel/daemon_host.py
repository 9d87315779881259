"""The daemon as the control socket sees it (:class:`petrel.control.api.ControlHost`): frozen
snapshots of SAs, traffic and counters, the commands VICI issues, and run-time configuration
(connections, credentials, trap policies) applied as charon applies them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from .control.api import IkeSaSnapshot, PoolSnapshot, TrafficSnapshot, TrapPolicy
from .credentials.store import CredentialStore
from .policy.connection import ChildConfig, Connection, SharedSecret
from .policy.pools import PoolConfig
from .snapshots import ike_snapshot, traffic_snapshot

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger("petrel.daemon")


class DaemonHost:
    """Queries and commands of one :class:`~petrel.daemon.Daemon` for the control socket."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def now(self) -> float:
        return self.daemon.now()

    def initiate(self, conn_name: str, child_name: str | None) -> int:
        return self.daemon.initiate(conn_name, child_name)

    def initiate_child(self, child_name: str) -> int:
        return self.daemon.initiate_child(child_name)

    def terminate(self, ike_ids: Iterable[int]) -> int:
        return self.daemon.terminate(ike_ids)

    # ---------------------------------------------------------------- runtime configuration

    def pools(self) -> list[PoolSnapshot]:
        return [
            PoolSnapshot(
                name,
                str(pool.config.first),
                pool.config.size,
                tuple((str(a), owner, online) for a, owner, online in pool.leases()),
            )
            for name, pool in self.daemon.engine.pools.items()
        ]

    def load_pool(self, pool: PoolConfig) -> str | None:
        return self.daemon.engine.load_pool(pool)

    def unload_pool(self, name: str) -> str | None:
        return self.daemon.engine.unload_pool(name)

    def load_connection(self, conn: Connection) -> str:
        """Add or replace a connection (VICI ``load-conn``) as charon does; returns "added",
        "updated" or "replaced".  Established SAs keep the definition they were made with (a
        changed one applies to the next initiation); start actions of children that changed
        or went away are undone (trap removed, started SAs closed), those of new or changed
        children run.  An identical definition changes nothing."""
        old = self.daemon.config.connections.get(conn.name)
        if old is not None and old == conn:
            log.info("updated connection: %s (unchanged)", conn.name)
            return "updated"
        outcome = "added" if old is None else "replaced"
        if old is None:
            undo: list[ChildConfig] = []
            start = list(conn.children.values())
        elif replace(old, children={}) == replace(conn, children={}):
            outcome = "updated"  # only children changed: the others are left alone
            undo = [c for n, c in old.children.items() if conn.children.get(n) != c]
            start = [c for n, c in conn.children.items() if old.children.get(n) != c]
        else:
            undo, start = list(old.children.values()), list(conn.children.values())
        for child in undo:
            self._undo_start_action(conn.name, child)
        self.daemon.config.connections[conn.name] = conn
        self.daemon.engine.connections[conn.name] = conn
        self.daemon.open_sockets_for(conn)
        for child in start:
            self._run_start_action(conn, child)
        self.daemon.flush()
        log.info("%s connection: %s", outcome, conn.name)
        return outcome

    def unload_connection(self, name: str) -> bool:
        """Remove a connection (VICI ``unload-conn``): its start actions are undone; other
        SAs it made stay up until they end (as charon)."""
        conn = self.daemon.config.connections.pop(name, None)
        self.daemon.engine.connections.pop(name, None)
        if conn is None:
            return False
        for child in conn.children.values():
            self._undo_start_action(name, child)
        self.daemon.flush()
        return True

    def set_credentials(self, store: CredentialStore, secrets: Iterable[SharedSecret]) -> None:
        """Replace the credentials IKE authentication uses (VICI credential commands)."""
        secrets = tuple(secrets)
        self.daemon.engine.secrets = secrets
        self.daemon.engine.auth.secrets = secrets
        for uri, crl in self.daemon.engine.auth.store.fetched_crls.items():
            store.add_fetched_crl(uri, crl)  # what was fetched stays cached
        self.daemon.engine.auth.store = store

    def install_policy(self, child_name: str, conn_name: str | None = None) -> str | None:
        """Install the trap policy of a child (VICI ``install``); None, or charon's errmsg."""
        for conn in self.daemon.config.connections.values():
            if child_name in conn.children and conn_name in (None, conn.name):
                break
        else:
            return "configuration name not found"
        self.daemon.install_trap(conn.name, child_name)
        trap = (
            self.daemon.dataplane.traps.get((conn.name, child_name))
            if self.daemon.dataplane
            else None
        )
        if trap is None or trap.expires is not None:
            return f"installing policy '{child_name}' failed"
        return None

    def uninstall_policy(self, child_name: str, conn_name: str | None = None) -> bool:
        """Remove a trap policy (VICI ``uninstall``); False when there is none."""
        if self.daemon.dataplane is None:
            return False
        for (conn, child), trap in list(self.daemon.dataplane.traps.items()):
            if child == child_name and conn_name in (None, conn) and trap.expires is None:
                self.daemon.dataplane.remove_trap(conn, child)
                self.daemon._acquiring.discard((conn, child))
                log.info("trap policy removed for %s/%s", conn, child)
                return True
        return False

    def trap_policies(self) -> list[TrapPolicy]:
        """Installed trap policies: connection, child, local and remote selectors."""
        if self.daemon.dataplane is None:
            return []
        out = []
        for entry in self.daemon.dataplane.spd.entries:
            handle = entry.handle
            if isinstance(handle, tuple) and len(handle) == 3 and handle[0] == "trap":
                trap = self.daemon.dataplane.traps.get((handle[1], handle[2]))
                if trap is not None and trap.expires is None:
                    out.append(TrapPolicy(handle[1], handle[2], entry.local, entry.remote))
        return out

    # ---------------------------------------------------------------- control queries

    def uptime(self) -> float:
        return self.daemon.now() - self.daemon.started_at

    def has_timers(self) -> bool:
        return self.daemon.engine.next_timer() is not None

    def ike_sas(self) -> list[IkeSaSnapshot]:
        """Snapshots of every IKE SA for the control socket (petrel.control.api)."""
        installed = self.daemon.dataplane.children if self.daemon.dataplane is not None else None
        now = self.daemon.now()
        return [ike_snapshot(sa, installed, now) for sa in self.daemon.engine.ike_sas()]

    def ike_sa(self, ike_id: int) -> IkeSaSnapshot | None:
        installed = self.daemon.dataplane.children if self.daemon.dataplane is not None else None
        for sa in self.daemon.engine.ike_sas():
            if sa.ike_id == ike_id:
                return ike_snapshot(sa, installed, self.daemon.now())
        return None

    def ike_name(self, ike_id: int) -> str | None:
        return next((sa.name for sa in self.daemon.engine.ike_sas() if sa.ike_id == ike_id), None)

    def child_owner(self, child_id: int) -> int | None:
        return next(
            (sa.ike_id for sa in self.daemon.engine.ike_sas() if child_id in sa.children), None
        )

    def child_traffic(self, child_id: int) -> TrafficSnapshot | None:
        installed = self.daemon.dataplane.children.get(child_id) if self.daemon.dataplane else None
        return traffic_snapshot(installed, self.daemon.now()) if installed is not None else None

    def connections(self) -> dict[str, Connection]:
        return dict(self.daemon.config.connections)

    def ike_drops(self) -> dict[str, int]:
        return dict(self.daemon.engine.drops.counts)

    def esp_drops(self) -> dict[str, int]:
        return (
            dict(self.daemon.dataplane.drop_counts()) if self.daemon.dataplane is not None else {}
        )

    def message_counts(self) -> dict[str | None, dict[str, int]]:
        """IKE messages by exchange: None for all, else by connection name."""
        messages = self.daemon.engine.messages
        counts: dict[str | None, dict[str, int]] = {None: dict(messages.total)}
        counts.update({name: dict(c) for name, c in messages.by_conn.items()})
        return counts

    def config_credentials(self) -> tuple[CredentialStore, tuple[SharedSecret, ...]]:
        """The credentials of ``--config`` (its folders and secrets)."""
        return self.daemon.config.credentials, tuple(self.daemon.config.secrets)

    def credential_store(self) -> CredentialStore:
        return self.daemon.engine.auth.store

    def delete_child(self, ike_id: int, child_id: int) -> bool:
        deleted = self.daemon.engine.delete_child(ike_id, child_id, self.daemon.now())
        self.daemon.flush()
        return deleted

    def rekey_child(self, ike_id: int, child_id: int) -> bool:
        started = self.daemon.engine.rekey_child(ike_id, child_id, self.daemon.now())
        self.daemon.flush()
        return started

    def rekey_ike(self, ike_id: int, reauth: bool) -> bool:
        if reauth:
            self.daemon.engine.reauthenticate(ike_id, self.daemon.now())
            started = True
        else:
            started = self.daemon.engine.rekey_ike(ike_id, self.daemon.now())
        self.daemon.flush()
        return started

    def _run_start_action(self, conn: Connection, child: ChildConfig) -> None:
        if child.start_action == "trap":
            self.daemon.install_trap(conn.name, child.name)
        elif child.start_action == "start":
            try:
                self.daemon.initiate(conn.name, child.name)
            except (KeyError, ValueError, OSError) as exc:
                log.warning("start_action for %s/%s failed: %s", conn.name, child.name, exc)

    def _undo_start_action(self, conn_name: str, child: ChildConfig) -> None:
        """charon's clear_start_action: a trap is uninstalled; a started child is closed, with
        its IKE SA when that carries nothing else."""
        if child.start_action == "trap":
            self.uninstall_policy(child.name, conn_name)
        if child.start_action != "start":
            return
        now = self.daemon.now()
        for sa in self.daemon.engine.ike_sas():
            if sa.name != conn_name:
                continue
            live = [c for c in sa.children.values() if c.state not in ("DELETING", "DELETED")]
            mine = [c for c in live if c.config.name == child.name]
            if not sa.children or (mine and len(mine) == len(live)):
                self.daemon.engine.terminate(sa.ike_id, now)
            else:
                for c in mine:
                    self.daemon.engine.delete_child(sa.ike_id, c.child_id, now)
