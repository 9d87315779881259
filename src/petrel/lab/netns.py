"""Network-namespace lab for end-to-end tests and benchmarks (facts: ../shared/LAB.md).

``Lab`` builds two hosts, L and R, each in its own uniquely named namespace (``pt<id>L``,
``pt<id>R``), joined by a veth pair or, with ``nat=True``, through a router namespace N that
masquerades L behind its R-facing address. Every process it starts is tracked by PID and killed
on exit; every namespace it made is deleted, even when the body raised.

Addresses (documentation ranges only)::

    direct:  L vL 192.0.2.1/24 2001:db8::1/64  <->  R vR 192.0.2.2/24 2001:db8::2/64
    nat:     L vL 192.0.2.1/25 2001:db8:a::1/64 <-> N nL 192.0.2.126 / nR 192.0.2.129
             <-> R vR 192.0.2.130/25 2001:db8:b::2/64   (IPv4 masqueraded, IPv6 routed)
    inner:   L lo 198.51.100.1/32 2001:db8:1::1/128;  R lo 203.0.113.1/32 2001:db8:2::1/128
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .probes import ping, tcp_transfer
from .process import run_in, stop_process, wait_for


@dataclass(frozen=True)
class Host:
    """One end of the lab: its namespace, outer interface and addresses."""

    ns: str
    ifname: str
    outer4: str
    outer6: str
    inner4: str
    inner6: str


class Lab:
    """Namespaces, links, addresses and tracked processes for one test (a context manager)."""

    def __init__(self, *, nat: bool = False, workdir: Path | str | None = None) -> None:
        self.id = secrets.token_hex(3)
        self.prefix = f"pt{self.id}"
        self.nat = nat
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.left = Host(
            f"{self.prefix}L",
            "vL",
            "192.0.2.1",
            "2001:db8:a::1" if nat else "2001:db8::1",
            "198.51.100.1",
            "2001:db8:1::1",
        )
        self.right = Host(
            f"{self.prefix}R",
            "vR",
            "192.0.2.130" if nat else "192.0.2.2",
            "2001:db8:b::2" if nat else "2001:db8::2",
            "203.0.113.1",
            "2001:db8:2::1",
        )
        self.router: str | None = f"{self.prefix}N" if nat else None
        # The address R sees L's outer IPv4 traffic coming from.
        self.left_public4 = "192.0.2.129" if nat else self.left.outer4

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, name: str) -> None:
        run_in(None, ["ip", "netns", "add", name])
        self.namespaces.append(name)
        # No duplicate address detection: addresses (incl. link-local) usable at once.
        self.sysctl(name, "net.ipv6.conf.default.accept_dad", "0")
        self.sysctl(name, "net.ipv6.conf.all.accept_dad", "0")
        self.ip(name, "link", "set", "lo", "up")

    def ip(self, ns: str, *args: str) -> None:
        run_in(None, ["ip", "-n", ns, *args])

    def sysctl(self, ns: str, key: str, value: str) -> None:
        run_in(ns, ["sysctl", "-qw", f"{key}={value}"])

    def _build(self) -> None:
        left, right = self.left, self.right
        for host in (left, right):
            self._add_ns(host.ns)
        if self.router is None:
            self.ip(
                left.ns,
                "link",
                "add",
                "vL",
                "type",
                "veth",
                "peer",
                "name",
                "vR",
                "netns",
                right.ns,
            )
            self._addr(left.ns, "vL", "192.0.2.1/24", "2001:db8::1/64")
            self._addr(right.ns, "vR", "192.0.2.2/24", "2001:db8::2/64")
        else:
            n = self.router
            self._add_ns(n)
            self.ip(left.ns, "link", "add", "vL", "type", "veth", "peer", "name", "nL", "netns", n)
            self.ip(right.ns, "link", "add", "vR", "type", "veth", "peer", "name", "nR", "netns", n)
            self._addr(left.ns, "vL", "192.0.2.1/25", "2001:db8:a::1/64")
            self._addr(n, "nL", "192.0.2.126/25", "2001:db8:a::ffff/64")
            self._addr(n, "nR", "192.0.2.129/25", "2001:db8:b::ffff/64")
            self._addr(right.ns, "vR", "192.0.2.130/25", "2001:db8:b::2/64")
            self.sysctl(n, "net.ipv4.ip_forward", "1")
            self.sysctl(n, "net.ipv6.conf.all.forwarding", "1")
            self.ip(left.ns, "route", "add", "192.0.2.128/25", "via", "192.0.2.126")
            self.ip(left.ns, "-6", "route", "add", "2001:db8:b::/64", "via", "2001:db8:a::ffff")
            self.ip(right.ns, "-6", "route", "add", "2001:db8:a::/64", "via", "2001:db8:b::ffff")
            self.nft(
                n,
                "add table ip nat\n"
                "add chain ip nat post { type nat hook postrouting priority 100; }\n"
                'add rule ip nat post oifname "nR" masquerade\n',
            )
        self._addr(left.ns, "lo", "198.51.100.1/32", "2001:db8:1::1/128")
        self._addr(right.ns, "lo", "203.0.113.1/32", "2001:db8:2::1/128")
        # The kernel activates a link's queue (linkwatch) up to ~1 s after carrier comes up;
        # until then frames are dropped, so wait for every veth to report operstate UP.
        links = [(left.ns, "vL"), (right.ns, "vR")]
        if self.router:
            links += [(self.router, "nL"), (self.router, "nR")]
        if not wait_for(lambda: all(self._oper_up(ns, dev) for ns, dev in links), 5):
            raise RuntimeError("veth links did not come up")

    def _oper_up(self, ns: str, dev: str) -> bool:
        out = run_in(None, ["ip", "-n", ns, "-j", "link", "show", "dev", dev]).stdout
        return json.loads(out)[0].get("operstate") == "UP"

    def _addr(self, ns: str, dev: str, v4: str, v6: str) -> None:
        self.ip(ns, "addr", "add", v4, "dev", dev)
        self.ip(ns, "addr", "add", v6, "dev", dev, "nodad")
        self.ip(ns, "link", "set", dev, "up")

    def close(self) -> None:
        """Kill tracked processes, then anything left in our namespaces, then delete them."""
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()
        for ns in self.namespaces:
            pids = run_in(None, ["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for ns in reversed(self.namespaces):
            run_in(None, ["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- processes -------------------------------------------------------------------------
    def run_in(
        self, ns: str | None, argv: Sequence[str], **kw: object
    ) -> subprocess.CompletedProcess[str]:
        return run_in(ns, argv, **kw)  # type: ignore[arg-type]

    def spawn_in(
        self,
        ns: str | None,
        argv: Sequence[str],
        log_path: Path | str | None = None,
        *,
        env: dict[str, str] | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``ns``, output to ``log_path`` (or ``stdout``); tracked by PID."""
        full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
        if log_path is not None:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
        else:
            proc = subprocess.Popen(full, stdout=stdout, stdin=subprocess.DEVNULL, env=env)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int | None:
        """Stop a tracked process by PID and forget it; return its exit status."""
        stop_process(proc, sig)
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    # -- network knobs ---------------------------------------------------------------------
    def nft(self, ns: str, script: str) -> None:
        run_in(ns, ["nft", "-f", "-"], input=script.encode())

    def set_loss(self, percent: int, ns: str | None = None, match: str = "") -> None:
        """Drop ``percent``% of packets at random (nftables ``numgen``; tc netem is absent).

        In the router (NAT lab, the default there): forwarded packets. In a host ``ns``
        (default L): what arrives on its outer interface — dropped on arrival, as a lossy
        link would, not on departure (an output drop makes ``sendmsg`` fail with EPERM).
        ``match`` narrows it, e.g. ``"udp dport 4500"``. 0 removes the rule.
        """
        target = ns or self.router or self.left.ns
        if target == self.router:
            hook, where = "forward", ""
        else:
            host = self.left if target == self.left.ns else self.right
            hook, where = "input", f'iifname "{host.ifname}"'
        run_in(target, ["nft", "delete", "table", "inet", "petrel_loss"], check=False)
        if percent > 0:
            chance = "" if percent >= 100 else f"numgen random mod 100 < {percent}"
            self.nft(
                target,
                "add table inet petrel_loss\n"
                f"add chain inet petrel_loss drop_some {{ type filter hook {hook} priority 0; }}\n"
                f"add rule inet petrel_loss drop_some {where} {match} {chance} drop\n",
            )

    def capture(self, ns: str, iface: str, name: str, bpf: str = "") -> Capture:
        """Start tcpdump on ``iface`` in ``ns`` writing ``workdir/name.pcap``."""
        cap = Capture(self, ns, iface, self.workdir / f"{name}.pcap", bpf)
        cap.start()
        return cap

    # -- traffic ---------------------------------------------------------------------------
    def ping(self, ns: str, src: str, dst: str, count: int = 3, **kw: object) -> int:
        return ping(ns, src, dst, count, **kw)  # type: ignore[arg-type]

    def tcp_transfer(
        self, ns_a: str, ns_b: str, src: str, dst: str, size: int, **kw: object
    ) -> bool:
        return tcp_transfer(ns_a, ns_b, src, dst, size, **kw)  # type: ignore[arg-type]


