"""The Prometheus collector: the daemon's state read at each scrape, on the event loop.

Families (label values are connection and child names, unique ids, exchange and notify names
and drop reasons — never keys, SPIs or identities):

- ``petrel_ike_sas{state}``, ``petrel_child_sas{state}``: SAs now, by state;
- ``petrel_ike_messages_total{exchange,direction,kind}``,
  ``petrel_ike_retransmissions_total{exchange,kind}``;
- ``petrel_ike_failures_total{notify,direction}`` (error notifies sent or received),
  ``petrel_ike_sa_down_total{reason}``;
- ``petrel_ike_sas_established_total``, ``petrel_child_sas_established_total``,
  ``petrel_ike_rekeys_total``, ``petrel_child_rekeys_total``;
- ``petrel_child_sa_bytes_total`` / ``petrel_child_sa_packets_total``
  ``{conn,child,ike_sa,child_sa,direction}`` (RFC 4303 traffic of each installed Child SA);
- ``petrel_esp_drops_total{reason}``, ``petrel_ike_drops_total{reason}``,
  ``petrel_ike_send_failures_total{reason}``; ``petrel_uptime_seconds``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..ike.sa import IkeState
from .counting import IkeCounts

if TYPE_CHECKING:
    from ..daemon import Daemon

_IKE_STATES = sorted({s.label for s in IkeState if s is not IkeState.DEAD})


class DaemonCollector(Collector):
    """Reads one daemon; call :meth:`collect` on the daemon's event loop only."""

    def __init__(self, daemon: Daemon, counts: IkeCounts) -> None:
        self.daemon = daemon
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        yield from self._sas()
        yield from self._counted()
        yield from self._drops()
        yield from self._pools()
        uptime = GaugeMetricFamily("petrel_uptime_seconds", "Seconds since the daemon started")
        uptime.add_metric([], max(0.0, self.daemon.host.uptime()))
        yield uptime

    def _sas(self) -> Iterator[Metric]:
        """SAs by state and each carried Child SA's traffic, from the same snapshots the
        control socket lists (a Child SA the data plane lacks is INSTALLING there too)."""
        ike_states: Counter[str] = Counter({s: 0 for s in _IKE_STATES})
        child_states: Counter[str] = Counter()
        octets: Counter[tuple[str, ...]] = Counter()
        packets: Counter[tuple[str, ...]] = Counter()
        for sa in self.daemon.host.ike_sas():
            ike_states[sa.state] += 1
            for child in sa.children:
                child_states[child.state] += 1
                traffic = child.traffic
                if traffic is None:
                    continue
                ids = (sa.name, child.name, str(sa.ike_id), str(child.child_id))
                octets[(*ids, "in")] = traffic.bytes_in
                octets[(*ids, "out")] = traffic.bytes_out
                packets[(*ids, "in")] = traffic.packets_in
                packets[(*ids, "out")] = traffic.packets_out
        yield _family(
            GaugeMetricFamily, "petrel_ike_sas", "IKE SAs by state", ["state"], ike_states
        )
        yield _family(
            GaugeMetricFamily, "petrel_child_sas", "Child SAs by state", ["state"], child_states
        )
        labels = ["conn", "child", "ike_sa", "child_sa", "direction"]
        yield _counter(
            "petrel_child_sa_bytes", "ESP payload octets of each Child SA", labels, octets
        )
        yield _counter("petrel_child_sa_packets", "ESP packets of each Child SA", labels, packets)

    def _counted(self) -> Iterator[Metric]:
        counts = self.counts
        yield _counter(
            "petrel_ike_messages",
            "IKE messages by exchange, direction and kind (fragments count each)",
            ["exchange", "direction", "kind"],
            counts.messages,
        )
        yield _counter(
            "petrel_ike_retransmissions",
            "IKE datagrams sent again (retransmitted requests, cached responses)",
            ["exchange", "kind"],
            counts.retransmits,
        )
        yield _counter(
            "petrel_ike_failures",
            "Failed exchanges by the error notify sent or received",
            ["notify", "direction"],
            counts.failures,
        )
        yield _counter("petrel_ike_sa_down", "IKE SAs gone, by reason", ["reason"], counts.ike_down)
        for name, key, text in (
            ("petrel_ike_sas_established", "ike_established", "IKE SAs established"),
            ("petrel_child_sas_established", "child_established", "Child SAs established"),
            ("petrel_ike_rekeys", "ike_rekeyed", "IKE SA rekeyings completed"),
            ("petrel_child_rekeys", "child_rekeyed", "Child SA rekeyings completed"),
        ):
            family = CounterMetricFamily(name, text)
            family.add_metric([], counts.events[key])
            yield family

    def _drops(self) -> Iterator[Metric]:
        host = self.daemon.host
        yield _counter(
            "petrel_esp_drops", "ESP and data-plane packets dropped", ["reason"], host.esp_drops()
        )
        yield _counter("petrel_ike_drops", "IKE datagrams dropped", ["reason"], host.ike_drops())
        yield _counter(
            "petrel_ike_send_failures",
            "IKE datagrams the kernel refused to send",
            ["reason"],
            self.daemon.send_failures.counts,
        )

    def _pools(self) -> Iterator[Metric]:
        """Virtual IP pools: their size and their leases by status."""
        sizes: dict[str, int] = {}
        leases: dict[tuple[str, str], int] = {}
        for pool in self.daemon.host.pools():
            sizes[pool.name] = pool.size
            leases[(pool.name, "online")] = pool.online
            leases[(pool.name, "offline")] = pool.offline
        yield _family(
            GaugeMetricFamily, "petrel_pool_size", "Addresses in each pool", ["pool"], sizes
        )
        yield _family(
            GaugeMetricFamily,
            "petrel_pool_leases",
            "Leases of each pool: online (held by an IKE SA) or offline (kept for their owner)",
            ["pool", "status"],
            leases,
        )


def _family(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    text: str,
    labels: Sequence[str],
    values: Mapping[Any, int],
) -> GaugeMetricFamily | CounterMetricFamily:
    """A family with one sample per key of ``values`` (a label value, or a tuple of them)."""
    family = kind(name, text, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _counter(
    name: str, text: str, labels: Sequence[str], values: Mapping[Any, int]
) -> GaugeMetricFamily | CounterMetricFamily:
    return _family(CounterMetricFamily, name, text, labels, values)


def registry_for(daemon: Daemon, counts: IkeCounts) -> CollectorRegistry:
    """A registry holding only this daemon's collector (no process-global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon, counts))
    return registry
