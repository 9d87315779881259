"""strongSwan's charon as the lab's reference peer: its swanctl.conf, start-up and control."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

from .netns import Lab
from .prerequisites import CHARON, PeerStartError, strongswan_available
from .process import run_in, wait_for

DEFAULT_PSK = "0sdGVzdHRlc3R0ZXN0dGVzdA=="  # base64 of "testtesttesttest"

_CHARON_PLUGINS = (
    "random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey kdf curve25519 "
    "socket-default kernel-libipsec kernel-netlink vici updown"
)
# The Debian package shipping each plugin of the ``load =`` line above (checked against dpkg by
# tests/unit/test_prerequisites.py): what to install when charon reports one missing.
CHARON_PLUGIN_PACKAGES: dict[str, str] = {
    **{
        name: "libstrongswan"
        for name in (
            *("random", "nonce", "pem", "pkcs1", "pkcs8", "x509", "revocation"),
            *("constraints", "pubkey", "kdf", "kernel-netlink"),
        )
    },
    "openssl": "libstrongswan-standard-plugins",
    "curve25519": "libstrongswan-extra-plugins",
    "kernel-libipsec": "libcharon-extra-plugins",
    "socket-default": "strongswan-libcharon",
    "updown": "strongswan-libcharon",
    "vici": "strongswan-swanctl",
}


_CHARON_WHY = (
    "failed to load",
    "unmet dependency",
    "failed",
    "error",
    "unable",
    "aborting",
)


def charon_failure(log: str) -> tuple[str, str | None]:
    """The line of a charon log that says why it did not start, and the package to install.

    A plugin that failed to load (its file missing) comes first: the "unmet dependency" and
    "initialization failed" lines after it are its consequences.
    """
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in lines:
        match = re.search(r"plugin '([\w-]+)'(?::)? failed to load", line)
        if match:
            return _strip_charon_prefix(line), CHARON_PLUGIN_PACKAGES.get(match.group(1))
    for word in _CHARON_WHY:
        for line in lines:
            if word in line.lower():
                return _strip_charon_prefix(line), None
    return (_strip_charon_prefix(lines[-1]) if lines else "no log output"), None


def _strip_charon_prefix(line: str) -> str:
    """``12:00:00.123 00[LIB] text`` → ``text``."""
    return re.sub(r"^(?:[\d:.]+ )?\d+\[\w+\] ", "", line)


def swanctl_psk_conf(
    *,
    local_addr: str,
    remote_addr: str,
    local_id: str,
    remote_id: str,
    local_ts: str,
    remote_ts: str,
    secret: str = DEFAULT_PSK,
    proposals: str = "aes256gcm16-prfsha256-x25519",
    esp_proposals: str = "aes256gcm16",
    conn: str = "c",
    child: str = "net",
    conn_extra: Sequence[str] = (),
    child_extra: Sequence[str] = (),
) -> str:
    """A swanctl.conf for one PSK connection (one ``key = value`` per line, as swanctl needs)."""
    lines = [
        "connections {",
        f"  {conn} {{",
        f"    local_addrs = {local_addr}",
        f"    remote_addrs = {remote_addr}",
        "    version = 2",
        f"    proposals = {proposals}",
        *(f"    {x}" for x in conn_extra),
        "    local {",
        "      auth = psk",
        f"      id = {local_id}",
        "    }",
        "    remote {",
        "      auth = psk",
        f"      id = {remote_id}",
        "    }",
        "    children {",
        f"      {child} {{",
        f"        local_ts = {local_ts}",
        f"        remote_ts = {remote_ts}",
        f"        esp_proposals = {esp_proposals}",
        *(f"        {x}" for x in child_extra),
        "      }",
        "    }",
        "  }",
        "}",
        "secrets {",
        "  ike-1 {",
        f"    id-1 = {local_id}",
        f"    id-2 = {remote_id}",
        f"    secret = {secret}",
        "  }",
        "}",
        "",
    ]
    return "\n".join(lines)


def strongswan_pair_confs(lab: Lab, v6: bool = False, **kw: str) -> tuple[str, str]:
    """Mirror swanctl.conf texts for L (initiator side, id ``left``) and R (id ``right``)."""
    left, right = lab.left, lab.right
    fam = "6" if v6 else "4"
    la, ra = getattr(left, f"outer{fam}"), getattr(right, f"outer{fam}")
    lt = f"{getattr(left, f'inner{fam}')}/{128 if v6 else 32}"
    rt = f"{getattr(right, f'inner{fam}')}/{128 if v6 else 32}"
    # Behind the NAT, R sees L as the router's address: accept any remote address there.
    r_remote = "%any" if lab.nat and not v6 else la
    l_conf = swanctl_psk_conf(
        local_addr=la, remote_addr=ra, local_id="left", remote_id="right",
        local_ts=lt, remote_ts=rt, **kw,
    )  # fmt: skip
    r_conf = swanctl_psk_conf(
        local_addr=ra, remote_addr=r_remote, local_id="right", remote_id="left",
        local_ts=rt, remote_ts=lt, **kw,
    )  # fmt: skip
    return l_conf, r_conf


class StrongSwan:
    """One charon instance (kernel-libipsec) in a namespace, with its own /run and vici socket.

    Recipe from LAB.md: ``unshare -m`` + bind-mount a private /run, own strongswan.conf.
    """

    def __init__(
        self, lab: Lab, ns: str, name: str, swanctl_conf: str, charon_extra: str = ""
    ) -> None:
        self.lab, self.ns, self.name = lab, ns, name
        self.charon_extra = charon_extra  # more strongswan.conf lines inside charon { }
        self.dir = lab.workdir / f"swan-{name}"
        self.run_dir = self.dir / "run"
        self.vici = self.run_dir / "charon.vici"
        self.log = self.dir / "charon.log"
        self.conf = self.dir / "swanctl.conf"
        self.swanctl_conf = swanctl_conf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> StrongSwan:
        what = f"strongSwan (charon, {self.name})"
        missing = strongswan_available()
        if missing:
            raise PeerStartError(what, missing, "strongswan-charon strongswan-swanctl")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.iterdir():  # a killed charon leaves its socket and pid file
            if not stale.is_dir():
                stale.unlink()
        (self.dir / "strongswan.conf").write_text(
            "charon {\n"
            f"{self.charon_extra}\n"
            "  load_modular = no\n"
            f"  load = {_CHARON_PLUGINS}\n"
            "  plugins {\n"
            f"    vici {{\n      socket = unix://{self.vici}\n    }}\n"
            "    kernel-libipsec {\n      allow_peer_ts = yes\n    }\n"
            "  }\n"
            "  filelog {\n"
            f"    f {{\n      path = {self.log}\n      default = 1\n      ike = 2\n"
            "      flush_line = yes\n      time_format = %H:%M:%S\n      time_add_ms = yes\n    }\n"
            "  }\n"
            "}\n"
        )
        self.conf.write_text(self.swanctl_conf)
        shell = (
            f"mount --bind {self.run_dir} /run && "
            f"STRONGSWAN_CONF={self.dir}/strongswan.conf exec {CHARON}"
        )
        self.proc = self.lab.spawn_in(
            self.ns, ["unshare", "-m", "sh", "-c", shell], self.dir / "charon.stdout"
        )
        # charon opens its vici socket while loading plugins, before it checks their features
        # and may abort: started means answering on it (or gone, reported below).
        if not wait_for(lambda: self.proc.poll() is not None or self._answers(), timeout, 0.1):
            log = self._start_output()
            last = _strip_charon_prefix(log.strip().splitlines()[-1]) if log.strip() else ""
            raise PeerStartError(
                what, f"no vici socket after {timeout:g} s; last log line: {last!r}", log=log
            )
        if self.proc.poll() is not None:
            log = self._start_output()
            reason, package = charon_failure(log)
            raise PeerStartError(what, reason, package, log)
        return self

    def _answers(self) -> bool:
        if not self.vici.exists():
            return False
        try:
            return self.swanctl("--stats", check=False, timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _start_output(self) -> str:
        """charon's log, then what it (or the mount before it) wrote on stdout/stderr."""
        stdout = self.dir / "charon.stdout"
        text = stdout.read_text(errors="replace") if stdout.exists() else ""
        return self.log_text() + text

    def swanctl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        # Credentials (x509/, x509ca/, private/, …) come from this instance's folder.
        env = {**os.environ, "SWANCTL_DIR": str(self.dir)}
        return run_in(
            None,
            ["swanctl", *args, "--uri", f"unix://{self.vici}"],
            check=check,
            timeout=timeout,
            env=env,
        )

    def load(self) -> str:
        return self.swanctl("--load-all", "--noprompt", "--file", str(self.conf)).stdout

    def initiate(self, child: str = "net", ike: str | None = None, timeout: int = 30) -> bool:
        args = ["--initiate", "--child", child, "--timeout", str(timeout)]
        if ike:
            args += ["--ike", ike]
        return self.swanctl(*args, check=False, timeout=timeout + 10).returncode == 0

    def list_sas(self) -> str:
        return self.swanctl("--list-sas").stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def parsed(self, exchange: str, kind: str) -> list[str]:
        """The payload lists of the ``exchange`` ``kind`` (request/response) messages charon
        parsed, in its abbreviations (``IDi N(INIT_CONTACT) IDr AUTH SA TSi TSr``)."""
        pattern = re.compile(rf"parsed {exchange} {kind} \d+ \[ ([^]]*)\]")
        return pattern.findall(self.log_text())

    def stop(self) -> None:
        if self.proc is not None:
            self.lab.stop(self.proc)
            self.proc = None