class Capture:
    """tcpdump into a pcap file; ``stop()`` flushes it; ``frames()`` reads it back."""

    def __init__(self, lab: Lab, ns: str, iface: str, path: Path, bpf: str = "") -> None:
        self.lab, self.ns, self.iface, self.path, self.bpf = lab, ns, iface, path, bpf
        self.log = path.with_suffix(".tcpdump.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        argv = [
            "tcpdump",
            "-i",
            self.iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-B",
            "65536",  # KiB of capture buffer: a 10 MiB transfer must not overrun it
            "-Z",
            "root",
            "-s",
            "0",
            "-w",
            str(self.path),
        ]
        if self.bpf:
            argv.append(self.bpf)
        self.proc = self.lab.spawn_in(self.ns, argv, self.log)
        if not wait_for(lambda: "listening on" in self.log.read_text(errors="replace"), timeout):
            raise RuntimeError(f"tcpdump did not start: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc is not None:
            self.lab.stop(self.proc, signal.SIGINT)
            self.proc = None

    def frames(self) -> list[bytes]:
        """Link-layer frames in the pcap (Ethernet on veth)."""
        import dpkt

        with open(self.path, "rb") as fh:
            return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(fh)]

    def raw(self) -> bytes:
        return self.path.read_bytes()


# -- traffic helpers (tiny Python programs run inside the namespaces) -------------------------
