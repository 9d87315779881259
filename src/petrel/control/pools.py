"""VICI ``load-pool``, ``unload-pool`` and ``get-pools`` (charon's vici_attribute): virtual IP
pools loaded at run time, as ``swanctl --load-pools`` and ``--list-pools`` use them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..config.vici_conf import pool_from_vici
from .api import ControlHost
from .server import Emitter
from .vici import Message, reply

log = logging.getLogger("petrel.control")


class PoolCommands:
    def __init__(self, host: ControlHost) -> None:
        self.host = host

    def commands(self) -> dict[str, Callable[[Message, Emitter], Any]]:
        return {
            "load-pool": self.load_pool,
            "unload-pool": self.unload_pool,
            "get-pools": self.get_pools,
        }

    async def load_pool(self, message: Message, emitter: Emitter) -> Message:
        for name, section in message.items():
            try:
                error = self.host.load_pool(pool_from_vici(str(name), section))
            except ValueError as exc:
                error = str(exc)
            if error is not None:
                log.warning("load-pool refused: %s", error)
                return reply(error)
            log.info("loaded pool '%s'", name)
        return reply()

    async def unload_pool(self, message: Message, emitter: Emitter) -> Message:
        name = message.get("name")
        if not name:
            return reply("missing pool name to unload")
        return reply(self.host.unload_pool(str(name)))

    async def get_pools(self, message: Message, emitter: Emitter) -> Message:
        wanted = message.get("name")
        leases = str(message.get("leases", "no")) == "yes"
        out: dict[str, Any] = {}
        for pool in self.host.pools():
            if wanted and str(wanted) != pool.name:
                continue
            entry: dict[str, Any] = {
                "base": pool.base,
                "size": str(pool.size),
                "online": str(pool.online),
                "offline": str(pool.offline),
            }
            if leases:
                entry["leases"] = {
                    str(i): {
                        "address": address,
                        "identity": owner,
                        "status": "online" if online else "offline",
                    }
                    for i, (address, owner, online) in enumerate(pool.leases)
                }
            out[pool.name] = entry
        return out
