"""Key material in buffers we own, zeroed when its SA ends.

Python gives no guarantee beyond this: immutable ``bytes`` made on the way (prf+ output
blocks, DH shared secrets, the key copies inside keyed cipher objects — this package's
wrappers, `cryptography`, OpenSSL) are freed when unreferenced but not zeroed; only
``bytearray`` buffers can be wiped in place.
"""

from __future__ import annotations


def zeroize(*buffers: bytes | bytearray) -> None:
    """Overwrite each ``bytearray`` with zeros in place (``bytes`` cannot be, and are skipped)."""
    for buffer in buffers:
        if isinstance(buffer, bytearray):
            memoryview(buffer)[:] = bytes(len(buffer))
