"""The host side of MOBIKE as initiator (RFC 4555 §3.5): notice that our source address
towards a peer changed, and tell the engine (:func:`petrel.ike.roaming.roam`).

rtnetlink's address, route and link notifications (pyroute2's ``AsyncIPRoute``) only wake
us; after a short quiet period (an address is often added, then the old one removed) the
kernel is asked, per IKE SA that may roam, which source address it would now use towards
the peer, with Petrel's own firewall mark so that our policy routes do not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ike.engine import IkeEngine

log = logging.getLogger("petrel.net")

SETTLE = 0.3  # seconds without a notification before addresses are looked at


def route_source(remote: str, mark: int = 0) -> str:
    """The source address the kernel would use towards ``remote`` (no packet is sent);
    ``mark``: route as a socket with that firewall mark (SO_MARK) would."""
    family = socket.AF_INET6 if ":" in remote else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        if mark:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        probe.connect((remote, 9))
        return str(probe.getsockname()[0])


def roam_where_moved(engine: IkeEngine, mark: int, now: float) -> None:
    """Each IKE SA that may roam (MOBIKE agreed, we its original initiator) moves to the
    source address the kernel now picks towards its peer, if that differs.  No route: not
    yet; a later change may bring one (and DPD ends the SA if none comes)."""
    for sa in engine.ike_sas():
        if not (sa.mobike and sa.original_initiator):
            continue
        try:
            source = route_source(sa.remote[0], mark)
        except OSError as exc:
            log.info("IKE SA %d: no route to %s now (%s)", sa.ike_id, sa.remote[0], exc)
            continue
        if source != sa.local[0]:
            engine.roam(sa.ike_id, source, now)


class AddressWatch:
    """Calls ``on_change`` once the host's addresses or routes have changed and settled."""

    def __init__(self, on_change: Callable[[], None], settle: float = SETTLE) -> None:
        self.on_change = on_change
        self.settle = settle
        self._task: asyncio.Task[None] | None = None
        self._pending: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        from pyroute2 import AsyncIPRoute  # the daemon's path only
        from pyroute2.netlink.rtnl import (
            RTMGRP_IPV4_IFADDR,
            RTMGRP_IPV4_ROUTE,
            RTMGRP_IPV6_IFADDR,
            RTMGRP_IPV6_ROUTE,
            RTMGRP_LINK,
        )

        groups = (
            RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE
        ) | RTMGRP_IPV6_ROUTE
        try:
            ipr = AsyncIPRoute()
            await ipr.bind(groups=groups)
        except OSError as exc:
            log.warning("not watching addresses (MOBIKE cannot roam): %s", exc)
            return
        try:
            while True:  # get() yields what one read brought
                async for _message in ipr.get():
                    self._changed()
        except OSError as exc:
            log.warning("address watch ended (MOBIKE cannot roam): %s", exc)
        finally:
            ipr.close()

    def _changed(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        loop = asyncio.get_running_loop()
        self._pending = loop.call_later(self.settle, self._settled)

    def _settled(self) -> None:
        self._pending = None
        try:
            self.on_change()
        except Exception:  # a bug here must not end the watch
            log.exception("address change handling failed")
