"""A Petrel daemon as a lab peer: config file, process in a namespace, VICI control."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .netns import Lab
from .prerequisites import PeerStartError
from .process import run_in, wait_for

PETREL = [sys.executable, "-m", "petrel.cli"]


class PetrelPeer:
    """One ``petrel daemon`` in a namespace, with its own swanctl.conf, log and VICI socket.

    ``swanctl_conf=None`` starts it without ``--config``: empty, to be configured over VICI
    (``swanctl --uri unix://<peer.vici>``)."""

    def __init__(
        self,
        lab: Lab,
        ns: str,
        name: str,
        swanctl_conf: str | None,
        log: str = "2",
        daemon_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.workdir / f"petrel-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "swanctl.conf"
        self.configured = swanctl_conf is not None  # None: no --config, configured over VICI
        if swanctl_conf is not None:
            self.conf.write_text(swanctl_conf)
            self.conf.chmod(0o600)  # it holds the PSK
        self.vici = self.dir / "petrel.vici"
        self.log = self.dir / "petrel.log"
        self.log_level = log
        self.daemon_args = list(daemon_args)
        self.env = env  # extra environment, e.g. STRONGSWAN_CONF for the charon.* settings
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> PetrelPeer:
        argv = [
            *PETREL,
            "--socket",
            str(self.vici),
            "daemon",
            *(["--config", str(self.conf)] if self.configured else []),
            "--log",
            self.log_level,
            *self.daemon_args,
        ]
        env = {**os.environ, **self.env} if self.env else None
        # A socket left by an earlier daemon of ours (killed after its grace time) would make
        # the wait below return before the new one listens.
        self.vici.unlink(missing_ok=True)
        self.proc = self.lab.spawn_in(self.ns, argv, self.log, env=env)
        ready = wait_for(lambda: self.vici.exists() or self.proc.poll() is not None, timeout)
        if not ready or self.proc.poll() is not None:
            log = self.log_text()
            lines = [line for line in log.splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "no log output"
            if self.proc.poll() is None:
                reason = f"no control socket after {timeout:g} s; last log line: {last!r}"
            else:
                # The daemon's last line is its one-line error (petrel.cli), or a traceback's end.
                reason = last
            raise PeerStartError(f"Petrel daemon ({self.name})", reason, log=log)
        return self

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_in(
            self.ns, [*PETREL, "--socket", str(self.vici), *args], check=False, timeout=timeout
        )

    def initiate(self, child: str = "net", timeout: int = 30) -> bool:
        result = self.cli(
            "initiate", "--child", child, "--timeout", str(timeout), timeout=timeout + 10
        )
        return result.returncode == 0

    def list_sas(self) -> str:
        return self.cli("list-sas", "--long").stdout  # swanctl --list-sas style text

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM (the daemon deletes its SAs with the peer) and return the exit status."""
        if self.proc is None:
            return None
        status = self.lab.stop(self.proc)
        self.proc = None
        return status

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
