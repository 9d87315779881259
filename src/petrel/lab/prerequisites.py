"""What the lab needs installed, and why a lab peer could not start."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

CHARON = "/usr/lib/ipsec/charon"
INSTALL_HINT = "bash scripts/install-deps.sh"

# Every external program that the lab, the end-to-end tests, the benchmarks and ``petrel demo``
# run (Python itself aside: they run ``sys.executable``), with the Debian package shipping it.
# tests/unit/test_prerequisites.py checks this against dpkg and against the package list of
# scripts/install-deps.sh, and that the sources run no program missing here.
LAB_PROGRAMS: dict[str, str] = {
    "ip": "iproute2",
    "nstat": "iproute2",
    "sysctl": "procps",
    "nft": "nftables",
    "conntrack": "conntrack",
    "ping": "iputils-ping",
    "iperf3": "iperf3",
    "tcpdump": "tcpdump",
    "tshark": "tshark",
    "editcap": "wireshark-common",
    "unshare": "util-linux",  # charon gets a private /run: unshare -m sh -c "mount --bind …"
    "sh": "dash",
    "mount": "mount",
    "swanctl": "strongswan-swanctl",
    CHARON: "strongswan-charon",
    "pki": "strongswan-pki",  # certificates for the tests
    "dpkg-query": "dpkg",  # tests/unit/test_prerequisites.py itself
    "/usr/bin/time": "time",  # fuzz/campaign.py: each target's peak memory (time -v)
    "systemd-analyze": "systemd",  # verify of the shipped unit (packaging/systemd)
}


def missing_programs(programs: Sequence[str] = tuple(LAB_PROGRAMS)) -> dict[str, str]:
    """Those of ``programs`` not installed here, each with the Debian package that ships it."""
    return {
        prog: LAB_PROGRAMS.get(prog, "?")
        for prog in programs
        if not (os.path.exists(prog) if prog.startswith("/") else shutil.which(prog))
    }


def strongswan_available() -> str | None:
    """None when charon and swanctl are installed, else the reason they are not usable."""
    if not os.path.exists(CHARON):
        return f"{CHARON} missing (apt-get install strongswan-charon, or {INSTALL_HINT})"
    if shutil.which("swanctl") is None:
        return f"swanctl missing (apt-get install strongswan-swanctl, or {INSTALL_HINT})"
    return None


class PeerStartError(RuntimeError):
    """A lab peer (charon or a Petrel daemon) that could not start.

    ``summary`` is one line for users: what failed, the log line that says why and, when known,
    what to install; ``str()`` adds the end of the peer's log, for test reports.
    """

    def __init__(self, what: str, reason: str, install: str | None = None, log: str = "") -> None:
        self.what, self.reason, self.install, self.log = what, reason, install, log
        hint = f"; install {install} ({INSTALL_HINT})" if install else ""
        self.summary = f"{what} failed to start: {reason}{hint}"
        super().__init__(self.summary + (f"\n{log[-3000:]}" if log else ""))
