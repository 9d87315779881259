"""Per-SA traffic counters and drops by reason (RFC 4301 §4.4.2.1 statistics, list-sas)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DropCounters", "TrafficCounters"]


@dataclass(slots=True)
class DropCounters:
    """Inbound packets dropped, one counter per reason.

    ``dummy`` packets (Next Header 59, RFC 4303 §2.6) are authentic and discarded by design;
    they are counted here but excluded from :attr:`total`.
    """

    truncated: int = 0
    """Too short for SPI, sequence number, IV, trailer and ICV."""
    bad_length: int = 0
    """Ciphertext not a multiple of the cipher's block size."""
    bad_spi: int = 0
    """SPI does not belong to this SA."""
    replay: int = 0
    """Duplicate, older than the window, or sequence number 0 (RFC 4303 §3.4.3)."""
    integrity: int = 0
    """ICV or AEAD tag did not verify (§3.4.4)."""
    bad_padding: int = 0
    """Pad Length beyond the payload or padding octets not 1, 2, 3, … (§2.4)."""
    bad_next_header: int = 0
    """Next Header neither IPv4 (4), IPv6 (41) nor dummy (59) in tunnel mode."""
    bad_inner: int = 0
    """Inner IP header malformed or its length field larger than the payload."""
    dummy: int = 0
    """Dummy packets discarded silently (§2.6)."""

    @property
    def total(self) -> int:
        """All drops except dummy packets."""
        return (
            self.truncated
            + self.bad_length
            + self.bad_spi
            + self.replay
            + self.integrity
            + self.bad_padding
            + self.bad_next_header
            + self.bad_inner
        )

    def as_dict(self) -> dict[str, int]:
        """Counters by reason name, for list-sas and metrics."""
        return asdict(self)


@dataclass(slots=True)
class TrafficCounters:
    """Packets and octets through an SA in one direction.

    ``octets`` counts inner (plaintext IP) octets, as kernel SAs report them; ``last_use`` is
    the caller-supplied time of the last packet (sans-I/O: the SA never reads a clock).
    """

    packets: int = 0
    octets: int = 0
    last_use: float | None = None
