"""NAT detection hashes (RFC 7296 §2.23)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

from petrel.crypto.errors import CryptoError


def nat_detection_hash(spi_i: bytes, spi_r: bytes, address: bytes, port: int) -> bytes:
    """SHA-1(SPIi | SPIr | IP | Port) for NAT_DETECTION_*_IP notifications (§2.23).

    ``address`` is the packed IPv4 (4) or IPv6 (16) address; ``spi_r`` is zero in IKE_SA_INIT.
    """
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise CryptoError("IKE SPIs are 8 octets")
    if len(address) not in (4, 16):
        raise CryptoError("address must be 4 (IPv4) or 16 (IPv6) octets")
    if not 0 <= port <= 0xFFFF:
        raise CryptoError("port out of range")
    digest = hashes.Hash(hashes.SHA1())
    digest.update(bytes(spi_i) + bytes(spi_r) + bytes(address) + port.to_bytes(2, "big"))
    return digest.finalize()
