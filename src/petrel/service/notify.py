"""sd_notify(3) without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

The protocol is a newline-separated ``KEY=VALUE`` list in one AF_UNIX datagram
(``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``STATUS=…``, ``MONOTONIC_USEC=…``); a path
starting with ``@`` names an abstract socket.  Without ``NOTIFY_SOCKET`` (not started by
systemd with ``Type=notify``) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("petrel.daemon")


def sd_notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=…"``) to systemd; True if sent."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    payload = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(payload)
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", path, exc)
        return False
    return True


def monotonic_usec() -> str:
    """``MONOTONIC_USEC=…`` for a ``RELOADING=1`` message (CLOCK_MONOTONIC, µs)."""
    return f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
