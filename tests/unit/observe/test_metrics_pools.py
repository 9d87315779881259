"""Virtual IP pools in the Prometheus metrics (size, leases online and offline)."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from petrel.daemon import Daemon
from petrel.metrics.collector import registry_for
from petrel.metrics.counting import IkeCounts
from petrel.policy.connection import SwanctlConfig
from petrel.policy.pools import PoolConfig


def test_pool_size_and_leases() -> None:
    pool = PoolConfig.parse("p", "198.51.100.128/30")
    daemon = Daemon(SwanctlConfig({}, pools={"p": pool}))
    try:
        leases = daemon.engine.pools["p"]
        leases.release("bob", leases.acquire("bob"))  # type: ignore[arg-type]
        leases.acquire("alice")

        async def scrape() -> str:
            daemon.loop = asyncio.get_running_loop()  # uptime reads the loop's clock
            return generate_latest(registry_for(daemon, IkeCounts())).decode()

        text = asyncio.run(scrape())
    finally:
        daemon._netlink.shutdown(wait=False)
    assert 'petrel_pool_size{pool="p"} 2.0' in text
    assert 'petrel_pool_leases{pool="p",status="online"} 1.0' in text
    assert 'petrel_pool_leases{pool="p",status="offline"} 1.0' in text
