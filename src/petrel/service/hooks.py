"""What a running daemon does beside IKE and ESP: counts for metrics, the metrics endpoint,
IKE SA names for log lines, SIGHUP reloading the configuration file, sd_notify.

The daemon calls :meth:`DaemonHooks.started` once it serves, :meth:`stopping` before it
deletes its SAs and :meth:`stopped` at the end; :attr:`counts` sees every IKE datagram and
engine event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from typing import TYPE_CHECKING

from ..config.errors import ConfigError
from ..config.swanctl import load_swanctl
from ..logsetup import set_sa_resolver
from ..metrics.counting import IkeCounts
from .notify import monotonic_usec, sd_notify

if TYPE_CHECKING:
    from ..daemon import Daemon
    from ..metrics.http import MetricsServer

log = logging.getLogger("petrel.daemon")


class DaemonHooks:
    """Service duties of one :class:`~petrel.daemon.Daemon`."""

    def __init__(self, daemon: Daemon, config_path: str | None, metrics: str | None) -> None:
        self.daemon = daemon
        self.config_path = config_path
        self.metrics_listen = metrics
        self.counts = IkeCounts()
        self.metrics: MetricsServer | None = None
        self.reloads = 0

    async def started(self) -> None:
        daemon = self.daemon
        set_sa_resolver(daemon.host.ike_name, self._child_owner)
        if self.metrics_listen is not None:
            from ..metrics.collector import registry_for
            from ..metrics.http import MetricsServer, parse_listen

            host, port = parse_listen(self.metrics_listen)
            metrics = MetricsServer(registry_for(daemon, self.counts))
            try:
                await metrics.start(host, port)
            except OSError as exc:  # optional: IPsec goes on without it, loudly
                log.error("metrics endpoint %s not started: %s", self.metrics_listen, exc)
            else:
                self.metrics = metrics
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        conns = len(daemon.config.connections)
        sd_notify("READY=1", f"STATUS=running, {conns} connection(s) loaded")

    def stopping(self) -> None:
        sd_notify("STOPPING=1", "STATUS=deleting SAs with the peers")

    async def stopped(self) -> None:
        if self.metrics is not None:
            await self.metrics.close()

    # ---------------------------------------------------------------- SIGHUP

    def reload(self) -> None:
        """Re-read ``--config`` as a second ``swanctl --load-all`` would load it: unchanged
        connections keep their SAs, changed ones apply to new SAs, missing ones are unloaded
        (their SAs stay until they end); secrets and credential folders are replaced.  A
        file that no longer parses changes nothing (the error is logged)."""
        if self.config_path is None:
            log.info("SIGHUP: no --config file to reload")
            return
        sd_notify("RELOADING=1", monotonic_usec())
        try:
            self._reload(self.config_path)
        finally:
            conns = len(self.daemon.config.connections)
            sd_notify("READY=1", f"STATUS=running, {conns} connection(s) loaded")

    def _reload(self, path: str) -> None:
        try:
            config = load_swanctl(path)
        except ConfigError as exc:
            log.error("SIGHUP: %s not reloaded: %s", path, exc)
            return
        daemon = self.daemon
        unloaded = [name for name in daemon.config.connections if name not in config.connections]
        for name in unloaded:
            daemon.host.unload_connection(name)
        outcomes = [daemon.host.load_connection(conn) for conn in config.connections.values()]
        # SwanctlConfig is frozen: a new one, with the same (updated) connections table
        daemon.config = dataclasses.replace(
            daemon.config, secrets=config.secrets, credentials=config.credentials
        )
        if daemon.control is not None:  # the file's credentials, with those loaded over VICI
            daemon.control.runtime.apply_credentials()
        else:
            daemon.host.set_credentials(config.credentials, config.secrets)
        self.reloads += 1
        log.info(
            "SIGHUP: reloaded %s: %d connection(s), %d unloaded, %d secret(s)",
            path,
            len(outcomes),
            len(unloaded),
            len(config.secrets),
        )

    # ---------------------------------------------------------------- log lines

    def _child_owner(self, child_id: int) -> tuple[str, int] | None:
        host = self.daemon.host
        ike_id = host.child_owner(child_id)
        name = host.ike_name(ike_id) if ike_id is not None else None
        return (name, ike_id) if name is not None and ike_id is not None else None
