"""VICI ``load-pool``, ``unload-pool`` and ``get-pools`` (charon's vici_attribute): virtual IP
pools loaded at run time, as ``swanctl --load-pools`` and ``--list-pools`` use them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..policy.pools import PoolConfig
from .api import ControlHost
from .server import Emitter
from .vici import Message

log = logging.getLogger("petrel.control")

_LISTS = ("dns",)  # attributes Petrel hands out; charon's others are refused by name


def _reply(errmsg: str | None = None) -> dict[str, str]:
    return {"success": "yes"} if errmsg is None else {"success": "no", "errmsg": errmsg}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def pool_from_vici(name: str, section: Any) -> PoolConfig:
    """A ``load-pool`` section; ValueError with charon-like wording otherwise."""
    if not isinstance(section, dict) or "addrs" not in section:
        raise ValueError(f"missing addrs to load pool '{name}'")
    attributes: dict[str, tuple[str, ...]] = {}
    for key, value in section.items():
        if key == "addrs":
            continue
        if key not in _LISTS:
            raise ValueError(f"pool '{name}': attribute '{key}' is not supported yet")
        items = value if isinstance(value, list) else [value]
        attributes[key] = tuple(_text(item) for item in items)
    return PoolConfig.parse(name, _text(section["addrs"]), attributes.get("dns", ()))


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
                return _reply(error)
            log.info("loaded pool '%s'", name)
        return _reply()

    async def unload_pool(self, message: Message, emitter: Emitter) -> Message:
        name = message.get("name")
        if not name:
            return _reply("missing pool name to unload")
        return _reply(self.host.unload_pool(_text(name)))

    async def get_pools(self, message: Message, emitter: Emitter) -> Message:
        wanted = message.get("name")
        leases = _text(message.get("leases", "no")) == "yes"
        out: dict[str, Any] = {}
        for pool in self.host.pools():
            if wanted and _text(wanted) != pool.name:
                continue
            entry: dict[str, Any] = {
                "base": pool.base,
                "size": str(pool.size),
                "online": str(pool.online),
                "offline": str(len(pool.leases) - pool.online),
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
